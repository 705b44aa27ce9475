package throttle

import (
	"sync"
	"time"
)

// Pause records that a whole connection is paused until a time: a
// daily-quota or continuous-error-throttling reply says that the server
// will refuse everything until then, and every further attempt deepens the
// block. The sender checks it before it dials or takes a pooled session,
// and fails fast with the end time instead of hammering the server.
//
// The zero value is not paused and reads the System clock; use NewPause
// for another clock. A Pause is safe for concurrent use. A store-backed
// pause shared by engine nodes (issue 15) is a row with the end time; the
// same three methods fit it.
type Pause struct {
	clock Clock

	mu    sync.Mutex
	until time.Time
	cause error
}

// PauseState is a pause in force: when it ends and the reply that caused
// it (typically the classified SMTP error).
type PauseState struct {
	Until time.Time
	Cause error
}

// NewPause returns a Pause reading time from clock (nil means System).
func NewPause(clock Clock) *Pause { return &Pause{clock: clock} }

// Extend pauses the connection until until, with cause as the reason, and
// returns the pause now in force. A pause never gets shorter: an until
// before the current end keeps the current end and its cause. An until
// not after now does nothing.
func (p *Pause) Extend(until time.Time, cause error) PauseState {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := clockOrSystem(p.clock).Now()
	if until.After(now) && until.After(p.until) {
		p.until, p.cause = until, cause
	}
	if !p.until.After(now) {
		return PauseState{}
	}
	return PauseState{Until: p.until, Cause: p.cause}
}

// Active reports whether the connection is paused now, and if so until
// when and why. A pause that has ended is forgotten.
func (p *Pause) Active() (PauseState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.until.IsZero() {
		return PauseState{}, false
	}
	if !p.until.After(clockOrSystem(p.clock).Now()) {
		p.until, p.cause = time.Time{}, nil
		return PauseState{}, false
	}
	return PauseState{Until: p.until, Cause: p.cause}, true
}

// Clear ends the pause now (an operator fixed the cause, or a Test
// Connection succeeded).
func (p *Pause) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.until, p.cause = time.Time{}, nil
}
