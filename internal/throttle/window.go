package throttle

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Rate is what a sender consults before it starts a message: Reserve
// blocks until the message may start. Window implements it in memory; a
// store-backed implementation shared by several engine nodes (issue 15: a
// row per start in a SQL table) can stand behind the same interface.
//
// Reserve returns the context's error, without consuming a slot, when ctx
// ends first. On success the slot is consumed at the instant of the grant;
// the caller then calls Start on the Reservation right before it writes
// MAIL FROM (which moves the recorded start to that later instant, so a
// dial or a liveness check between grant and MAIL cannot let two starts
// crowd into one window at the server), or Cancel if the message never
// starts.
type Rate interface {
	Reserve(ctx context.Context) (*Reservation, error)
}

// Reservation is a granted start. Its methods are safe for concurrent use;
// only the first call of Start or Cancel counts (Cancel after Start does
// nothing: a started message keeps its slot). A nil *Reservation is valid:
// Start reports true and Cancel does nothing.
type Reservation struct {
	// Waited is how long Reserve waited for the slot.
	Waited time.Duration

	once    sync.Once
	start   func() bool
	cancel  func()
	started bool
	at      atomic.Pointer[time.Time] // the start a Window recorded
}

// unlimited is the Reservation of a Window without a limit: shared, since
// its Start and Cancel do nothing.
var unlimited Reservation

// NewReservation returns a Reservation for an implementation of Rate:
// start records the actual start and reports whether the reservation was
// still valid; cancel gives the slot back. Either may be nil (a nil start
// always succeeds).
func NewReservation(waited time.Duration, start func() bool, cancel func()) *Reservation {
	return &Reservation{Waited: waited, start: start, cancel: cancel}
}

// Start records that the message starts now; call it right before writing
// MAIL FROM. It reports false, recording nothing, when the reservation has
// expired — more than the window's length passed since the grant, so its
// slot may already have gone to another start; the caller then reserves
// again before it writes MAIL FROM. Later calls return the first result.
func (r *Reservation) Start() bool {
	if r == nil {
		return true
	}
	r.once.Do(func() {
		r.started = r.start == nil || r.start()
	})
	return r.started
}

// Started returns the instant Start recorded, on the rate's clock: the
// start the rate counts against its window (the grant's instant, or the
// later one at which Start was called). It is zero before Start, when
// Start reported false, for a Window without a limit, and for a
// Reservation made by NewReservation, whose Rate keeps its own record.
// Tests compare it with the instant the server saw the MAIL.
func (r *Reservation) Started() time.Time {
	if r == nil {
		return time.Time{}
	}
	if at := r.at.Load(); at != nil {
		return *at
	}
	return time.Time{}
}

// Cancel gives the slot back: the message was never started (the dial
// failed, the session was dead, the context ended before MAIL FROM).
func (r *Reservation) Cancel() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
	})
}

// Window is a sliding-window log limiter: it lets no more than Limit
// reservations start in any interval of Length, and lets each one start at
// the earliest instant that rule allows. A backlog therefore drains in the
// least time the rule permits: Limit at once, then Limit more each time the
// oldest of the last Limit starts falls out of the window — for M messages,
// (⌈M/Limit⌉−1)·Length after the first.
//
// It keeps the start times of the last Limit reservations; a reservation is
// granted when fewer than Limit of them lie within the last Length. Waiters
// are served first come, first served, and one timer (not one per waiter)
// wakes the head of the queue. This is not a token bucket: a bucket of
// capacity b refilled at r lets b + r·Length through in one window, twice
// the limit when b = Limit, and with b = 1 it spaces starts Length/Limit
// apart, which drains M messages in (M−1)·Length/Limit — for 200 messages
// at 30 a minute, 398 s instead of the 360 s this achieves.
//
// Reservation.Start re-stamps a start at the moment MAIL FROM is written,
// so time spent between the grant and MAIL (a dial, a liveness check)
// counts against the caller, never against the rule. The server still sees
// each start one network delay later, and delays vary by a little: a
// caller that must keep the server's own count under the limit configures
// a Length slightly longer than the provider's window (1 % longer: 60.6 s
// for "30 a minute", which adds 1 % to a drain).
//
// A Window with Limit ≤ 0 or Length ≤ 0 never waits; so does the zero
// value. Its methods are safe for concurrent use. Create one with
// NewWindow.
type Window struct {
	limit  int
	length time.Duration
	clock  Clock

	mu      sync.Mutex
	log     []time.Time // starts within the window, oldest first; len ≤ limit
	waiters []*waiter   // first come, first served
	stop    func() bool // cancels the armed timer; nil when none is armed
	armedAt time.Time   // when the armed timer fires
	gen     uint64      // generation of the armed timer

	onQueue func() // test hook: called after a waiter is queued, without the lock
	onGrant func(time.Time)
}

