package throttle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type acq struct {
	waited  time.Duration
	release func()
	err     error
}

func acquireAsync(ctx context.Context, s *Semaphore) chan acq {
	ch := make(chan acq, 1)
	go func() {
		d, r, err := s.Acquire(ctx)
		ch <- acq{d, r, err}
	}()
	return ch
}

func queueAcquire(t *testing.T, ctx context.Context, s *Semaphore, sig chan struct{}) chan acq {
	t.Helper()
	ch := acquireAsync(ctx, s)
	select {
	case <-sig:
	case r := <-ch:
		t.Fatalf("Acquire returned (%v, %v) at once, want it to wait", r.waited, r.err)
	}
	return ch
}

func noAcq(t *testing.T, ch chan acq, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: Acquire returned (%v, %v), want it still waiting", what, r.waited, r.err)
	default:
	}
}

// TestIssue14_10_SemaphoreCapsConcurrency: 16 goroutines sending 200
// messages through 3 slots never hold more than 3 at once.
func TestIssue14_10_SemaphoreCapsConcurrency(t *testing.T) {
	t.Parallel()
	s := NewSemaphore(3, nil)
	var inUse, peak, count atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < 200; i += 16 {
				_, release, err := s.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := inUse.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				count.Add(1)
				inUse.Add(-1)
				release()
				release() // a second call does nothing
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 {
		t.Errorf("peak %d sessions, want ≤ 3", p)
	}
	if n := count.Load(); n != 200 {
		t.Errorf("%d sends, want 200", n)
	}
	if n := s.InUse(); n != 0 {
		t.Errorf("InUse = %d after all released", n)
	}
}

// TestIssue14_11_SemaphoreFIFOAndWaited: a freed slot goes to the oldest
// waiter, and each reports how long it waited on the clock.
func TestIssue14_11_SemaphoreFIFOAndWaited(t *testing.T) {
	t.Parallel()
	clk := NewFakeClock(t0)
	s := NewSemaphore(1, clk)
	sig, hook := signals()
	s.onQueue = hook
	ctx := context.Background()
	_, release, _ := s.Acquire(ctx)
	a := queueAcquire(t, ctx, s, sig)
	b := queueAcquire(t, ctx, s, sig)
	clk.Advance(3 * time.Second)
	release()
	ra := <-a
	if ra.err != nil || ra.waited != 3*time.Second {
		t.Fatalf("first waiter: (%v, %v), want (3s, nil)", ra.waited, ra.err)
	}
	noAcq(t, b, "second waiter while the first holds the slot")
	// A newcomer does not overtake b.
	c := queueAcquire(t, ctx, s, sig)
	clk.Advance(2 * time.Second)
	ra.release()
	if rb := <-b; rb.err != nil || rb.waited != 5*time.Second {
		t.Fatalf("second waiter: (%v, %v), want (5s, nil)", rb.waited, rb.err)
	} else {
		noAcq(t, c, "newcomer")
		rb.release()
	}
	if rc := <-c; rc.err != nil || rc.waited != 2*time.Second {
		t.Fatalf("newcomer: (%v, %v), want (2s, nil)", rc.waited, rc.err)
	} else {
		rc.release()
	}
}

// TestIssue14_12_SemaphoreContextEnds: a waiter whose context ends
// returns its error and holds nothing; a slot handed to it as its context
// ended passes on.
func TestIssue14_12_SemaphoreContextEnds(t *testing.T) {
	t.Parallel()
	s := NewSemaphore(1, nil)
	sig, hook := signals()
	s.onQueue = hook
	_, release, _ := s.Acquire(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	a := queueAcquire(t, ctx, s, sig)
	b := queueAcquire(t, context.Background(), s, sig)
	cancel()
	if r := <-a; !errors.Is(r.err, context.Canceled) || r.release == nil {
		t.Fatalf("cancelled waiter: err = %v, want context.Canceled and a no-op release", r.err)
	} else {
		r.release()
	}
	release()
	rb := <-b
	if rb.err != nil {
		t.Fatal(rb.err)
	}
	rb.release()

	done, stop := context.WithCancel(context.Background())
	stop()
	if _, _, err := s.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: err = %v", err)
	}
	if s.InUse() != 0 {
		t.Fatalf("InUse = %d, want 0", s.InUse())
	}

	for i := range 200 { // the hand-over crossing the cancel
		_, release, _ := s.Acquire(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		a := queueAcquire(t, ctx, s, sig)
		go cancel()
		release()
		r := <-a
		cancel()
		if r.err == nil {
			r.release()
		}
		if n := s.InUse(); n != 0 {
			t.Fatalf("run %d: InUse = %d after everything was released (err %v)", i, n, r.err)
		}
	}
}

func TestIssue14_13_SemaphoreNoLimit(t *testing.T) {
	t.Parallel()
	var zero Semaphore
	for _, s := range []*Semaphore{&zero, NewSemaphore(0, nil), NewSemaphore(-1, nil)} {
		for range 10 {
			if d, r, err := s.Acquire(context.Background()); d != 0 || err != nil || r == nil {
				t.Fatalf("Acquire = (%v, %v)", d, err)
			}
		}
	}
}

var _ Slots = (*Semaphore)(nil)
