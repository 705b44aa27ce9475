// Package memstore is the in-memory emailconn.Store: one process's leases
// and records behind one mutex, on an injectable clock so that tests expire
// them without sleeping. emailconntest.NewStore hands it to engine
// developers who unit-test several "nodes" (Registries, Senders) sharing
// one store; internal/storetest checks it against the Store contract.
//
// The package does not import emailconn (the root package may use it), so
// it implements the interface by shape; its tests assert that it does.
package memstore

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Store is an in-memory Store for one process. The zero value is not
// usable; call New. A Store is safe for concurrent use; every method is
// one decision made under one mutex, and returns ctx's error, taking
// nothing, when ctx has already ended.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	leases  map[string]map[int]lease
	records map[string]record
	ops     int // calls since tick last looked
}

type lease struct {
	owner   string
	expires time.Time
}

type record struct {
	value   []byte
	version int64
	expires time.Time // zero: never
}

// Every sweepEvery calls, tick looks at sweepSample leases and as many
// records for expired ones: 4 a call on average, with the cost of starting
// to range over a map paid once in 16 calls.
const (
	sweepEvery  = 16
	sweepSample = 64
)

// New returns an empty Store that reads the time from now; nil means
// time.Now. A test passes a fake clock's Now (internal/throttle.FakeClock)
// and advances it to expire leases and records.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, leases: map[string]map[int]lease{}, records: map[string]record{}}
}

// String names the store in logs: "memstore".
func (s *Store) String() string { return "memstore" }

// Acquire implements emailconn.Store.Acquire. Among the free slots it takes
// one at random, as SQLStore does, so that the callers see no order.
func (s *Store) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	now, err := s.lock(ctx, CheckLease(key, limit, owner, ttl))
	if err != nil {
		return -1, 0, err
	}
	defer s.mu.Unlock()
	slots := s.leases[key]
	if slots == nil {
		slots = map[int]lease{}
		s.leases[key] = slots
	}
	var free []int
	var first time.Time
	for i := range limit {
		l, held := slots[i]
		if held && l.expires.After(now) {
			if first.IsZero() || l.expires.Before(first) {
				first = l.expires
			}
			continue
		}
		free = append(free, i)
		if len(free) == 64 { // enough to choose from without walking a large window
			break
		}
	}
	if len(free) == 0 {
		return -1, max(first.Sub(now), time.Microsecond), nil
	}
	slot := free[rand.IntN(len(free))]
	slots[slot] = lease{owner: owner, expires: now.Add(ttl)}
	return slot, 0, nil
}

// Renew implements emailconn.Store.Renew.
func (s *Store) Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error) {
	now, err := s.lock(ctx, CheckSlot(key, slot, owner, ttl, true))
	if err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	l, ok := s.leases[key][slot]
	if !ok || l.owner != owner || !l.expires.After(now) {
		return false, nil
	}
	s.leases[key][slot] = lease{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Release implements emailconn.Store.Release.
func (s *Store) Release(ctx context.Context, key string, slot int, owner string) error {
	if _, err := s.lock(ctx, CheckSlot(key, slot, owner, 0, false)); err != nil {
		return err
	}
	defer s.mu.Unlock()
	slots := s.leases[key]
	if l, ok := slots[slot]; ok && l.owner == owner {
		delete(slots, slot)
		if len(slots) == 0 {
			delete(s.leases, key)
		}
	}
	return nil
}

// Load implements emailconn.Store.Load. The value of a record is never nil
// (an empty value loads as an empty slice); no record loads as nil.
func (s *Store) Load(ctx context.Context, key string) ([]byte, int64, error) {
	now, err := s.lock(ctx, CheckKey(key))
	if err != nil {
		return nil, 0, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if !ok {
		return nil, 0, nil
	}
	if r.expired(now) {
		delete(s.records, key)
		return nil, 0, nil
	}
	return append([]byte{}, r.value...), r.version, nil
}

// Swap implements emailconn.Store.Swap.
func (s *Store) Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error) {
	now, err := s.lock(ctx, CheckSwap(key, version, ttl))
	if err != nil {
		return false, err
	}
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if ok && r.expired(now) {
		ok = false
	}
	current := int64(0)
	if ok {
		current = r.version
	}
	if current != version {
		return false, nil
	}
	var expires time.Time
	if ttl > 0 {
		expires = now.Add(ttl)
	}
	s.records[key] = record{value: append([]byte{}, value...), version: version + 1, expires: expires}
	return true, nil
}

// lock begins a call: it returns err, the result of checking the call's
// arguments, or else ctx's error, taking nothing; or else it takes s.mu,
// sweeps (tick) and returns the time of the call. The caller unlocks s.mu
// when lock returned no error.
func (s *Store) lock(ctx context.Context, err error) (time.Time, error) {
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	now := s.now()
	s.tick(now)
	return now, nil
}

func (r record) expired(now time.Time) bool {
	return !r.expires.IsZero() && !r.expires.After(now)
}

// tick deletes expired leases and records a few at a time, as Redis
// expires keys: every sweepEvery calls, it looks at up to sweepSample
// entries of each map, from a random place (Go starts every range over a
// map at one), and deletes those that have expired. Keys never used again so go away at a
// rate that follows the calls, with no pause that walks everything under
// the mutex. s.mu is held.
func (s *Store) tick(now time.Time) {
	if s.ops++; s.ops < sweepEvery {
		return
	}
	s.ops = 0
	n := 0
keys:
	for key, slots := range s.leases {
		for i, l := range slots { // a key of many slots: a few of them
			if !l.expires.After(now) {
				delete(slots, i)
			}
			if n++; n == sweepSample {
				break
			}
		}
		if len(slots) == 0 {
			delete(s.leases, key)
		}
		if n >= sweepSample {
			break keys
		}
	}
	n = 0
	for key, r := range s.records {
		if r.expired(now) {
			delete(s.records, key)
		}
		if n++; n == sweepSample {
			break
		}
	}
}

// Len returns the number of leases and records kept, expired or not, for
// the tests of the sweep.
func (s *Store) Len() (leases, records int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, slots := range s.leases {
		leases += len(slots)
	}
	return leases, len(s.records)
}
