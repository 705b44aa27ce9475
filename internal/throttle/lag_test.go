package throttle

import (
	"sync"
	"time"
)

// lagProbe measures how late this process's timers fire while a real-clock
// test runs: a goroutine sleeps 2 ms at a time on a timer and records how
// much later than due it woke. A window's boundary on the real clock costs
// the Window one timer's wake-up and the granted goroutine's; a loaded
// machine (or a stop of the whole process) delays both by about what the
// probe sees, which is the machine's and not the limiter's.
type lagProbe struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	max  time.Duration
}

func startLagProbe() *lagProbe {
	p := &lagProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		const tick = 2 * time.Millisecond
		t := time.NewTimer(tick)
		defer t.Stop()
		for {
			due := time.Now().Add(tick)
			t.Reset(tick)
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
			if lag := time.Since(due); lag > 0 {
				p.mu.Lock()
				p.max = max(p.max, lag)
				p.mu.Unlock()
			}
		}
	}()
	return p
}

// Stop ends the probe and returns the longest lag it saw.
func (p *lagProbe) Stop() time.Duration {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// scheduling returns what a real-clock drain over boundaries windows is
// allowed beyond 5 % of its minimum: at least floor, or two wake-ups
// (the timer's and the granted goroutine's) of the longest lag the probe
// measured at each boundary, when the machine was slower than that.
func scheduling(floor time.Duration, boundaries int, lag time.Duration) time.Duration {
	return max(floor, time.Duration(2*boundaries)*lag)
}
