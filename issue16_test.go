package emailconn_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
	"github.com/emailconn/emailconn/internal/ledgertest"
	"github.com/emailconn/emailconn/internal/memstore"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// countingStore counts the calls of a Store for the delivery ledger's
// keys (the session slots of the connection, shared through the same
// store, are not counted), and can fail them or watch them.
type countingStore struct {
	emailconn.Store
	acquire, renew, release, load, swap atomic.Int32
	fail                                atomic.Bool                                  // every ledger call fails
	onLoad                              func(value []byte, version int64, err error) // called after each ledger Load
}

var errStoreDown = errors.New("store unreachable")

func isLedger(key string) bool { return strings.HasPrefix(key, "delivery/") }

func (c *countingStore) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	if isLedger(key) {
		c.acquire.Add(1)
	}
	return c.Store.Acquire(ctx, key, limit, owner, ttl)
}

func (c *countingStore) Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error) {
	if isLedger(key) {
		c.renew.Add(1)
	}
	return c.Store.Renew(ctx, key, slot, owner, ttl)
}

func (c *countingStore) Release(ctx context.Context, key string, slot int, owner string) error {
	if isLedger(key) {
		c.release.Add(1)
	}
	return c.Store.Release(ctx, key, slot, owner)
}

func (c *countingStore) Load(ctx context.Context, key string) ([]byte, int64, error) {
	if !isLedger(key) {
		return c.Store.Load(ctx, key)
	}
	c.load.Add(1)
	if c.fail.Load() {
		return nil, 0, errStoreDown
	}
	v, ver, err := c.Store.Load(ctx, key)
	if c.onLoad != nil {
		c.onLoad(v, ver, err)
	}
	return v, ver, err
}

func (c *countingStore) Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error) {
	if !isLedger(key) {
		return c.Store.Swap(ctx, key, version, value, ttl)
	}
	c.swap.Add(1)
	if c.fail.Load() {
		return false, errStoreDown
	}
	return c.Store.Swap(ctx, key, version, value, ttl)
}

func (c *countingStore) calls() (loads, swaps, others int32) {
	return c.load.Load(), c.swap.Load(), c.acquire.Load() + c.renew.Load() + c.release.Load()
}

func (c *countingStore) reset() {
	for _, n := range []*atomic.Int32{&c.acquire, &c.renew, &c.release, &c.load, &c.swap} {
		n.Store(0)
	}
}

func keyed(key string) *emailconn.Message {
	m := basicMessage()
	m.IdempotencyKey = key
	return m
}

