package emailconn_test

// Issue 17: PIPELINING (RFC 2920) and CHUNKING (RFC 3030) against the
// project's test server, whose faults and hooks give every refusal and
// every cut the issue names.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// countingDial counts the writes and reads of every connection it makes.
type countingDial struct {
	mu            sync.Mutex
	writes, reads int
}

func (d *countingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, d: d}, nil
}

func (d *countingDial) counts() (writes, reads int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writes, d.reads
}

type countedConn struct {
	net.Conn
	d *countingDial
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.d.mu.Lock()
	c.d.writes++
	c.d.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.d.mu.Lock()
		c.d.reads++
		c.d.mu.Unlock()
	}
	return n, err
}

// sessionLines returns the client lines of the last transaction in the
// server's transcript: from the last MAIL on.
func lastTransaction(srv *smtptest.Server) []string {
	tr := srv.Transcript()
	for i := len(tr) - 1; i >= 0; i-- {
		if strings.HasPrefix(tr[i], "MAIL ") {
			return tr[i:]
		}
	}
	return nil
}

func refuseNo(to string) *smtp.SMTPError {
	if strings.HasPrefix(to, "no") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

// modes are the three ways a transaction can go: lockstep, pipelined with
// DATA, pipelined with BDAT.
var modes = []struct {
	name     string
	chunking bool // the server offers CHUNKING
	lockstep bool // DisablePipelining
}{
	{"lockstep", true, true},
	{"pipelined-DATA", false, false},
	{"pipelined-BDAT", true, false},
}

func TestIssue17_OneWritePerMessage(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking})
			c := connFor(t, srv, "none")
			c.DisablePipelining = m.lockstep
			d := &countingDial{}
			s := mustSender(t, c, &emailconn.Options{DialContext: d.dial, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			msg := basicMessage()
			msg.To = []string{"a@example.com", "b@example.com", "c@example.com"}
			if _, err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("first Send = %v", err)
			}
			w0, r0 := d.counts()
			if _, err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("second Send = %v", err)
			}
			w1, r1 := d.counts()
			writes, reads := w1-w0, r1-r0
			// Lockstep: MAIL, 3 RCPT, DATA, the message: 6 writes. DATA
			// pipelined: the flight, then the message after 354. BDAT: one.
			want := map[string]int{"lockstep": 6, "pipelined-DATA": 2, "pipelined-BDAT": 1}[m.name]
			if writes != want {
				t.Errorf("writes per message = %d, want %d", writes, want)
			}
			// Reads: at most one per reply the server wrote (MAIL, 3 RCPT,
			// 354 and the final reply; BDAT has no 354). How many of
			// those replies one read returns is up to the server's writes
			// and the scheduler (a loaded machine delivers a pipelined
			// flight's replies one by one), not the client: fewer is
			// usual, more would mean the client reads in pieces.
			replies := map[string]int{"lockstep": 6, "pipelined-DATA": 6, "pipelined-BDAT": 5}[m.name]
			if reads > replies {
				t.Errorf("reads per message = %d for %d replies (%d writes)", reads, replies, writes)
			}
			msgs := srv.Messages()
			if len(msgs) != 2 || len(msgs[1].To) != 3 {
				t.Fatalf("messages = %d, want 2 to 3 recipients", len(msgs))
			}
			if got, want := msgs[1].Chunks, map[string]int{"pipelined-BDAT": 1}[m.name]; got != want {
				t.Errorf("chunks = %d, want %d", got, want)
			}
			tx := lastTransaction(srv)
			if m.name == "pipelined-BDAT" && !slices.ContainsFunc(tx, func(l string) bool { return strings.HasPrefix(l, "BDAT ") && strings.HasSuffix(l, " LAST") }) {
				t.Errorf("transaction %q has no BDAT n LAST", tx)
			}
		})
	}
}

