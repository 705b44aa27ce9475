package throttle

import "time"

// Clock is the time source of the limiters: Now and one-shot callbacks.
// System is the real one; tests use a FakeClock so that no test sleeps
// hoping a phase has been reached. Implementations must be safe for
// concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, and
	// returns a function that cancels the call (reporting whether it did).
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// System is the Clock of the time package.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// clockOrSystem returns c, or System when c is nil.
func clockOrSystem(c Clock) Clock {
	if c == nil {
		return System
	}
	return c
}
