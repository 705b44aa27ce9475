package throttle

import (
	"context"
	"sync"
	"time"
)

// Slots is what a sender consults before it opens (or reuses) a session:
// Acquire blocks until fewer than the maximum sessions are in use and
// returns how long the caller waited. Semaphore implements it in memory; a
// store-backed implementation shared by several engine nodes (issue 15: a
// lease row per session with an expiry, so that a crashed node's slots come
// back) can stand behind the same interface.
//
// Acquire returns the context's error, holding nothing, when ctx ends
// first. On success the caller holds a slot until it calls release, which
// it must do exactly when the session is closed or returned to the pool's
// idle list; calls after the first do nothing. release is never nil.
type Slots interface {
	Acquire(ctx context.Context) (waited time.Duration, release func(), err error)
}

// Semaphore is a counting semaphore with first come, first served waiters,
// context-aware waiting and the waited time reported. A released slot is
// handed straight to the oldest waiter, so a newcomer cannot overtake it.
//
// The sender's pool already bounds sessions with a buffered channel; a
// Semaphore adds what the channel lacks: the waited duration for the
// Receipt and the debug log, one slot count that several Senders of the
// same mailbox can share (a Registry rebuilding a Sender keeps the
// Semaphore), and the Slots seam for a store-backed limit.
//
// A Semaphore with Max ≤ 0 never waits; so does the zero value. Its
// methods are safe for concurrent use. Create one with NewSemaphore.
type Semaphore struct {
	max   int
	clock Clock

	mu      sync.Mutex
	inUse   int
	waiters []*waiter

	onQueue func() // test hook: called after a waiter is queued, without the lock
}

// NewSemaphore returns a Semaphore with max slots, reading time from clock
// (nil means System).
func NewSemaphore(max int, clock Clock) *Semaphore {
	return &Semaphore{max: max, clock: clockOrSystem(clock)}
}

// Max returns the number of slots; ≤ 0 means no limit.
func (s *Semaphore) Max() int { return s.max }

// InUse returns the number of slots held now.
func (s *Semaphore) InUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUse
}

// Acquire waits for a free slot, as Slots describes.
func (s *Semaphore) Acquire(ctx context.Context) (time.Duration, func(), error) {
	if err := ctx.Err(); err != nil {
		return 0, noop, err
	}
	if s.max <= 0 {
		return 0, noop, nil
	}
	s.mu.Lock()
	if len(s.waiters) == 0 && s.inUse < s.max {
		s.inUse++
		s.mu.Unlock()
		return 0, s.releaser(), nil
	}
	start := s.clock.Now()
	wt := &waiter{ready: make(chan struct{})}
	s.waiters = append(s.waiters, wt)
	hook := s.onQueue
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	select {
	case <-wt.ready:
		return wt.at.Sub(start), s.releaser(), nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	now := s.clock.Now()
	if wt.granted {
		s.releaseLocked() // handed a slot as ctx ended: pass it on
	} else {
		s.waiters = removeWaiter(s.waiters, wt)
	}
	s.mu.Unlock()
	return now.Sub(start), noop, ctx.Err()
}

// releaseLocked frees one slot: to the oldest waiter if there is one.
func (s *Semaphore) releaseLocked() {
	if len(s.waiters) == 0 {
		s.inUse--
		return
	}
	wt := s.waiters[0]
	s.waiters[0] = nil
	s.waiters = s.waiters[1:]
	wt.granted, wt.at = true, s.clock.Now()
	close(wt.ready)
}

func (s *Semaphore) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.releaseLocked()
		})
	}
}