func TestIssue17_RecipientsRefused(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking, RcptHook: refuseNo})
			c := connFor(t, srv, "none")
			c.DisablePipelining = m.lockstep
			s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})

			// All refused: nothing delivered, per-recipient errors.
			msg := basicMessage()
			msg.To = []string{"no1@example.com", "no2@example.com"}
			rc, err := s.Send(context.Background(), msg)
			var rerr *emailconn.RecipientsError
			if !errors.Is(err, emailconn.ErrRecipientRejected) || rc != nil || !errors.As(err, &rerr) || len(rerr.Rejected) != 2 {
				t.Fatalf("all refused: Send = %v, %+v; want ErrRecipientRejected for 2 and no receipt", rc, err)
			}
			if len(srv.Messages()) != 0 {
				t.Fatal("a message was accepted with every recipient refused")
			}

			// Some refused, on the same session: delivered to the others.
			msg.To = []string{"a@example.com", "no@example.com", "b@example.com"}
			rc, err = s.Send(context.Background(), msg)
			if !errors.Is(err, emailconn.ErrRecipientRejected) || rc == nil {
				t.Fatalf("some refused: Send = %v, %v", rc, err)
			}
			if !slices.Equal(rc.Accepted, []string{"a@example.com", "b@example.com"}) || len(rc.Rejected) != 1 || rc.Rejected[0].Address != "no@example.com" {
				t.Errorf("receipt = %+v", rc)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || !slices.Equal(msgs[0].To, rc.Accepted) {
				t.Fatalf("messages = %+v", msgs)
			}
			if srv.Sessions() != 1 {
				t.Errorf("sessions = %d, want 1 (the session stays usable after the refusals)", srv.Sessions())
			}

			// RequireAllRecipients: nothing of the message is sent.
			msg.RequireAllRecipients = true
			if _, err := s.Send(context.Background(), msg); !errors.Is(err, emailconn.ErrRecipientRejected) {
				t.Fatalf("all or nothing: Send = %v", err)
			}
			if len(srv.Messages()) != 1 {
				t.Error("RequireAllRecipients: a message was delivered though one recipient was refused")
			}
			tx := lastTransaction(srv)
			if slices.ContainsFunc(tx, func(l string) bool { return l == "DATA" || strings.HasPrefix(l, "BDAT") }) {
				t.Errorf("RequireAllRecipients: %q sent the message's command after a refusal", tx)
			}
		})
	}
}

// TestIssue17_DataAfterRefusedRecipients is RFC 2920 §3.1: a server that
// answers DATA with 354 after refusing every recipient gets a lone ".".
func TestIssue17_DataAfterRefusedRecipients(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{RcptHook: refuseNo,
		Faults: []smtptest.Fault{{At: "DATA", Reply: "354 go ahead", Times: 1}}})
	c := connFor(t, srv, "none")
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	msg := basicMessage()
	msg.To = []string{"no@example.com"}
	if _, err := s.Send(context.Background(), msg); !errors.Is(err, emailconn.ErrRecipientRejected) {
		t.Fatalf("Send = %v, want ErrRecipientRejected", err)
	}
	tx := lastTransaction(srv)
	if !slices.Equal(tx, []string{"MAIL FROM:<engine@example.com> BODY=8BITMIME SIZE=" + strings.TrimPrefix(strings.Fields(tx[0])[3], "SIZE="), "RCPT TO:<no@example.com>", "DATA", "."}) {
		t.Errorf("transaction = %q, want MAIL, RCPT, DATA and a lone dot", tx)
	}
	// The session is in step: the next message goes through on it.
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("next Send = %v", err)
	}
	if srv.Sessions() != 1 || len(srv.Messages()) != 1 {
		t.Errorf("sessions %d, messages %d; want 1, 1", srv.Sessions(), len(srv.Messages()))
	}

	// DATA refused after the refused recipients (what a server should do):
	// the recipients' refusal is the result.
	srv2 := smtptest.NewServer(t, smtptest.Options{RcptHook: refuseNo})
	s2 := mustSender(t, connFor(t, srv2, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := s2.Send(context.Background(), msg)
	var rerr *emailconn.RecipientsError
	if !errors.As(err, &rerr) || len(rerr.Rejected) != 1 || rerr.Rejected[0].Err.Code != 550 {
		t.Fatalf("Send = %v, want the RCPT refusal", err)
	}
}

func TestIssue17_MailRefused(t *testing.T) {
	t.Parallel()
	for _, m := range modes[1:] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			var refuse sync.Once
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking, MailHook: func(string) *smtp.SMTPError {
				var e *smtp.SMTPError
				refuse.Do(func() {
					e = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender not allowed"}
				})
				return e
			}})
			s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
			_, err := s.Send(context.Background(), basicMessage())
			var e *emailconn.Error
			if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &e) || e.Stage != emailconn.StageMail {
				t.Fatalf("Send = %v, want ErrRefused at mail", err)
			}
			if len(srv.Messages()) != 0 {
				t.Fatal("a message was accepted after MAIL was refused")
			}
			// The RCPT and DATA replies were drained: the session goes on.
			if _, err := s.Send(context.Background(), basicMessage()); err != nil {
				t.Fatalf("next Send = %v", err)
			}
			if srv.Sessions() != 1 {
				t.Errorf("sessions = %d, want 1", srv.Sessions())
			}
		})
	}
}

