package emailconn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/memstore"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// Issue 15: with Options.Store, a connection's MaxSessions and
// MessagesPerMinute hold across several Senders — the engine's nodes —
// together. The nodes are Senders in one process sharing one
// internal/memstore; the multi-process test with PostgreSQL is in
// internal/sqlstoretest.

// concurrencyServer is a test server that records the most sessions it
// had open at once.
type concurrencyServer struct {
	*smtptest.Server
	max  atomic.Int64
	mu   sync.Mutex
	mail []time.Time
}

func newConcurrencyServer(t *testing.T) *concurrencyServer {
	cs := &concurrencyServer{}
	cs.Server = smtptest.NewServer(t, smtptest.Options{
		ConnectHook: func(open int) *smtp.SMTPError {
			for {
				m := cs.max.Load()
				if int64(open) <= m || cs.max.CompareAndSwap(m, int64(open)) {
					return nil
				}
			}
		},
		MailHook: func(string) *smtp.SMTPError {
			cs.mu.Lock()
			cs.mail = append(cs.mail, time.Now())
			cs.mu.Unlock()
			return nil
		},
	})
	return cs
}

// nodes returns n Senders for c sharing st, each with its own options.
func nodes(t *testing.T, n int, c Connection, st Store, set func(o *Options)) []*Sender {
	t.Helper()
	var ss []*Sender
	for range n {
		o := &Options{Store: st}
		if set != nil {
			set(o)
		}
		s, err := NewSender(c, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ss = append(ss, s)
	}
	return ss
}

// sendAll sends perNode messages from workers goroutines on each node and
// returns the receipts' total wait.
func sendAll(t *testing.T, ss []*Sender, workers, perNode int) time.Duration {
	t.Helper()
	var waited atomic.Int64
	var wg sync.WaitGroup
	for k, s := range ss {
		var next atomic.Int64
		for range workers {
			wg.Go(func() {
				for {
					i := next.Add(1)
					if i > int64(perNode) {
						return
					}
					rc, err := s.Send(context.Background(), &Message{To: []string{fmt.Sprintf("n%d-%d@example.com", k, i)}, Subject: "s", Text: "x"})
					if err != nil {
						t.Errorf("node %d send %d: %v", k, i, err)
						continue
					}
					waited.Add(int64(rc.Waited))
				}
			})
		}
	}
	wg.Wait()
	return time.Duration(waited.Load())
}

// TestIssue15_SessionsAcrossNodes: three Senders of a connection with
// MaxSessions 2, 8 goroutines and 12 messages each: the server never sees more than 2
// sessions at once, every message arrives, and the receipts count the
// wait for a slot another node held.
func TestIssue15_SessionsAcrossNodes(t *testing.T) {
	t.Parallel()
	srv := newConcurrencyServer(t)
	c := Connection{Name: "shared", MailServer: srv.Addr(), From: "engine@example.com", MaxSessions: 2, SendTimeout: 10 * time.Second}
	ss := nodes(t, 3, c, memstore.New(nil), nil)
	waited := sendAll(t, ss, 8, 12)
	if got := srv.max.Load(); got > 2 {
		t.Errorf("the server saw %d sessions at once, want at most 2", got)
	}
	if got := len(srv.Messages()); got != 36 {
		t.Errorf("delivered %d of 36", got)
	}
	if waited == 0 {
		t.Error("no receipt reports a wait")
	}
}

// TestIssue15_RateAcrossNodes: three Senders of a connection with
// MessagesPerMinute 10, the minute scaled to 400 ms: no window at the
// server holds more than 10 MAILs (with the transit jitter allowed for,
// as in TestIssue14_M365BurstNoThrottling).
func TestIssue15_RateAcrossNodes(t *testing.T) {
	const (
		perMin = 10
		minute = 400 * time.Millisecond
		jitter = 25 * time.Millisecond
	)
	srv := newConcurrencyServer(t)
	c := Connection{Name: "rated", MailServer: srv.Addr(), From: "engine@example.com", MessagesPerMinute: perMin, SendTimeout: 10 * time.Second}
	ss := nodes(t, 3, c, memstore.New(nil), func(o *Options) { o.limitMinute = minute })
	start := time.Now()
	sendAll(t, ss, 4, 10)
	drain := time.Since(start)
	srv.mu.Lock()
	mails := slices.Clone(srv.mail)
	srv.mu.Unlock()
	slices.SortFunc(mails, func(a, b time.Time) int { return a.Compare(b) })
	for i := range mails {
		k := 0
		for j := i; j < len(mails) && mails[j].Sub(mails[i]) < minute-jitter; j++ {
			k++
		}
		if k > perMin {
			t.Fatalf("%d MAILs within %v from MAIL %d, want at most %d", k, minute-jitter, i, perMin)
		}
	}
	if len(mails) != 30 {
		t.Errorf("%d MAILs, want 30", len(mails))
	}
	if min := 2 * minute; drain < min {
		t.Errorf("30 messages at 10 a minute drained in %v, less than two windows (%v)", drain, min)
	}
}

// TestIssue15_SessionSlotLost: a session whose shared slot expired (its
// node stalled past the lease, on the store's fake clock) is closed by
// its next renewal, and the slot goes to another node.
func TestIssue15_SessionSlotLost(t *testing.T) {
	t.Parallel()
	srv := newConcurrencyServer(t)
	clock := newStoreClock()
	st := memstore.New(clock.Now)
	c := Connection{Name: "one", MailServer: srv.Addr(), From: "engine@example.com", MaxSessions: 1, SendTimeout: 10 * time.Second}
	ss := nodes(t, 2, c, st, func(o *Options) { o.leaseTTL = 150 * time.Millisecond })
	if _, err := ss[0].Send(t.Context(), &Message{To: []string{"a@example.com"}, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	// Node 0 keeps its idle session and its slot; node 1 waits.
	got := make(chan error, 1)
	go func() {
		_, err := ss[1].Send(t.Context(), &Message{To: []string{"b@example.com"}, Text: "x"})
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("node 1 sent while node 0 held the only slot: %v", err)
	case <-srv.SessionClosed(1):
		t.Fatal("node 0's session closed before its lease expired")
	case <-time.After(100 * time.Millisecond):
	}
	clock.Advance(time.Second) // node 0's lease runs out before its renewal
	select {
	case <-srv.SessionClosed(1):
	case <-time.After(5 * time.Second):
		t.Fatal("node 0 did not close the session whose slot it lost")
	}
	// Node 1 may have taken the slot the moment it expired, before node 0
	// noticed: a node stalled past its lease is what the lease is for.
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// storeClock is a settable clock for memstore.
type storeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newStoreClock() *storeClock {
	return &storeClock{now: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
}

func (c *storeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *storeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// downStore is a Store that fails every call while down is set.
type downStore struct {
	Store
	down  atomic.Bool
	calls atomic.Int64
}

var errStoreDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (d *downStore) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	d.calls.Add(1)
	if d.down.Load() {
		return -1, 0, errStoreDown
	}
	return d.Store.Acquire(ctx, key, limit, owner, ttl)
}

// TestIssue15_StoreDownFailsSend: with the store unreachable a send that
// needs a session slot fails with ErrStore, Temporary, after the retry
// policy's attempts, and nothing reaches the server; once the store is
// back the send goes through.
func TestIssue15_StoreDownFailsSend(t *testing.T) {
	t.Parallel()
	srv := newConcurrencyServer(t)
	st := &downStore{Store: memstore.New(nil)}
	st.down.Store(true)
	c := Connection{Name: "down", MailServer: srv.Addr(), From: "engine@example.com", MaxSessions: 2, SendTimeout: 5 * time.Second}
	s := nodes(t, 1, c, st, func(o *Options) {
		o.IdleTimeout = -1
		o.Retry = RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	})[0]
	_, err := s.Send(t.Context(), &Message{To: []string{"a@example.com"}, Text: "x"})
	var e *Error
	if !errors.Is(err, ErrStore) || !errors.As(err, &e) || !e.Temporary() {
		t.Fatalf("err %v, want a temporary ErrStore", err)
	}
	if srv.Sessions() != 0 {
		t.Fatalf("%d sessions opened with the store down", srv.Sessions())
	}
	if n := st.calls.Load(); n != 2 {
		t.Errorf("%d store calls, want one per attempt (2)", n)
	}
	st.down.Store(false)
	if _, err := s.Send(t.Context(), &Message{To: []string{"a@example.com"}, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Messages()); got != 1 {
		t.Fatalf("%d messages, want 1", got)
	}
}

// TestIssue15_LongNamesFitTheStore: a connection name of any length makes
// keys within the Store's 512 bytes, distinct for distinct names.
func TestIssue15_LongNamesFitTheStore(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400)
	a, b := storeKey(&Connection{Name: long + "a"}, "sessions/wanted"), storeKey(&Connection{Name: long + "b"}, "sessions/wanted")
	if len(a) > 512 || a == b || !utf8.ValidString(a) {
		t.Fatalf("keys %d bytes, equal %v, valid UTF-8 %v", len(a), a == b, utf8.ValidString(a))
	}
	if k := storeKey(&Connection{Name: "billing"}, "rate"); k != "smtp/billing/rate" {
		t.Fatalf("key %q", k)
	}
	if k := newTokenShare(&Options{Store: memstore.New(nil)}, long).lease; len(k) > 512 {
		t.Fatalf("lease key of %d bytes", len(k))
	}
}
