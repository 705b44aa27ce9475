package emailconn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/emailconn/emailconn/internal/storeseam"
	"github.com/emailconn/emailconn/internal/throttle"
)

// The state shared through Options.Store (issue 15; the README's "Several
// engine nodes"): the OAuth2 token record and its refresh lease of each
// configuration, the session slots and the message-rate window of each
// connection. Keys:
//
//	oauth2/<configuration>            the token record (JSON)
//	oauth2/<configuration>/refresh    the refresh lease, 1 slot
//	smtp/<connection>/sessions        a slot per open session (connections with a session limit)
//	smtp/<connection>/sessions/wanted a node waits for a session slot, 1 slot
//	smtp/<connection>/rate            a slot per message in the window
//
// A name longer than maxKeyName is shortened to a prefix and a hash
// (keyName), so that no key exceeds the Store's 512 bytes. Daily caps and
// the pause after a throttling reply stay per node.

// defaultLeaseTTL is the length of the refresh lease and of a session
// slot's lease; a session's lease is renewed every third of it, at most
// maxRenewGap apart.
const defaultLeaseTTL = 30 * time.Second

// releaseGrace is how long a closed session's slot is held on after the
// close, for the server to see the connection end.
const releaseGrace = 100 * time.Millisecond

// storeCallTimeout bounds the store calls made off a caller's path:
// releasing and renewing leases.
const storeCallTimeout = 5 * time.Second

// Polling for a free session slot: the first wait, doubled up to the
// last, and never beyond the wait the store names.
const (
	slotPollFirst = 10 * time.Millisecond
	slotPollMax   = 200 * time.Millisecond
)

// Demand for sessions across nodes. A node waiting for a session slot
// marks smtp/<connection>/sessions/wanted (a one-slot lease of
// wantedTTL, marked at most every wantedMark), and a node holding
// sessions looks at the mark (at most every demandProbe) when a session
// is put back and when an idle session's lease is renewed (at least
// every maxRenewGap): while it is marked, its idle sessions are closed,
// and one busy session per probe is closed after its transaction instead
// of kept, so that a node sending without pause, or one whose sessions
// sit idle, hands slots on within a second or so instead of holding them
// until IdleTimeout.
const (
	wantedTTL   = time.Second
	wantedMark  = 500 * time.Millisecond
	demandProbe = 250 * time.Millisecond
	maxRenewGap = time.Second // an idle session's renewal looks at the mark at least this often
)

func init() {
	storeseam.Set = func(opts any, s storeseam.Seams) {
		o := opts.(*Options)
		o.limitMinute, o.leaseTTL = s.LimitMinute, s.LeaseTTL
	}
}

func (o *Options) storeLeaseTTL() time.Duration {
	if o.leaseTTL > 0 {
		return o.leaseTTL
	}
	return defaultLeaseTTL
}

// storeOwner returns the owner of the leases taken with o: the one set by
// the Sender's or Registry's constructor, else a new one.
func (o *Options) storeOwner() string {
	if o.owner != "" {
		return o.owner
	}
	return newOwner()
}

// newOwner returns a lease owner unique to one Sender or Registry: the
// process as the ledger names it (host name and process ID) and 48
// random bits, at most 128 bytes, so that the leases of a crashed process
// are never taken for a live one's.
func newOwner() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return nodeName() + "/" + hex.EncodeToString(b[:])
}

// errSlotLost is the cause of a session whose shared slot expired before
// it was open.
var errSlotLost = errors.New("the store gave the slot to another node")

// A storeError is the cause of an *Error matching ErrStore.
type storeError struct {
	what string // "taking a session slot"
	err  error
}

func (e *storeError) Error() string {
	return "shared state (Options.Store): " + e.what + ": " + e.err.Error()
}
func (e *storeError) Unwrap() error   { return e.err }
func (e *storeError) Temporary() bool { return true }