func TestIssue17_BDATRefused(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true,
		Faults: []smtptest.Fault{{At: "BDAT", Reply: "554 5.6.0 Message rejected", Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	_, err := s.Send(context.Background(), basicMessage())
	var e *emailconn.Error
	if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &e) || e.Stage != emailconn.StageData {
		t.Fatalf("Send = %v, want ErrRefused at data", err)
	}
	if len(srv.Messages()) != 0 {
		t.Fatal("a refused message was recorded")
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("next Send = %v", err)
	}
	if tx := lastTransaction(srv); len(tx) == 0 || srv.Sessions() != 1 {
		t.Errorf("sessions = %d, want 1", srv.Sessions())
	}
}

// TestIssue17_CutAfterLastChunk: the connection breaks after "BDAT n LAST"
// was written whole: the server may have accepted the message, so it is
// ErrDeliveryUnknown, never retried.
func TestIssue17_CutAfterLastChunk(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		msg  func() *emailconn.Message
	}{
		{"in the flight", basicMessage},
		{"streamed", bigMessage(3 << 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop}}})
			s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
			_, err := s.Send(context.Background(), tc.msg())
			if !errors.Is(err, emailconn.ErrDeliveryUnknown) {
				t.Fatalf("Send = %v, want ErrDeliveryUnknown", err)
			}
			<-srv.Fired(0, 1)
			if srv.Sessions() != 1 {
				t.Errorf("sessions = %d: a message whose delivery is unknown was retried", srv.Sessions())
			}
		})
	}
}

// TestIssue17_CutBeforeLastChunk: the connection breaks while a streamed
// message's chunks are uploaded, before the last one is written: the
// server cannot have accepted it, and the send is retried.
func TestIssue17_CutBeforeLastChunk(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, Faults: []smtptest.Fault{
		{At: smtptest.DataBody, Action: smtptest.Drop, Bytes: 100 << 10, Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	rc, err := s.Send(context.Background(), bigMessage(3<<20)())
	if err != nil {
		t.Fatalf("Send = %v, want success on the retry", err)
	}
	if rc.Attempts != 2 || srv.Sessions() != 2 {
		t.Errorf("attempts %d, sessions %d; want 2, 2", rc.Attempts, srv.Sessions())
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].Chunks < 3 {
		t.Fatalf("messages %d (chunks %d), want 1 in at least 3 chunks", len(msgs), msgs[0].Chunks)
	}
}

// TestIssue17_StaleSessionBeforeFlight: a pooled session the server has
// closed (its FIN arrived while the session was idle) is found before the
// flight is written, and the message goes on a new session.
func TestIssue17_StaleSessionBeforeFlight(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, Faults: []smtptest.Fault{
		{At: smtptest.Idle, Delay: 500 * time.Millisecond, Session: 1}}}) // longer than a loaded machine takes to EHLO
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	<-srv.SessionClosed(1)
	rc, err := s.Send(context.Background(), basicMessage())
	if err != nil || rc.Attempts != 1 {
		t.Fatalf("Send after the server closed the pooled session = %+v, %v; want success in one attempt", rc, err)
	}
	if srv.Sessions() != 2 || len(srv.Messages()) != 2 {
		t.Errorf("sessions %d, messages %d; want 2, 2", srv.Sessions(), len(srv.Messages()))
	}
}