// TestIssue16_01_KeyValidation: a key that is too long, not UTF-8 or has
// a control character is refused before any I/O, naming the field.
func TestIssue16_01_KeyValidation(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	for _, key := range []string{strings.Repeat("k", 513), "wf-1/\xff", "wf-1/\nBcc: x@example.com", "wf\x00"} {
		_, err := s.Send(context.Background(), keyed(key))
		var fe *emailconn.FieldError
		if !errors.Is(err, emailconn.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "IdempotencyKey" {
			t.Errorf("Send(key %q) = %v; want ErrInvalid naming IdempotencyKey", key, err)
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("the error %q shows the key", err)
		}
	}
	if _, err := s.Send(context.Background(), keyed(strings.Repeat("é", 256))); err != nil {
		t.Errorf("a 512-byte UTF-8 key: %v", err)
	}
	if n := srv.Sessions(); n != 1 {
		t.Errorf("%d sessions; want 1, for the valid key only", n)
	}
}

// TestIssue16_02_MessageIDVector: the Message-ID derived from a key is a
// compatibility promise, checked against a fixed vector; it does not show
// the key; an explicit MessageID wins.
func TestIssue16_02_MessageIDVector(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	const key = "workflow-7f3a/activity-send-approval"
	// SHA-256("emailconn message-id v1\x00" + key), first 16 bytes in hex, at
	// the From address's domain. Never change it: a release that did
	// would send a retry of an old activity under a new Message-ID.
	const want = "e541512febee5b6c193c87fbe3907cc8@example.com"
	rc, err := s.Send(context.Background(), keyed(key))
	if err != nil {
		t.Fatal(err)
	}
	if rc.MessageID != want {
		t.Errorf("Message-ID = %q, want %q", rc.MessageID, want)
	}
	data := string(srv.Messages()[0].Data)
	if !strings.Contains(data, "Message-ID: <"+want+">") {
		t.Errorf("the message does not carry Message-ID %s:\n%s", want, data)
	}
	if strings.Contains(data, "workflow-7f3a") || strings.Contains(data, "activity-send-approval") {
		t.Errorf("the message shows the key:\n%s", data)
	}
	m := keyed("workflow-7f3a/other")
	m.From = "alerts@[192.0.2.1]"
	if rc, err := s.Send(context.Background(), m); err != nil || !strings.HasSuffix(rc.MessageID, "@emailconn.invalid") {
		t.Errorf("a From without a domain name: %v, %v; want a Message-ID at emailconn.invalid", rc, err)
	}
	m = keyed("workflow-7f3a/explicit")
	m.MessageID = "own.1@example.com"
	if rc, err := s.Send(context.Background(), m); err != nil || rc.MessageID != "own.1@example.com" {
		t.Errorf("an explicit MessageID with a key: %v, %v", rc, err)
	}
	if rc, err := s.Send(context.Background(), m); err != nil || !rc.Replayed || rc.MessageID != "own.1@example.com" {
		t.Errorf("its retry: %+v, %v; want the replayed Receipt", rc, err)
	}
}

// TestIssue16_03_Replay: a key that was accepted returns the stored
// Receipt, marked Replayed, without touching SMTP.
func TestIssue16_03_Replay(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{IdleTimeout: -1})
	first, err := s.Send(context.Background(), keyed("wf-3/notify"))
	if err != nil || first.Replayed {
		t.Fatalf("first send: %+v, %v", first, err)
	}
	for range 3 {
		rc, err := s.Send(context.Background(), keyed("wf-3/notify"))
		if err != nil || !rc.Replayed {
			t.Fatalf("retry: %+v, %v; want a replay", rc, err)
		}
		if rc.MessageID != first.MessageID || rc.Reply != first.Reply || rc.QueueID != first.QueueID || rc.Server != first.Server ||
			strings.Join(rc.Accepted, ",") != strings.Join(first.Accepted, ",") || rc.Attempts != first.Attempts || rc.Transactions != first.Transactions {
			t.Errorf("replayed %+v; want the first %+v", rc, first)
		}
	}
	if n, sess := len(srv.Messages()), srv.Sessions(); n != 1 || sess != 1 {
		t.Errorf("%d messages in %d sessions; want 1 in 1", n, sess)
	}
	if _, err := s.Send(context.Background(), keyed("wf-3/other")); err != nil || len(srv.Messages()) != 2 {
		t.Errorf("another key: %v, %d messages", err, len(srv.Messages()))
	}
}