// storeFailed returns the *Error of a failed store call.
func (s *Sender) storeFailed(ctx context.Context, stage Stage, what string, err error) *Error {
	if ctx.Err() != nil {
		return s.ctxError(ctx, stage, errors.New(what))
	}
	return &Error{Connection: s.conn.Name, Server: s.ep.addr(), Stage: stage, kind: ErrStore, usable: true,
		Err: &storeError{what: what, err: err}}
}

// storeKey returns the key of one of the connection's shared states:
// smtp/<name>/<what>, or for a connection without a name its server and
// user.
func storeKey(c *Connection, what string) string {
	name := c.Name
	if name == "" {
		name = c.endpoint().addr() + "@" + c.Username
	}
	return "smtp/" + keyName(name) + "/" + what
}

// maxKeyName is the longest name kept whole in a key.
const maxKeyName = 256

// keyName returns name for a store key: itself, or when longer than
// maxKeyName its first 128 bytes (whole UTF-8 characters) and a SHA-256
// of the whole.
func keyName(name string) string {
	if len(name) <= maxKeyName {
		return name
	}
	cut := 128
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	sum := sha256.Sum256([]byte(name))
	return name[:cut] + "~" + hex.EncodeToString(sum[:16])
}

// sleepOn waits d on clock (nil: the system clock) or until ctx ends.
func sleepOn(ctx context.Context, clock throttle.Clock, d time.Duration) error {
	if clock == nil {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ch := make(chan struct{})
	stop := clock.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
}

// tokenShare is the shared state of one OAuth2 configuration's token
// cache: its record and refresh lease in the Store.
type tokenShare struct {
	st                Store
	key, lease, owner string
}

func newTokenShare(o *Options, name string) *tokenShare {
	name = keyName(name)
	return &tokenShare{st: o.Store, key: "oauth2/" + name, lease: "oauth2/" + name + "/refresh", owner: o.storeOwner()}
}

func (t *tokenShare) Load(ctx context.Context) ([]byte, int64, error) { return t.st.Load(ctx, t.key) }

func (t *tokenShare) Swap(ctx context.Context, version int64, value []byte) (bool, error) {
	return t.st.Swap(ctx, t.key, version, value, 0)
}

func (t *tokenShare) Lock(ctx context.Context, ttl time.Duration) (bool, time.Duration, error) {
	slot, wait, err := t.st.Acquire(ctx, t.lease, 1, t.owner, ttl)
	return err == nil && slot == 0, wait, err
}

func (t *tokenShare) Unlock(ctx context.Context) error { return t.st.Release(ctx, t.lease, 0, t.owner) }

// A slotLease is a session's slot of smtp/<connection>/sessions, renewed
// every third of its ttl while the session lives and released when it
// closes. A renewal the store refuses (the lease expired and may be
// another node's) marks it lost: the session is closed after its current
// transaction, or at once when idle.
type slotLease struct {
	st         Store
	key, owner string
	slot       int
	ttl        time.Duration
	onLost     func() // closes the session when it is idle

	lost    atomic.Bool
	mu      sync.Mutex
	timer   *time.Timer // the next renewal; nil when none is armed
	done    bool        // released
	lastOK  time.Time   // the last renewal the store confirmed
	running sync.WaitGroup
}

// takeSessionSlot takes a slot of the connection's shared sessions,
// waiting while all are held by this and other nodes; the wait is added
// to *waited.
func (s *Sender) takeSessionSlot(ctx context.Context, waited *time.Duration) (*slotLease, error) {
	st, key, owner, ttl, limit := s.opts.Store, storeKey(&s.conn, "sessions"), s.opts.owner, s.opts.storeLeaseTTL(), cap(s.slots)
	var start, marked time.Time
	d := slotPollFirst
	for {
		slot, wait, err := st.Acquire(ctx, key, limit, owner, ttl)
		if err != nil {
			return nil, s.storeFailed(ctx, "", "taking a session slot", err)
		}
		if slot >= 0 {
			if !start.IsZero() {
				*waited += time.Since(start)
			}
			return &slotLease{st: st, key: key, owner: owner, slot: slot, ttl: ttl, lastOK: time.Now()}, nil
		}
		now := time.Now()
		if start.IsZero() {
			start = now
		}
		if now.Sub(marked) >= wantedMark {
			// Tell the nodes holding the slots that one is wanted; a
			// mark already there (slot -1) is as good as ours.
			marked = now
			_, _, _ = st.Acquire(ctx, key+"/wanted", 1, owner, wantedTTL)
		}
		if err := sleepOn(ctx, s.opts.clock, min(d, max(wait, time.Millisecond))); err != nil {
			return nil, s.ctxError(ctx, "", errors.New("waiting for a free session (shared by the engine's nodes)"))
		}
		d = min(2*d, slotPollMax)
	}
}

// arm schedules the next renewal. l.mu must be held.
func (l *slotLease) arm() {
	l.running.Add(1)
	l.timer = time.AfterFunc(min(l.ttl/3, maxRenewGap), l.renew)
}

// demand reports whether another node waits for one of the connection's
// session slots, asking the store at most every demandProbe.
func (s *Sender) demand() bool {
	now := time.Now().UnixNano()
	last := s.demandAt.Load()
	if now-last < int64(demandProbe) || !s.demandAt.CompareAndSwap(last, now) {
		return s.wanted.Load()
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	// A one-millisecond lease of our own when nobody marked: it blocks
	// nobody's mark for longer than that.
	slot, _, err := s.opts.Store.Acquire(ctx, storeKey(&s.conn, "sessions/wanted"), 1, s.opts.owner, time.Millisecond)
	w := err == nil && slot < 0
	s.wanted.Store(w)
	return w
}

// takeDemand is demand for one session: a mark hands on one slot per
// probe, not every session put back meanwhile.
func (s *Sender) takeDemand() bool {
	s.demand()
	return s.wanted.CompareAndSwap(true, false)
}

// start begins renewing the lease; onLost closes the session when idle,
// and is also called after each renewal, to close an idle session that
// another node wants.
func (l *slotLease) start(onLost func()) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.onLost = onLost
	if !l.done {
		l.arm()
	}
	l.mu.Unlock()
}

func (l *slotLease) renew() {
	ctx, cancel := context.WithTimeout(context.Background(), min(storeCallTimeout, l.ttl/3))
	ok, err := l.st.Renew(ctx, l.key, l.slot, l.owner, l.ttl)
	cancel()
	now := time.Now()
	l.mu.Lock()
	if err == nil && ok {
		l.lastOK = now
	}
	// Refused, or unconfirmed for a whole ttl: the slot may be another
	// node's by now.
	lost := err == nil && !ok || now.Sub(l.lastOK) >= l.ttl
	if lost {
		l.lost.Store(true)
	}
	if !l.done && !lost {
		l.arm()
	}
	onLost := l.onLost
	l.mu.Unlock()
	l.running.Done()
	if onLost != nil {
		onLost()
	}
}

// isLost reports whether the session must not be used again.
func (l *slotLease) isLost() bool { return l != nil && l.lost.Load() }

// release stops the renewals and frees the slot. Only the first call
// counts; a nil lease does nothing.
func (l *slotLease) release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return
	}
	l.done = true
	if l.timer != nil && l.timer.Stop() {
		l.running.Done()
	}
	l.mu.Unlock()
	l.running.Wait()
	if l.lost.Load() {
		return
	}
	// The server counts a connection until it has seen it close, a
	// moment after we closed it: hand the slot on after that moment, or
	// another node's new session could be one too many for the server.
	time.Sleep(releaseGrace)
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	_ = l.st.Release(ctx, l.key, l.slot, l.owner) // an unreleased lease expires
}

