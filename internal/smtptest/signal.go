package smtptest

// The server's count of fired faults, and the signals that tests wait on
// instead of sleeping (Fired, SessionClosed).

import (
	"fmt"
)

// takeFault returns the first fault for point p that may fire in session id
// and counts it, or nil.
func (s *Server) takeFault(p Point, command bool, id int) *Fault {
	if len(s.opts.Faults) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.opts.Faults {
		f := &s.opts.Faults[i]
		if !f.matches(p, command) || (f.Session != 0 && f.Session != id) ||
			(f.Times != 0 && s.hits[i] >= f.Times) {
			continue
		}
		s.hits[i]++
		s.notifyLocked()
		c := *f
		return &c
	}
	return nil
}

// peekFault is takeFault without counting; it returns the fault's index.
func (s *Server) peekFault(p Point, id int) int {
	if len(s.opts.Faults) == 0 {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.opts.Faults {
		f := &s.opts.Faults[i]
		if f.matches(p, false) && (f.Session == 0 || f.Session == id) &&
			(f.Times == 0 || s.hits[i] < f.Times) {
			return i
		}
	}
	return -1
}

// takeIndex counts fault i if it may still fire.
func (s *Server) takeIndex(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := &s.opts.Faults[i]; f.Times != 0 && s.hits[i] >= f.Times {
		return false
	}
	s.hits[i]++
	s.notifyLocked()
	return true
}

// Fired returns a channel that is closed once Options.Faults[i] has fired n
// times in all, counting every session (n below 1 counts as 1). A fault
// fires when the server starts to act on it: after the command line was
// read (at a command), after its idle time passed (Idle), before its Delay
// and before it replies, goes silent, stalls, drops or resets. Tests wait on
// it instead of sleeping and hoping a phase has been reached:
//
//	select {
//	case <-srv.Fired(0, 1):
//	case <-time.After(10 * time.Second):
//		t.Fatal("the fault never fired")
//	}
//
// It panics when i is not an index of Options.Faults.
func (s *Server) Fired(i, n int) <-chan struct{} {
	if i < 0 || i >= len(s.opts.Faults) {
		panic(fmt.Sprintf("smtptest: Fired(%d, %d): Options.Faults has %d faults", i, n, len(s.opts.Faults)))
	}
	return s.wait(i, max(n, 1))
}

// SessionClosed returns a channel that is closed once the server has closed
// its side of the nth session (1-based, in accept order): it has written its
// last reply and shut the connection down, so a client reading it now sees
// the end of the stream (or the reset, after a Reset fault). A session ends
// when a fault or QUIT closes it, when the client goes away, or when the
// Server is closed. n below 1 never closes.
func (s *Server) SessionClosed(n int) <-chan struct{} {
	if n < 1 {
		return make(chan struct{})
	}
	return s.wait(-1, n)
}

func (s *Server) wait(i, n int) <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters = append(s.waiters, waiter{i, n, ch})
	s.notifyLocked()
	return ch
}

// notifyLocked closes the channels of every waiter whose event happened.
func (s *Server) notifyLocked() {
	keep := s.waiters[:0]
	for _, w := range s.waiters {
		if (w.i >= 0 && s.hits[w.i] >= w.n) || (w.i < 0 && s.ended[w.n]) {
			close(w.ch)
			continue
		}
		keep = append(keep, w)
	}
	clear(s.waiters[len(keep):])
	s.waiters = keep
}

// sessionEnded records that the server side of session id is closed.
func (s *Server) sessionEnded(id int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended[id] = true
	s.notifyLocked()
}

// A waiter is a channel to close once fault i has fired n times (i ≥ 0) or
// once session n has ended (i < 0).
type waiter struct {
	i, n int
	ch   chan struct{}
}