// TestIssue17_ServerClosesAtTheFlight: a server that reads the flight's
// MAIL and closes without a word may, for all the client knows, have read
// the whole flight, message included: ErrDeliveryUnknown, not retried.
func TestIssue17_ServerClosesAtTheFlight(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, Faults: []smtptest.Fault{
		{At: "MAIL", Action: smtptest.Drop, Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrDeliveryUnknown) {
		t.Fatalf("Send = %v, want ErrDeliveryUnknown", err)
	}
	if srv.Sessions() != 1 {
		t.Errorf("sessions = %d: retried", srv.Sessions())
	}
	// With pipelining alone the message follows DATA's 354, which never
	// came: nothing was sent, and the send is retried.
	srv2 := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: "MAIL", Action: smtptest.Drop, Times: 1}}})
	s2 := mustSender(t, connFor(t, srv2, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	if rc, err := s2.Send(context.Background(), basicMessage()); err != nil || rc.Attempts != 2 {
		t.Fatalf("Send = %+v, %v; want success on the second attempt", rc, err)
	}
}

func TestIssue17_DebugTranscriptOfFlights(t *testing.T) {
	t.Parallel()
	const pw = "canaryPW-17-flight"
	const body = "The workunit failed.\nAUTH PLAIN c2VjcmV0\n.\nsecret-body-canary"
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking, Users: map[string]string{"alice": pw}, RcptHook: refuseNo})
			c := connFor(t, srv, "none")
			c.DisablePipelining = m.lockstep
			c.Username, c.Password = "alice", pw
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := mustSender(t, c, &emailconn.Options{Logger: logger, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			msg := basicMessage()
			msg.To = []string{"a@example.com", "no@example.com"}
			msg.Text = body
			if _, err := s.Send(context.Background(), msg); !errors.Is(err, emailconn.ErrRecipientRejected) {
				t.Fatalf("Send = %v", err)
			}
			out := logs.String()
			for _, bad := range append(passwordForms(pw), "secret-body-canary", "c2VjcmV0") {
				if strings.Contains(out, bad) {
					t.Errorf("debug log holds %q:\n%s", bad, out)
				}
			}
			want := []string{"MAIL FROM:", "RCPT TO:<a@example.com>", "RCPT TO:<no@example.com>", "550 5.1.1"}
			if m.name == "pipelined-BDAT" {
				want = append(want, "BDAT ", "[chunk: ")
			} else {
				want = append(want, "DATA", "[message: ")
			}
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("debug log lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestIssue17_SizeCheckedBeforeTheFlight: a message larger than the
// server's SIZE fails before anything of the transaction is written.
func TestIssue17_SizeCheckedBeforeTheFlight(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, MaxMessageBytes: 10000})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	for _, msg := range []*emailconn.Message{
		{To: []string{"ops@example.com"}, Subject: "big", Text: strings.Repeat("0123456789\n", 2000)},
		bigMessage(50000)(),
	} {
		if _, err := s.Send(context.Background(), msg); !errors.Is(err, emailconn.ErrMessageTooLarge) {
			t.Fatalf("Send = %v, want ErrMessageTooLarge", err)
		}
	}
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "BDAT") {
			t.Errorf("transcript has %q; the size is checked before anything is sent", l)
		}
	}
}

// TestIssue17_CancelledAfterTheFlight: the context ends while the replies
// to a flight are awaited. With "BDAT n LAST" in the flight the message may
// have been accepted: ErrDeliveryUnknown (matching context.Canceled too);
// with DATA, whose message waits for the 354, it is the context's error.
func TestIssue17_CancelledAfterTheFlight(t *testing.T) {
	t.Parallel()
	for _, m := range modes[1:] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking,
				Faults: []smtptest.Fault{{At: "MAIL", Delay: time.Minute, Times: 1}}})
			s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3}})
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				<-srv.Fired(0, 1)
				cancel()
			}()
			_, err := s.Send(ctx, basicMessage())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Send = %v, want context.Canceled", err)
			}
			if unknown := errors.Is(err, emailconn.ErrDeliveryUnknown); unknown != (m.name == "pipelined-BDAT") {
				t.Errorf("Send = %v: ErrDeliveryUnknown %v", err, unknown)
			}
		})
	}
}