// Close closes the session and frees its shared slot.
func (p *pconn) Close() {
	p.Session.Close()
	p.lease.release()
}

// Quit says QUIT, closes the session and frees its shared slot.
func (p *pconn) Quit() {
	p.Session.Quit()
	p.lease.release()
}

// dropLost closes sess if it is idle in the pool and its shared slot was
// lost or is wanted by another node. A session in use is closed when it
// is put back.
func (s *Sender) dropLost(sess *pconn) {
	s.mu.Lock()
	idle := slices.Contains(s.idle, sess)
	s.mu.Unlock()
	if !idle || !sess.lease.isLost() && !s.demand() {
		return
	}
	s.mu.Lock()
	found := false
	for i, p := range s.idle {
		if p == sess {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			found = true
			break
		}
	}
	if found {
		s.sweeps.Add(1)
	}
	s.mu.Unlock()
	if found {
		defer s.sweeps.Done()
		sess.Quit()
	}
}

// storeRate is the message-rate window of a connection in the Store: a
// slot of smtp/<connection>/rate per message, taken for the window's
// length and never released once the message started.
type storeRate struct {
	s      *Sender
	key    string
	limit  int
	length time.Duration
	turn   chan struct{} // one token: the one caller of this node that asks the store
}

// Reserve takes a slot of the shared window, waiting while it is full.
// The callers of one node ask the store one at a time, in turn: a full
// window is polled by one caller per node, not by every waiting one.
func (r *storeRate) Reserve(ctx context.Context) (*throttle.Reservation, error) {
	s := r.s
	st, owner := s.opts.Store, s.opts.owner
	start := time.Now()
	select {
	case r.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.turn }()
	if time.Since(start) < time.Millisecond {
		start = time.Time{} // no wait for the turn worth counting
	}
	for {
		slot, wait, err := st.Acquire(ctx, r.key, r.limit, owner, r.length)
		if err != nil {
			return nil, s.storeFailed(ctx, StageMail, "taking the message rate's slot", err)
		}
		if slot >= 0 {
			var waited time.Duration
			if !start.IsZero() {
				waited = time.Since(start)
			}
			return throttle.NewReservation(waited, nil, func() {
				// The message never started: give its slot back.
				ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
				defer cancel()
				_ = st.Release(ctx, r.key, slot, owner)
			}), nil
		}
		if start.IsZero() {
			start = time.Now()
		}
		if err := sleepOn(ctx, s.opts.clock, max(wait, time.Millisecond)); err != nil {
			return nil, err
		}
	}
}

