package emailconn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
	"github.com/emailconn/emailconn/internal/throttle"
)

// ledgerFixture is Senders on a fake clock with a store on the same clock;
// polls receives a value each time a waiting send has set its timer.
type ledgerFixture struct {
	clock *throttle.FakeClock
	store Store
	srv   *smtptest.Server
	polls chan struct{}
}

func newLedgerFixture(t *testing.T, so smtptest.Options) *ledgerFixture {
	t.Helper()
	clock := throttle.NewFakeClock(time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	return &ledgerFixture{clock: clock, store: newLocalStore(clock.Now), srv: smtptest.NewServer(t, so),
		polls: make(chan struct{}, 16)}
}

func (f *ledgerFixture) sender(t *testing.T, o Options) *Sender {
	t.Helper()
	o.clock, o.Store = f.clock, f.store
	o.pollHook = func() { f.polls <- struct{}{} }
	o.Retry = RetryPolicy{MaxAttempts: 1}
	c := Connection{Name: "ledger", MailServer: f.srv.Addr(), From: "engine@example.com", SendTimeout: time.Minute}
	return mustSender(t, c, &o)
}

// drive moves the clock by step each time a waiting send has set its
// timer, until done delivers; it returns the result and the time moved.
func (f *ledgerFixture) drive(done chan sendResult, step time.Duration) (sendResult, time.Duration) {
	var moved time.Duration
	for {
		select {
		case <-f.polls:
			f.clock.Advance(step)
			moved += step
		case r := <-done:
			return r, moved
		}
	}
}

func (f *ledgerFixture) state(t *testing.T, key string) string {
	t.Helper()
	v, _, err := f.store.Load(context.Background(), ledgerKey(key))
	var r ledgerRecord
	if err != nil || v != nil && json.Unmarshal(v, &r) != nil {
		t.Fatalf("load: %v", err)
	}
	return r.State
}

func ledgerMessage(key string) *Message {
	return &Message{To: []string{"approver@example.com"}, Subject: "Approve", Text: "Please approve.", IdempotencyKey: key}
}

type sendResult struct {
	rc  *Receipt
	err error
}

func sendAsync(s *Sender, m *Message) chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		rc, err := s.Send(context.Background(), m)
		ch <- sendResult{rc, err}
	}()
	return ch
}

// TestIssue16_12_CrashedOwnerIsUnknown: a "sending" record whose node
// stopped renewing it (it crashed mid-send) is found unknown once its lease
// has passed, never free: the waiting send returns ErrDeliveryUnknown with
// the record, and sends only with ResendUnknown.
func TestIssue16_12_CrashedOwnerIsUnknown(t *testing.T) {
	t.Parallel()
	for _, resend := range []bool{false, true} {
		f := newLedgerFixture(t, smtptest.Options{})
		s := f.sender(t, Options{})
		key := "wf-12/crashed"
		now := f.clock.Now()
		crashed := ledgerRecord{V: 1, State: stateSending, MessageID: "dead.1@example.com", Node: "worker-2/99",
			Started: now, Updated: now, LeaseMS: defaultLeaseTTL.Milliseconds()}
		if ok, err := f.store.Swap(context.Background(), ledgerKey(key), 0, mustJSON(&crashed), time.Hour); !ok || err != nil {
			t.Fatal(ok, err)
		}
		m := ledgerMessage(key)
		m.ResendUnknown = resend
		// The clock moves a second each time the send waits to read the
		// record again.
		res, waited := f.drive(sendAsync(s, m), time.Second)
		if waited < defaultLeaseTTL || waited > defaultLeaseTTL+2*time.Second {
			t.Errorf("decided after %v on the clock; want the lease, %v", waited, defaultLeaseTTL)
		}
		if resend {
			if res.err != nil || res.rc.Replayed || len(f.srv.Messages()) != 1 {
				t.Errorf("ResendUnknown: %+v, %v, %d messages", res.rc, res.err, len(f.srv.Messages()))
			}
			continue
		}
		var d *Delivery
		if !errors.Is(res.err, ErrDeliveryUnknown) || !errors.As(res.err, &d) || d.State != stateUnknown ||
			d.Node != "worker-2/99" || d.MessageID != "dead.1@example.com" || !strings.Contains(d.Detail, "stopped renewing") {
			t.Fatalf("Send = %v (%+v); want ErrDeliveryUnknown with the crashed node's record", res.err, d)
		}
		if f.srv.Sessions() != 0 {
			t.Errorf("%d sessions", f.srv.Sessions())
		}
		// The record now says unknown: a later send learns it at once.
		if state := f.state(t, key); state != stateUnknown {
			t.Errorf("record %q", state)
		}
		if rc, err := s.Send(context.Background(), ledgerMessage(key)); !errors.Is(err, ErrDeliveryUnknown) || rc != nil {
			t.Errorf("second send: %v, %v", rc, err)
		}
	}
}