// TestIssue16_04_RefusedReplay: a permanent refusal of the message comes
// back as the same error, matching the same sentinels, without touching
// SMTP; a refusal of the sender (MAIL FROM) and temporary failures leave
// the key free.
func TestIssue16_04_RefusedReplay(t *testing.T) {
	t.Parallel()
	var refuseMail atomic.Bool
	srv := smtptest.NewServer(t, smtptest.Options{
		DataHook: func(from string, to []string, data []byte) *smtp.SMTPError {
			if strings.Contains(string(data), "Subject: spam") {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected as spam"}
			}
			return nil
		},
		RcptHook: func(to string) *smtp.SMTPError {
			if strings.HasPrefix(to, "nouser") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			}
			return nil
		},
		MailHook: func(from string) *smtp.SMTPError {
			if refuseMail.Load() {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender not allowed"}
			}
			return nil
		},
	})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	check := func(name string, m *emailconn.Message, sentinel error, code int) {
		t.Helper()
		_, err1 := s.Send(context.Background(), m)
		sessions := srv.Sessions()
		transcript := len(srv.Transcript())
		rc, err2 := s.Send(context.Background(), m)
		for i, err := range []error{err1, err2} {
			var se *emailconn.SMTPError
			var e *emailconn.Error
			if !errors.Is(err, sentinel) || !errors.As(err, &se) || se.Code != code || !errors.As(err, &e) || e.Temporary() {
				t.Errorf("%s: send %d = %v; want %v with reply %d, permanent", name, i+1, err, sentinel, code)
			}
		}
		if rc != nil {
			t.Errorf("%s: replayed refusal with Receipt %+v", name, rc)
		}
		var e1, e2 *emailconn.Error
		if errors.As(err1, &e1) && errors.As(err2, &e2) && (e1.Stage != e2.Stage || e1.Connection != e2.Connection) {
			t.Errorf("%s: replayed stage %q connection %q; first %q %q", name, e2.Stage, e2.Connection, e1.Stage, e1.Connection)
		}
		if srv.Sessions() != sessions || len(srv.Transcript()) != transcript {
			t.Errorf("%s: the replay of the refusal talked to the server", name)
		}
	}
	spam := keyed("wf-4/spam")
	spam.Subject = "spam"
	check("refused after DATA", spam, emailconn.ErrRefused, 554)
	nouser := keyed("wf-4/nouser")
	nouser.To = []string{"nouser@example.com"}
	check("every recipient refused", nouser, emailconn.ErrRecipientRejected, 550)
	all := keyed("wf-4/all-or-nothing")
	all.To, all.RequireAllRecipients = []string{"ok@example.com", "nouser@example.com"}, true
	check("all or nothing", all, emailconn.ErrRecipientRejected, 550)
	if _, err := s.Send(context.Background(), all); err != nil {
		var re *emailconn.RecipientsError
		if !errors.As(err, &re) || re.Accepted != 1 || len(re.Rejected) != 1 {
			t.Errorf("all or nothing, replayed: %v", err)
		}
	}

	// The sender refused: an administrator may fix the connection.
	refuseMail.Store(true)
	if _, err := s.Send(context.Background(), keyed("wf-4/mail")); !errors.Is(err, emailconn.ErrRefused) {
		t.Fatalf("MAIL refused: %v", err)
	}
	refuseMail.Store(false)
	if rc, err := s.Send(context.Background(), keyed("wf-4/mail")); err != nil || rc.Replayed {
		t.Errorf("after the sender was fixed: %+v, %v; want it sent", rc, err)
	}
}

// TestIssue16_05_PartialRecipients: a message delivered to some recipients
// and refused for others replays both its Receipt and its
// ErrRecipientRejected.
func TestIssue16_05_PartialRecipients(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{RcptHook: rcptMix})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	m := keyed("wf-5/mixed")
	m.To = []string{"ok@example.com", "nouser@example.com"}
	rc1, err1 := s.Send(context.Background(), m)
	rc2, err2 := s.Send(context.Background(), m)
	for i, r := range []struct {
		rc  *emailconn.Receipt
		err error
	}{{rc1, err1}, {rc2, err2}} {
		var re *emailconn.RecipientsError
		if r.rc == nil || !errors.Is(r.err, emailconn.ErrRecipientRejected) || !errors.As(r.err, &re) ||
			len(re.Rejected) != 1 || re.Rejected[0].Address != "nouser@example.com" || re.Rejected[0].Err.Code != 550 || re.Accepted != 1 {
			t.Fatalf("send %d = %+v, %v", i+1, r.rc, r.err)
		}
		if len(r.rc.Accepted) != 1 || r.rc.Accepted[0] != "ok@example.com" || len(r.rc.Rejected) != 1 || r.rc.Rejected[0].Err.Enhanced() != "5.1.1" {
			t.Errorf("send %d: Receipt %+v", i+1, r.rc)
		}
	}
	if !rc2.Replayed || len(srv.Messages()) != 1 {
		t.Errorf("replayed %v, %d messages", rc2.Replayed, len(srv.Messages()))
	}
}

