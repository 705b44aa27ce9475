package emailconn

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/emailconn/emailconn/internal/session"
)

// pconn is a pooled session (net/http's persistConn): one session and
// what the pool knows of it.
type pconn struct {
	*session.Session
	msgs      int
	dirty     bool // a transaction was started and not finished: RSET first
	reused    bool
	idleSince time.Time  // when it was put back into the pool
	lease     *slotLease // its slot of Options.Store's shared sessions; nil without a Store
}

// retire keeps the Sender usable but stops it from keeping sessions: a
// Registry retires the senders of a replaced configuration, whose routes
// may still be held by callers.
func (s *Sender) retire() { s.shutdown(stateDraining) }

// shutdown moves the Sender to state to (never back), stops the sweeper
// and says QUIT to every idle session; on Close it also waits for the
// sessions being closed in the background.
func (s *Sender) shutdown(to senderState) {
	s.mu.Lock()
	if s.state < to {
		s.state = to
	}
	idle := s.idle
	s.idle = nil
	if s.sweeper != nil && s.sweeper.Stop() {
		s.sweeps.Done()
	}
	s.sweeper = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sess := range idle {
		wg.Go(func() { sess.Quit() })
	}
	wg.Wait()
	if to == stateClosed {
		s.sweeps.Wait()
	}
}

// transactOn runs one transaction on sess under ctx and returns the
// session to the pool, or closes it. A panic of the caller's code (an
// attachment reader, say) closes the session and frees its slot before it
// goes on up, so that the pool never loses a session to it.
func (s *Sender) transactOn(ctx context.Context, sess *pconn, pr *prepared) (res txResult, stale bool) {
	release := sess.Conn.Bind(ctx)
	returned := false
	defer func() {
		if !returned {
			release()
			s.put(sess, false)
		}
	}()
	res, stale = s.transact(ctx, sess, pr)
	returned = true
	release()
	s.put(sess, res.err == nil || res.keep)
	return res, stale
}

// acquire returns a pooled session that is still alive, or a new one.
// The connection's pause is asked first: a paused connection opens no
// session. The time spent waiting for a free session is added to *waited.
func (s *Sender) acquire(ctx context.Context, waited *time.Duration) (*pconn, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.ctxError(ctx, "", nil)
	}
	if e := s.checkPause(); e != nil {
		return nil, e
	}
	select {
	case s.slots <- struct{}{}:
	default:
		start := time.Now()
		select {
		case s.slots <- struct{}{}:
			d := time.Since(start)
			*waited += d
			s.traceWait(ctx, "maxSessions", d)
		case <-ctx.Done():
			return nil, s.ctxError(ctx, "", errors.New("waiting for a free session"))
		}
	}
	for {
		s.mu.Lock()
		if s.state == stateClosed || (s.regClosed != nil && s.regClosed.Load()) {
			s.mu.Unlock()
			<-s.slots
			return nil, s.closedError()
		}
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		sess := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		// A session idle for a moment is taken as it is; one idle for
		// longer is checked without blocking for a close or a 421 from the
		// server. Either way, a session found dead at MAIL is replaced.
		now := time.Now()
		idleFor := now.Sub(sess.idleSince)
		if idleFor < s.opts.idleTimeout() && now.Sub(sess.Opened) < s.opts.maxAge() && (idleFor < time.Second || sess.Conn.Idle()) {
			sess.reused = true
			return sess, nil
		}
		sess.Close()
	}
	p := &pconn{}
	if s.opts.Store != nil && s.lim.l.MaxSessions > 0 {
		// A mailbox's session limit (the connection's maxSessions, or
		// its provider's) holds across all nodes; the pool's own size
		// (Options.MaxSessions) is this node's business.
		l, err := s.takeSessionSlot(ctx, waited)
		if err != nil {
			<-s.slots
			return nil, err
		}
		// Renewed from now on: opening the session may wait (for an OAuth2
		// token under another node's refresh lease) longer than the lease.
		p.lease = l
		l.start(func() { s.dropLost(p) })
	}
	ss, err := s.open.open(ctx)
	if err == nil && p.lease.isLost() {
		ss.Quit()
		err = s.storeFailed(ctx, "", "the session slot expired while the session was being opened", errSlotLost)
	}
	if err != nil {
		p.lease.release()
		<-s.slots
		return nil, err
	}
	p.Session = ss
	return p, nil
}

// put returns a session after use: back to the pool when it may be reused,
// otherwise closed.
func (s *Sender) put(sess *pconn, reusable bool) {
	defer func() { <-s.slots }()
	shared := sess.lease == nil || !reusable || s.keepShared(sess)
	s.mu.Lock()
	keep := reusable && shared && s.state == stateOpen && s.opts.idleTimeout() > 0 &&
		sess.msgs < s.opts.maxMessages() && time.Since(sess.Opened) < s.opts.maxAge() &&
		len(s.idle) < cap(s.slots)
	if keep {
		sess.reused = false
		sess.idleSince = time.Now()
		s.idle = append(s.idle, sess)
		if s.sweeper == nil {
			s.sweeps.Add(1)
			s.sweeper = time.AfterFunc(s.opts.idleTimeout(), s.sweep)
		}
	}
	background := reusable && !keep && s.state == stateOpen
	if background {
		// Say QUIT off the caller's path; Close waits for it.
		s.sweeps.Add(1)
	}
	s.mu.Unlock()
	switch {
	case keep:
	case background:
		go func() {
			defer s.sweeps.Done()
			sess.Quit()
		}()
	case reusable:
		sess.Quit()
	default:
		sess.Close()
	}
}

// sweep closes the sessions idle for longer than IdleTimeout and arms
// itself again for the next one to expire. One timer serves the whole pool:
// a timer per session would cost a timer operation on every send.
func (s *Sender) sweep() {
	defer s.sweeps.Done()
	idle := s.opts.idleTimeout()
	s.mu.Lock()
	now := time.Now()
	var expired []*pconn
	kept := s.idle[:0]
	for _, sess := range s.idle {
		if now.Sub(sess.idleSince) >= idle {
			expired = append(expired, sess)
		} else {
			kept = append(kept, sess)
		}
	}
	clear(s.idle[len(kept):])
	s.idle = kept
	s.sweeper = nil
	if len(kept) > 0 && s.state == stateOpen {
		next := idle
		for _, sess := range kept {
			next = min(next, idle-now.Sub(sess.idleSince))
		}
		s.sweeps.Add(1)
		s.sweeper = time.AfterFunc(max(next, time.Millisecond), s.sweep)
	}
	s.mu.Unlock()
	for _, sess := range expired {
		sess.Quit()
	}
}

// tokenSource gives a Sender the OAuth2 access tokens of its connection's
// OAuth2 configuration.
type tokenSource interface {
	// token returns a valid access token, cached or fresh.
	token(ctx context.Context) (string, error)
	// invalidate drops token from the cache when it is still cached: the
	// server rejected it.
	invalidate(token string)
}