// shareState makes the Sender keep its sessions and message rate in
// Options.Store, taking the owner of its leases from its Registry or
// making its own.
func (s *Sender) shareState() {
	if s.opts.owner == "" {
		s.opts.owner = newOwner()
	}
	if l := s.lim.l.MessagesPerMinute; l > 0 {
		// The in-process window's length, margin included (newSendLimits).
		s.lim.rate = &storeRate{s: s, key: storeKey(&s.conn, "rate"), limit: l, length: s.lim.window, turn: make(chan struct{}, 1)}
	}
}

// sharedTokenHint is the hint of an OAuth2 test whose token state is in
// Options.Store.
const sharedTokenHint = "The token state is shared with the engine's other nodes (Options.Store): this test obtained its token under the shared refresh lease (or took the one another node had just refreshed), and the shared record holds it, so every node uses it; a rotated refresh token is handed to Options.OnRefreshToken only by the node whose write won."

// sharedHint is the hint of a Test Connection with Options.Store.
func (s *Sender) sharedHint() string {
	var shared, keys []string
	if s.lim.l.MaxSessions > 0 {
		shared, keys = append(shared, "maxSessions"), append(keys, storeKey(&s.conn, "sessions"))
	}
	if s.lim.l.MessagesPerMinute > 0 {
		shared, keys = append(shared, "messagesPerMinute"), append(keys, storeKey(&s.conn, "rate"))
	}
	if len(shared) == 0 {
		return "Options.Store is set, and this connection has no session or rate limit to share with the engine's other nodes (its OAuth2 token, if any, is shared)."
	}
	return "The limits of this connection are shared with the engine's other nodes (Options.Store, keys " + strings.Join(keys, " and ") +
		"): " + strings.Join(shared, " and ") + " hold across all nodes together. The test's own session takes no shared slot."
}

// keepShared reports whether a session with a shared slot may go back to
// the pool: its slot is still its own and no other node waits for one.
// The store is asked at most every demandProbe; s.mu must not be held.
func (s *Sender) keepShared(sess *pconn) bool {
	return !sess.lease.isLost() && !s.takeDemand()
}