// TestIssue16_06_ResendUnknown: an unknown delivery is returned as
// ErrDeliveryUnknown with its record until the caller asks to send anyway;
// that send's acceptance is then replayed.
func TestIssue16_06_ResendUnknown(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop, Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	m := keyed("wf-6/unknown")
	var first *emailconn.Delivery
	for i := range 2 {
		_, err := s.Send(context.Background(), m)
		var d *emailconn.Delivery
		if !errors.Is(err, emailconn.ErrDeliveryUnknown) || !errors.As(err, &d) || d.State != "unknown" {
			t.Fatalf("send %d = %v; want ErrDeliveryUnknown with its record", i+1, err)
		}
		if first == nil {
			first = d
		} else if d.MessageID != first.MessageID || !d.Started.Equal(first.Started) || d.Node != first.Node {
			t.Errorf("record %+v; first %+v", *d, *first)
		}
	}
	if srv.Sessions() != 1 {
		t.Errorf("%d sessions: a message of unknown delivery was sent again", srv.Sessions())
	}
	m.ResendUnknown = true
	rc, err := s.Send(context.Background(), m)
	if err != nil || rc.Replayed || rc.MessageID != first.MessageID {
		t.Fatalf("ResendUnknown: %+v, %v", rc, err)
	}
	m.ResendUnknown = false
	if rc, err := s.Send(context.Background(), m); err != nil || !rc.Replayed {
		t.Errorf("after the resend: %+v, %v; want its replay", rc, err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages accepted; want 1", n)
	}
}

// TestIssue16_07_RegistrySharesLedger: without a Store, the Routes and
// Senders of one Registry share one ledger, across connections too: the
// key is the notification's, not the connection's.
func TestIssue16_07_RegistrySharesLedger(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	other := smtptest.NewServer(t, smtptest.Options{})
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{
			{Name: "alerts", MailServer: srv.Addr(), From: "alerts@example.com", To: []string{"ops@example.com"}},
			{Name: "backup", MailServer: other.Addr(), From: "alerts@example.com", To: []string{"ops@example.com"}},
		},
		Processes: map[string]string{"Payroll": "alerts"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rt, err := r.Resolve("Payroll")
	if err != nil {
		t.Fatal(err)
	}
	m := &emailconn.Message{Subject: "Approve", Text: "Please approve.", IdempotencyKey: "wf-7/approve"}
	first, err := rt.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alerts", "backup"} {
		s, err := r.Sender(name)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := s.Send(context.Background(), m)
		if err != nil || !rc.Replayed || rc.MessageID != first.MessageID {
			t.Errorf("Registry.Sender(%q).Send: %+v, %v; want the route's Receipt replayed", name, rc, err)
		}
	}
	// A Replace keeps the ledger.
	if err := r.Update(func(cfg *emailconn.Config) error { cfg.Connections[0].To = []string{"team@example.com"}; return nil }); err != nil {
		t.Fatal(err)
	}
	if rc, err := rt.Send(context.Background(), m); err != nil || !rc.Replayed {
		t.Errorf("after Replace: %+v, %v", rc, err)
	}
	if len(srv.Messages()) != 1 || len(other.Messages()) != 0 {
		t.Errorf("messages: %d and %d; want 1 and 0", len(srv.Messages()), len(other.Messages()))
	}
}

// TestIssue16_08_StoreRoundTrips: a first send of a key that is accepted
// costs one store call before the message and the final write; a replay
// two calls and no SMTP; a send without a key none.
func TestIssue16_08_StoreRoundTrips(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	cs := &countingStore{Store: newTestStore()}
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Store: cs})
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	if l, sw, o := cs.calls(); l+sw+o != 0 {
		t.Errorf("a send without a key made %d loads, %d swaps, %d lease calls; want none", l, sw, o)
	}
	if _, err := s.Send(context.Background(), keyed("wf-8/a")); err != nil {
		t.Fatal(err)
	}
	if l, sw, o := cs.calls(); l != 0 || sw != 2 || o != 0 {
		t.Errorf("first send of a key: %d loads, %d swaps, %d lease calls; want 0, 2 (the claim, the final write), 0", l, sw, o)
	}
	cs.reset()
	if rc, err := s.Send(context.Background(), keyed("wf-8/a")); err != nil || !rc.Replayed {
		t.Fatal(rc, err)
	}
	if l, sw, o := cs.calls(); l != 1 || sw != 1 || o != 0 {
		t.Errorf("replay: %d loads, %d swaps, %d lease calls; want 1, 1, 0", l, sw, o)
	}
}