// TestIssue17_DataAfterRefusedMail: a server that refuses MAIL and still
// answers the flight's DATA with 354 gets a lone "." too, and the session
// stays in step.
func TestIssue17_DataAfterRefusedMail(t *testing.T) {
	t.Parallel()
	var refuse sync.Once
	srv := smtptest.NewServer(t, smtptest.Options{
		MailHook: func(string) *smtp.SMTPError {
			var e *smtp.SMTPError
			refuse.Do(func() { e = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"} })
			return e
		},
		Faults: []smtptest.Fault{{At: "DATA", Reply: "354 go ahead", Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrRefused) {
		t.Fatalf("Send = %v, want ErrRefused", err)
	}
	if tx := lastTransaction(srv); len(tx) != 4 || tx[3] != "." {
		t.Errorf("transaction = %q, want MAIL, RCPT, DATA and a lone dot", tx)
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("next Send = %v", err)
	}
	if srv.Sessions() != 1 || len(srv.Messages()) != 1 {
		t.Errorf("sessions %d, messages %d; want 1, 1", srv.Sessions(), len(srv.Messages()))
	}
}

// TestIssue17_LargeEnvelopeInGroups: an envelope of 700 recipients goes in
// groups of RCPT commands, each written once the replies have caught up
// with the one before, so that neither side blocks writing to the other;
// every reply is matched to its recipient. A refused MAIL stops the rest
// of the flight: only what was written is drained.
func TestIssue17_LargeEnvelopeInGroups(t *testing.T) {
	t.Parallel()
	to := make([]string, 700)
	for i := range to {
		to[i] = fmt.Sprintf("r%03d@example.com", i)
		if i%97 == 0 {
			to[i] = fmt.Sprintf("no%03d@example.com", i)
		}
	}
	for _, m := range modes[1:] {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			var refuseMail atomic.Bool
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking, RcptHook: refuseNo,
				MailHook: func(string) *smtp.SMTPError {
					if refuseMail.Load() {
						return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender not allowed"}
					}
					return nil
				}})
			s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			msg := basicMessage()
			msg.To = to
			rc, err := s.Send(context.Background(), msg)
			if !errors.Is(err, emailconn.ErrRecipientRejected) || rc == nil || len(rc.Accepted) != 692 || len(rc.Rejected) != 8 {
				t.Fatalf("Send = %v; want 692 accepted, 8 refused", err)
			}
			for _, r := range rc.Rejected {
				if !strings.HasPrefix(r.Address, "no") {
					t.Errorf("%s reported refused", r.Address)
				}
			}
			if msgs := srv.Messages(); len(msgs) != 1 || !slices.Equal(msgs[0].To, rc.Accepted) {
				t.Fatalf("messages = %d", len(msgs))
			}
			refuseMail.Store(true)
			if _, err := s.Send(context.Background(), msg); !errors.Is(err, emailconn.ErrRefused) {
				t.Fatalf("Send = %v, want ErrRefused", err)
			}
			tx := lastTransaction(srv)
			if n := len(tx); n != 1+256 {
				t.Errorf("after the refused MAIL the client sent %d commands, want MAIL and the first 256 RCPT", n)
			}
			refuseMail.Store(false)
			msg.To = to[1:3]
			if _, err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("next Send = %v", err)
			}
			if srv.Sessions() != 1 {
				t.Errorf("sessions = %d, want 1", srv.Sessions())
			}
		})
	}
}

// TestIssue17_ServerThatAdvertisesAndMisbehaves: a server that offers
// CHUNKING and answers BDAT with 502 (it reads the chunk as commands). The
// send fails at data with the server's reply, the session, out of step, is
// closed rather than reused, and with DisableChunking the same server
// takes the message.
func TestIssue17_ServerThatAdvertisesAndMisbehaves(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{BrokenCHUNKING: true})
	c := connFor(t, srv, "none")
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := s.Send(context.Background(), basicMessage())
	var se *emailconn.SMTPError
	if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &se) || se.Code != 502 {
		t.Fatalf("Send = %v, want the 502 refusal of BDAT", err)
	}
	select {
	case <-srv.SessionClosed(1):
	case <-time.After(10 * time.Second):
		t.Fatal("the session that went out of step was kept")
	}
	c.DisableChunking = true
	s2 := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	if _, err := s2.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("Send with DisableChunking = %v", err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].Chunks != 0 {
		t.Errorf("messages = %+v, want one sent with DATA", msgs)
	}
}