// TestIssue16_13_LiveOwnerRenews: a send of a key in progress renews its
// lease, so a send of the same key waits for it however long it takes
// (three leases here), and then replays its Receipt: never in parallel.
func TestIssue16_13_LiveOwnerRenews(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := newLedgerFixture(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
		once.Do(func() { close(entered) })
		<-release
		return nil
	}})
	a, b := f.sender(t, Options{}), f.sender(t, Options{})
	key := "wf-13/slow"
	first := sendAsync(a, ledgerMessage(key))
	<-entered
	second := sendAsync(b, ledgerMessage(key))
	for elapsed := time.Duration(0); elapsed < 3*defaultLeaseTTL; elapsed += time.Second {
		<-f.polls
		f.clock.Advance(time.Second)
	}
	if state := f.state(t, key); state != stateSending {
		t.Fatalf("after three leases the record is %q", state)
	}
	select {
	case r := <-second:
		t.Fatalf("the waiting send returned while the first was sending: %+v, %v", r.rc, r.err)
	default:
	}
	close(release)
	ra := <-first
	if ra.err != nil || ra.rc.Replayed {
		t.Fatalf("first send: %+v, %v", ra.rc, ra.err)
	}
	rb, _ := f.drive(second, time.Second)
	if rb.err != nil || !rb.rc.Replayed || rb.rc.MessageID != ra.rc.MessageID || len(f.srv.Messages()) != 1 {
		t.Errorf("waiting send: %+v, %v; %d messages", rb.rc, rb.err, len(f.srv.Messages()))
	}
}

// TestIssue16_14_Retention: a record is kept DeliveryRetention (72 hours
// by default) after its last write; a send of the key later than that is
// a new message.
func TestIssue16_14_Retention(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retention, want time.Duration
	}{{0, 72 * time.Hour}, {time.Hour, time.Hour}} {
		f := newLedgerFixture(t, smtptest.Options{})
		s := f.sender(t, Options{DeliveryRetention: tc.retention})
		send := func() *Receipt {
			t.Helper()
			rc, err := s.Send(context.Background(), ledgerMessage("wf-14/kept"))
			if err != nil {
				t.Fatal(err)
			}
			return rc
		}
		send()
		f.clock.Advance(tc.want - time.Second)
		if rc := send(); !rc.Replayed {
			t.Errorf("retention %v: a second before the end, not a replay", tc.retention)
		}
		f.clock.Advance(time.Second)
		if rc := send(); rc.Replayed || len(f.srv.Messages()) != 2 {
			t.Errorf("retention %v: after it, replayed %v with %d messages; want a new message", tc.retention, rc.Replayed, len(f.srv.Messages()))
		}
	}
}

// TestIssue16_15_OutcomeBeatsTakeover: when a waiting send wrote "unknown"
// over a send still in progress (its clock ran ahead), the outcome the
// sending node knows replaces it.
func TestIssue16_15_OutcomeBeatsTakeover(t *testing.T) {
	t.Parallel()
	var f *ledgerFixture
	key := ledgerKey("wf-15/overtaken")
	f = newLedgerFixture(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
		v, ver, err := f.store.Load(context.Background(), key)
		var r ledgerRecord
		if err != nil || json.Unmarshal(v, &r) != nil {
			t.Errorf("load: %v", err)
			return nil
		}
		r.State, r.Node = stateUnknown, "worker-3/7"
		if ok, err := f.store.Swap(context.Background(), key, ver, mustJSON(&r), time.Hour); !ok || err != nil {
			t.Errorf("swap: %v %v", ok, err)
		}
		return nil
	}})
	s := f.sender(t, Options{})
	if rc, err := s.Send(context.Background(), ledgerMessage("wf-15/overtaken")); err != nil || rc.Replayed {
		t.Fatal(rc, err)
	}
	if state := f.state(t, "wf-15/overtaken"); state != stateAccepted {
		t.Errorf("record %q after the send; want accepted", state)
	}
	if rc, err := s.Send(context.Background(), ledgerMessage("wf-15/overtaken")); err != nil || !rc.Replayed {
		t.Errorf("retry: %+v, %v", rc, err)
	}
}

// TestIssue16_16_ForeignRecords: a record the library did not write (not
// JSON, no state, an unknown state, a refusal without its reply, absurd
// fields) fails the send before any SMTP, or is read for what it says;
// nothing panics.
func TestIssue16_16_ForeignRecords(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, smtptest.Options{})
	s := f.sender(t, Options{})
	for i, v := range []string{
		`not json`, `{}`, `{"state":""}`, `{"state":"exploded"}`, `null`, `[]`, `{"state":7}`,
		`{"state":"refused"}`, `{"state":"refused","refusal":{"stage":"rcpt"}}`,
		`{"state":"accepted","receipt":{"rejected":[{"code":-1}],"durationMs":-9223372036854775808}}`,
		`{"state":"unknown","started":"0001-01-01T00:00:00Z"}`,
		`{"state":"sending","leaseMs":-5,"updated":"9999-12-31T23:59:59Z"}`,
	} {
		key := "wf-16/foreign/" + string(rune('a'+i))
		if ok, err := f.store.Swap(context.Background(), ledgerKey(key), 0, []byte(v), time.Hour); !ok || err != nil {
			t.Fatal(ok, err)
		}
		rc, err := s.Send(context.Background(), ledgerMessage(key))
		if err == nil && !rc.Replayed {
			t.Errorf("record %s: sent, %+v", v, rc)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "emailconn: ") {
			t.Errorf("record %s: %v", v, err)
		}
	}
	if f.srv.Sessions() != 0 {
		t.Errorf("%d sessions", f.srv.Sessions())
	}
}