// TestIssue16_09_StoreDown: a ledger that cannot decide fails a send with
// a key with ErrStore before any SMTP; a send without a key does not use
// it.
func TestIssue16_09_StoreDown(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	cs := &countingStore{Store: newTestStore()}
	cs.fail.Store(true)
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Store: cs})
	_, err := s.Send(context.Background(), keyed("wf-9/a"))
	var e *emailconn.Error
	if !errors.Is(err, emailconn.ErrStore) || !errors.Is(err, errStoreDown) || !errors.As(err, &e) || !e.Temporary() ||
		!strings.HasPrefix(err.Error(), "emailconn: ") || !strings.Contains(err.Error(), "nothing was sent") {
		t.Errorf("Send with the store down = %v", err)
	}
	if srv.Sessions() != 0 {
		t.Errorf("%d sessions with the ledger unreachable", srv.Sessions())
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Errorf("a send without a key: %v", err)
	}
	// The ledger fails after the claim: the message was delivered, Send
	// says so; the record stays "sending" (the crash window).
	cs.fail.Store(false)
	var once sync.Once
	cs2 := &countingStore{Store: newTestStore()}
	srv2 := smtptest.NewServer(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
		once.Do(func() { cs2.fail.Store(true) })
		return nil
	}})
	s2 := mustSender(t, connFor(t, srv2, "none"), &emailconn.Options{Store: cs2})
	if rc, err := s2.Send(context.Background(), keyed("wf-9/b")); err != nil || rc == nil {
		t.Errorf("final write failed: %+v, %v; want the Receipt", rc, err)
	}
}

// TestIssue16_10_ConcurrentSameKey: sends of one key from many goroutines
// never run in parallel: one sends, the others wait for its outcome and
// replay it.
func TestIssue16_10_ConcurrentSameKey(t *testing.T) {
	t.Parallel()
	const n = 8
	release := make(chan struct{})
	var releaseOnce sync.Once
	srv := smtptest.NewServer(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
		<-release
		return nil
	}})
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	// The server holds the message until the n-1 other sends have read
	// the record as "sending": every one of them is then waiting.
	var waiting atomic.Int32
	cs := &countingStore{Store: newTestStore()}
	cs.onLoad = func(v []byte, _ int64, err error) {
		if err == nil && strings.Contains(string(v), `"state":"sending"`) && waiting.Add(1) == n-1 {
			releaseOnce.Do(func() { close(release) })
		}
	}
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Store: cs})
	var wg sync.WaitGroup
	var sent, replayed atomic.Int32
	for range n {
		wg.Go(func() {
			rc, err := s.Send(context.Background(), keyed("wf-10/same"))
			switch {
			case err != nil:
				t.Errorf("Send: %v", err)
			case rc.Replayed:
				replayed.Add(1)
			default:
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	if sent.Load() != 1 || replayed.Load() != n-1 || len(srv.Messages()) != 1 {
		t.Errorf("%d sent, %d replayed, %d delivered; want 1, %d, 1", sent.Load(), replayed.Load(), len(srv.Messages()), n-1)
	}
}

// TestIssue16_11_FaultMatrix: the connection cut at each point of the
// first attempt, and the engine retrying three times with the same key,
// from one process: with the Sender's own ledger (one Sender for every
// attempt), and with a Store shared by a new Sender per attempt.
func TestIssue16_11_FaultMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range ledgertest.Cuts() {
		for _, shared := range []bool{false, true} {
			name := c.Name + "/own ledger"
			if shared {
				name = c.Name + "/shared store"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv := ledgertest.Server(t, c)
				key := "wf-11/" + name
				var outs []ledgertest.Outcome
				if shared {
					st := newTestStore()
					for range ledgertest.Attempts {
						outs = append(outs, ledgertest.Send(context.Background(), srv.Addr(), st, key, c.Big))
					}
				} else {
					s, err := emailconn.NewSender(ledgertest.Connection(srv.Addr()), ledgertest.Options(nil))
					if err != nil {
						t.Fatal(err)
					}
					for range ledgertest.Attempts {
						outs = append(outs, ledgertest.Try(context.Background(), s, key, c.Big))
					}
					s.Close()
				}
				ledgertest.Check(t, c, outs, ledgertest.Delivered(srv))
				if c.Unknown && srv.Sessions() != 1 {
					t.Errorf("%d sessions: a retry of an unknown delivery reached the server", srv.Sessions())
				}
			})
		}
	}
}

// newTestStore is an in-process Store shared by the Senders of a test.
func newTestStore() emailconn.Store { return memstore.New(nil) }

// TestIssue16_17_LogsAndRecord: the ledger's log lines (a resend of an
// unknown delivery at Warn, a replay at Info) name the Message-ID, never
// the key; a Delivery describes itself.
func TestIssue16_17_LogsAndRecord(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop, Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	const key = "tenant-secretive/workflow-99/notify"
	_, err := s.Send(context.Background(), keyed(key))
	var d *emailconn.Delivery
	if !errors.As(err, &d) {
		t.Fatalf("Send = %v", err)
	}
	if got := d.Error(); !strings.HasPrefix(got, "emailconn: delivery of message "+d.MessageID+": unknown since ") || !strings.Contains(got, "(node "+d.Node+")") {
		t.Errorf("Delivery.Error() = %q", got)
	}
	m := keyed(key)
	m.ResendUnknown = true
	if _, err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if rc, err := s.Send(context.Background(), keyed(key)); err != nil || !rc.Replayed {
		t.Fatal(rc, err)
	}
	out := logs.String()
	for _, want := range []string{"level=WARN msg=\"email sent again although its delivery is unknown", "level=INFO msg=\"email already sent: receipt from the delivery ledger\"", d.MessageID} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secretive") || strings.Contains(err.Error(), "secretive") {
		t.Errorf("the key shows in the log or the error:\n%s\n%v", out, err)
	}
}

