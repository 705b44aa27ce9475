// Package storetest is the conformance suite of emailconn.Store: the
// contract of its doc comment, as tests that every Store must pass. The
// in-memory store runs it on a fake clock (internal/memstore's tests), the
// SQL store on SQLite and PostgreSQL (internal/sqlstoretest, a module of
// its own, with real databases and real time).
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// Options tune Run to a store.
type Options struct {
	// Advance moves the clock of s forward by d, for a store on a fake
	// clock. Nil means the store runs on real time: the expiry tests then
	// use leases and records of ShortTTL and wait, polling the store with
	// a deadline, until they have expired.
	Advance func(s emailconn.Store, d time.Duration)

	// ShortTTL is the ttl of the expiry tests on real time. Zero means
	// 300 ms.
	ShortTTL time.Duration

	// Goroutines is how many goroutines the concurrency tests run. Zero
	// means 16.
	Goroutines int
}

func (o Options) shortTTL() time.Duration {
	if o.ShortTTL > 0 {
		return o.ShortTTL
	}
	return 300 * time.Millisecond
}

func (o Options) goroutines() int {
	if o.Goroutines > 0 {
		return o.Goroutines
	}
	return 16
}

// Run runs the suite as subtests of t, each on a store from open. open may
// return the same store (a shared database) every time: every subtest uses
// keys of its own, unique to the run.
func Run(t *testing.T, open func(t *testing.T) emailconn.Store, opts Options) {
	tests := []struct {
		name string
		f    func(t *testing.T, h *harness)
	}{
		{"AcquireCountsSlots", testAcquireCountsSlots},
		{"AcquireConcurrentNeverOverLimit", testAcquireConcurrent},
		{"AcquireWaitIsFirstExpiry", testAcquireWait},
		{"ExpiryFreesSlot", testExpiryFreesSlot},
		{"SlotsBeyondLimit", testSlotsBeyondLimit},
		{"RenewReleaseOnlyByOwner", testOwnerOnly},
		{"RenewExtends", testRenewExtends},
		{"LostLeaseRenewsFalse", testLostLease},
		{"SwapCompareAndSwap", testSwap},
		{"SwapConcurrentOneWins", testSwapConcurrent},
		{"SwapConcurrentIncrements", testSwapIncrements},
		{"RecordExpiry", testRecordExpiry},
		{"ValuesAreCopies", testValueCopies},
		{"KeysAreDistinct", testKeysDistinct},
		{"BadArguments", testBadArguments},
		{"ContextEnded", testContextEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{s: open(t), opts: opts, prefix: fmt.Sprintf("storetest/%s/%d/", t.Name(), time.Now().UnixNano())}
			tc.f(t, h)
		})
	}
}

type harness struct {
	s      emailconn.Store
	opts   Options
	prefix string
}

func (h *harness) key(name string) string { return h.prefix + name }

// ttl is the ttl of a lease or record that the test lets expire.
func (h *harness) ttl() time.Duration {
	if h.opts.Advance != nil {
		return time.Second
	}
	return h.opts.shortTTL()
}

// fake reports whether the store is on a fake clock.
func (h *harness) fake() bool { return h.opts.Advance != nil }

// deadline bounds the waits on real time.
func (h *harness) deadline() time.Time { return time.Now().Add(h.opts.shortTTL() + 10*time.Second) }

func (h *harness) acquire(t *testing.T, key string, limit int, owner string, ttl time.Duration) (int, time.Duration) {
	t.Helper()
	slot, wait, err := h.s.Acquire(context.Background(), key, limit, owner, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %d, %q, %v): %v", key, limit, owner, ttl, err)
	}
	if slot < -1 || slot >= limit {
		t.Fatalf("Acquire(%q, %d) = slot %d, want -1 or in [0, %d)", key, limit, slot, limit)
	}
	if slot >= 0 && wait != 0 {
		t.Errorf("Acquire(%q) = slot %d with wait %v, want wait 0", key, slot, wait)
	}
	if slot == -1 && wait < time.Microsecond {
		t.Errorf("Acquire(%q) = slot -1 with wait %v, want at least 1µs", key, wait)
	}
	return slot, wait
}

func (h *harness) renew(t *testing.T, key string, slot int, owner string, ttl time.Duration) bool {
	t.Helper()
	ok, err := h.s.Renew(context.Background(), key, slot, owner, ttl)
	if err != nil {
		t.Fatalf("Renew(%q, %d, %q): %v", key, slot, owner, err)
	}
	return ok
}

func (h *harness) release(t *testing.T, key string, slot int, owner string) {
	t.Helper()
	if err := h.s.Release(context.Background(), key, slot, owner); err != nil {
		t.Fatalf("Release(%q, %d, %q): %v", key, slot, owner, err)
	}
}

func (h *harness) load(t *testing.T, key string) ([]byte, int64) {
	t.Helper()
	v, version, err := h.s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	if version < 0 || (version == 0) != (v == nil) {
		t.Fatalf("Load(%q) = %q, version %d: want a nil value exactly at version 0", key, v, version)
	}
	return v, version
}

func (h *harness) swap(t *testing.T, key string, version int64, value []byte, ttl time.Duration) bool {
	t.Helper()
	ok, err := h.s.Swap(context.Background(), key, version, value, ttl)
	if err != nil {
		t.Fatalf("Swap(%q, %d): %v", key, version, err)
	}
	return ok
}

// expireLease lets a lease of h.ttl() taken just before run out: on a fake
// clock by advancing it, on real time by polling Acquire with a probe
// owner until the slot is free (sleeping the wait the store reports), and
// releasing the probe's lease, so the slot is free and nobody's.
func (h *harness) expireLease(t *testing.T, key string, limit int) {
	t.Helper()
	h.expire(t, fmt.Sprintf("lease of %q still held", key), func() (bool, time.Duration) {
		slot, wait := h.acquire(t, key, limit, "storetest-probe", time.Minute)
		if slot >= 0 {
			h.release(t, key, slot, "storetest-probe")
			return true, 0
		}
		return false, min(wait, 50*time.Millisecond) + time.Millisecond
	})
}

// expireRecord lets a record of h.ttl() written just before run out.
func (h *harness) expireRecord(t *testing.T, key string) {
	t.Helper()
	h.expire(t, fmt.Sprintf("record %q still there", key), func() (bool, time.Duration) {
		_, version := h.load(t, key)
		return version == 0, 20 * time.Millisecond
	})
}

// expire lets what was taken or written with h.ttl() just before run out:
// on a fake clock by advancing it, on real time by calling gone until it
// reports that it has, sleeping the time gone returns between calls. still
// says what is still there when the deadline passes.
func (h *harness) expire(t *testing.T, still string, gone func() (bool, time.Duration)) {
	t.Helper()
	if h.fake() {
		h.opts.Advance(h.s, h.ttl())
		return
	}
	end := h.deadline()
	for {
		ok, sleep := gone()
		if ok {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s %v after its ttl of %v", still, h.opts.shortTTL()+10*time.Second, h.ttl())
		}
		time.Sleep(sleep)
	}
}