// waiter is one Reserve or Acquire call waiting its turn.
type waiter struct {
	ready   chan struct{} // closed when granted
	granted bool
	at      time.Time // when it was granted
}

// NewWindow returns a Window that lets at most limit reservations start in
// any interval of length, reading time from clock (nil means System).
func NewWindow(limit int, length time.Duration, clock Clock) *Window {
	return &Window{limit: limit, length: length, clock: clockOrSystem(clock)}
}

// Limit returns the number of starts allowed per window; ≤ 0 means no limit.
func (w *Window) Limit() int { return w.limit }

// Length returns the window's length.
func (w *Window) Length() time.Duration { return w.length }

func noop() {}

// Reserve waits until a message may start, as Rate describes.
func (w *Window) Reserve(ctx context.Context) (*Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w.limit <= 0 || w.length <= 0 {
		return &unlimited, nil
	}
	w.mu.Lock()
	start := w.clock.Now()
	w.prune(start)
	if len(w.waiters) == 0 && len(w.log) < w.limit {
		w.grantLocked(start)
		w.mu.Unlock()
		return w.reservation(0, start), nil
	}
	wt := &waiter{ready: make(chan struct{})}
	w.waiters = append(w.waiters, wt)
	w.armLocked(start)
	hook := w.onQueue
	w.mu.Unlock()
	if hook != nil {
		hook()
	}
	select {
	case <-wt.ready:
		return w.reservation(wt.at.Sub(start), wt.at), nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	if wt.granted {
		w.removeLocked(wt.at) // granted as ctx ended: the caller never starts, so give it back
	} else {
		w.waiters = removeWaiter(w.waiters, wt)
	}
	w.dispatchLocked(w.clock.Now())
	w.mu.Unlock()
	return nil, ctx.Err()
}

// grantLocked records a start at now.
func (w *Window) grantLocked(now time.Time) {
	w.log = append(w.log, now)
	if w.onGrant != nil {
		w.onGrant(now)
	}
}

// prune drops the starts that have left the window: a start at s counts
// within [s, s+length).
func (w *Window) prune(now time.Time) {
	i := 0
	for i < len(w.log) && !w.log[i].Add(w.length).After(now) {
		i++
	}
	if i > 0 {
		w.log = append(w.log[:0], w.log[i:]...)
	}
}

// dispatchLocked grants waiters, oldest first, while the window has room,
// and arms the timer for the rest.
func (w *Window) dispatchLocked(now time.Time) {
	w.prune(now)
	for len(w.waiters) > 0 && len(w.log) < w.limit {
		wt := w.waiters[0]
		w.waiters[0] = nil
		w.waiters = w.waiters[1:]
		w.grantLocked(now)
		wt.granted, wt.at = true, now
		close(wt.ready)
	}
	w.armLocked(now)
}

// armLocked makes sure one timer is set for the instant the oldest start
// leaves the window, if anyone waits, and that none is set otherwise.
func (w *Window) armLocked(now time.Time) {
	if len(w.waiters) == 0 || len(w.log) < w.limit {
		if w.stop != nil {
			w.stop()
			w.stop = nil
		}
		if len(w.waiters) > 0 { // room now: only possible mid-dispatch
			w.dispatchLocked(now)
		}
		return
	}
	next := w.log[0].Add(w.length)
	if w.stop != nil && w.armedAt.Equal(next) {
		return
	}
	if w.stop != nil {
		w.stop()
	}
	w.gen++
	gen := w.gen
	w.armedAt = next
	w.stop = w.clock.AfterFunc(next.Sub(now), func() { w.fire(gen) })
}

// fire runs when the armed timer expires.
func (w *Window) fire(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen == w.gen {
		w.stop = nil
	}
	w.dispatchLocked(w.clock.Now())
}

// removeLocked removes one start recorded at at, if it is still within
// the window (pruned as of now), and reports whether it did. Starts at the same instant are
// interchangeable.
func (w *Window) removeLocked(at time.Time) bool {
	w.prune(w.clock.Now())
	for i := len(w.log) - 1; i >= 0; i-- {
		if w.log[i].Equal(at) {
			w.log = append(w.log[:i], w.log[i+1:]...)
			return true
		}
	}
	return false
}

// reservation returns the Reservation of a start granted at at.
func (w *Window) reservation(waited time.Duration, at time.Time) *Reservation {
	r := &Reservation{Waited: waited}
	r.start = func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		now := w.clock.Now()
		if !now.After(at) {
			r.at.Store(&at)
			return true
		}
		if !w.removeLocked(at) {
			return false // expired: its slot may be another start's by now
		}
		w.log = append(w.log, now) // now is the latest start: the log stays sorted
		r.at.Store(&now)
		w.dispatchLocked(now)
		return true
	}
	r.cancel = func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.removeLocked(at)
		w.dispatchLocked(w.clock.Now())
	}
	return r
}

func removeWaiter(ws []*waiter, wt *waiter) []*waiter {
	for i, x := range ws {
		if x == wt {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}