// TestIssue16_18_TwoRegistriesOneStore: two Registries (two engine nodes)
// sharing a Store share the ledger: a notification the first sent is a
// replay on the second, whatever connection the second routes it through.
func TestIssue16_18_TwoRegistriesOneStore(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	st := emailconntest.NewStore()
	node := func(conn string) emailconn.Route {
		t.Helper()
		r, err := emailconn.NewRegistry(emailconn.Config{
			Connections: []emailconn.Connection{{Name: conn, MailServer: srv.Addr(), From: "alerts@example.com", To: []string{"ops@example.com"}}},
			Processes:   map[string]string{"Payroll": conn},
		}, &emailconn.Options{Store: st})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rt, err := r.Resolve("Payroll")
		if err != nil {
			t.Fatal(err)
		}
		return rt
	}
	a, b := node("alerts"), node("alerts-eu")
	m := &emailconn.Message{Subject: "Approve", Text: "Please approve.", IdempotencyKey: "wf-18/approve"}
	first, err := a.Send(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.Send(context.Background(), m)
	if err != nil || !rc.Replayed || rc.MessageID != first.MessageID || len(srv.Messages()) != 1 {
		t.Errorf("second node: %+v, %v; %d messages", rc, err, len(srv.Messages()))
	}
}

// TestIssue16_19_SplitHalfDelivered: a message whose recipients were split
// into transactions, delivered by the first and not by the second, is
// recorded unknown with the Receipt of what was delivered: a retry sends
// nothing and says which recipients got it.
func TestIssue16_19_SplitHalfDelivered(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{MailHook: func(string) *smtp.SMTPError {
		if n.Add(1) == 2 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
		}
		return nil
	}})
	c := connFor(t, srv, "none")
	c.MaxRecipientsPerMessage = 1
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	m := keyed("wf-19/split")
	m.To = []string{"first@example.com", "second@example.com"}
	rc, err := s.Send(context.Background(), m)
	if rc == nil || err == nil || len(rc.Accepted) != 1 || rc.Accepted[0] != "first@example.com" {
		t.Fatalf("first send: %+v, %v; want the first recipient's Receipt and the second's failure", rc, err)
	}
	sessions := srv.Sessions()
	_, err = s.Send(context.Background(), m)
	var d *emailconn.Delivery
	if !errors.Is(err, emailconn.ErrDeliveryUnknown) || !errors.As(err, &d) || d.Receipt == nil ||
		len(d.Receipt.Accepted) != 1 || d.Receipt.Accepted[0] != "first@example.com" {
		t.Fatalf("retry: %v (%+v); want ErrDeliveryUnknown with the Receipt of the first recipient", err, d)
	}
	if srv.Sessions() != sessions || len(srv.Messages()) != 1 {
		t.Errorf("the retry reached the server: %d sessions, %d messages", srv.Sessions(), len(srv.Messages()))
	}
}
