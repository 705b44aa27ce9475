package emailconn

// Regression tests for the sending-core items of issues 10 and 11, named
// TestIssueNN_MM_… after the issue and item.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestIssue10_03_RcptReplyKeptAsSent(t *testing.T) {
	tests := []struct {
		name string
		ec   smtp.EnhancedCode
		temp bool
	}{
		{"552 5.5.3 too many recipients", smtp.EnhancedCode{5, 5, 3}, true},
		{"552 without enhanced code", smtp.NoEnhancedCode, true},
		{"552 5.2.2 mailbox full", smtp.EnhancedCode{5, 2, 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{RcptHook: func(to string) *smtp.SMTPError {
				if to == "b@example.com" {
					return &smtp.SMTPError{Code: 552, EnhancedCode: tt.ec, Message: "no"}
				}
				return nil
			}})
			s := mustSender(t, connFor(t, srv, TLSNone), nil)
			rc, err := s.Send(context.Background(), &Message{To: []string{"a@example.com", "b@example.com"}, Subject: "s", Text: "t"})
			var re *RecipientsError
			if rc == nil || !errors.As(err, &re) || len(re.Rejected) != 1 {
				t.Fatalf("Send = %v, %v; want a receipt and one refused recipient", rc, err)
			}
			got := re.Rejected[0].Err
			wantEC := [3]int{}
			if tt.ec != smtp.NoEnhancedCode {
				wantEC = [3]int(tt.ec)
			}
			if got.Code != 552 || got.EnhancedCode != wantEC {
				t.Errorf("refusal = %d %v, want the server's 552 %v", got.Code, got.EnhancedCode, wantEC)
			}
			if re.Temporary() != tt.temp {
				t.Errorf("Temporary() = %v, want %v", re.Temporary(), tt.temp)
			}
		})
	}
}

// TestIssue10_05_RecipientRule checks every combination of message To,
// node recipients, the connection's (or grid's) To, Cc and Bcc: To comes
// from the first layer that names any, and Cc and Bcc always add to it.
func TestIssue10_05_RecipientRule(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	some := func(on bool, a string) []string {
		if on {
			return []string{a}
		}
		return nil
	}
	for mask := 0; mask < 64; mask++ {
		msgTo, node, connTo, cc, bcc, grid := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0, mask&16 != 0, mask&32 != 0
		c := Connection{Name: "c", MailServer: srv.Addr(), From: "engine@example.com", To: some(connTo, "conn@example.com")}
		cfg := Config{Connections: []Connection{c}, Processes: map[string]string{"P": "c"}}
		process := "P"
		if grid {
			cfg = Config{Grid: &Connection{MailServer: srv.Addr(), From: "engine@example.com", To: some(connTo, "conn@example.com")}}
			process = "Unassigned"
		}
		r, err := NewRegistry(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := r.Resolve(process, some(node, "node@example.com")...)
		if err != nil {
			t.Fatal(err)
		}
		msg := &Message{To: some(msgTo, "msg@example.com"), Cc: some(cc, "cc@example.com"), Bcc: some(bcc, "bcc@example.com"), Subject: "s", Text: "t"}
		var wantTo []string
		switch {
		case msgTo:
			wantTo = msg.To
		case node:
			wantTo = []string{"node@example.com"}
		case connTo:
			wantTo = []string{"conn@example.com"}
		}
		want := append(append(append([]string(nil), wantTo...), msg.Cc...), msg.Bcc...)
		name := fmt.Sprintf("msgTo=%v node=%v connTo=%v cc=%v bcc=%v grid=%v", msgTo, node, connTo, cc, bcc, grid)
		srv.Reset()
		_, err = rt.Send(context.Background(), msg)
		r.Close()
		if len(want) == 0 {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no recipient") {
				t.Errorf("%s: Send = %v, want ErrInvalid naming the missing recipients", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Send: %v", name, err)
			continue
		}
		got := srv.Messages()
		if len(got) != 1 || !slices.Equal(got[0].To, want) {
			t.Errorf("%s: envelope recipients = %v, want %v", name, got, want)
			continue
		}
		m, err := mail.ReadMessage(bytes.NewReader(got[0].Data))
		if err != nil {
			t.Fatal(err)
		}
		var hdrTo []string
		if list, err := m.Header.AddressList("To"); err == nil {
			for _, a := range list {
				hdrTo = append(hdrTo, a.Address)
			}
		}
		if !slices.Equal(hdrTo, wantTo) {
			t.Errorf("%s: To header = %q, want %v", name, m.Header.Get("To"), wantTo)
		}
		if strings.Contains(string(got[0].Data), "bcc@example.com") {
			t.Errorf("%s: the Bcc address appears in the message", name)
		}
	}
}

func TestIssue10_10_NoRecipientSentence(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, TLSNone), nil)
	_, err := s.Send(context.Background(), &Message{Subject: "s"})
	const want = "emailconn: To: no recipient: the message has no To, Cc or Bcc, and neither the route nor the connection has default recipients (To)"
	if err == nil || err.Error() != want {
		t.Errorf("Send error = %v, want %q", err, want)
	}
}

// TestIssue10_11_CloseStopsRetiredSenders: routes resolved before a
// Replace or Update keep their configuration, but after Registry.Close
// none of them sends or dials, whether its Sender existed before the
// replacement or not.
func TestIssue10_11_CloseStopsRetiredSenders(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	cfg := Config{
		Connections: []Connection{{Name: "used", MailServer: srv.Addr(), From: "a@example.com"}, {Name: "unused", MailServer: srv.Addr(), From: "b@example.com"}},
		Processes:   map[string]string{"U": "used", "N": "unused"},
	}
	r, err := NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	used, _ := r.Resolve("U")
	unused, _ := r.Resolve("N")
	if _, err := used.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	// Replace both connections: their entries are retired.
	if err := r.Update(func(c *Config) error {
		for i := range c.Connections {
			c.Connections[i].From = "new-" + c.Connections[i].From
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// A retired route still sends, and keeps no session afterwards.
	if _, err := unused.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("retired route before Close: %v", err)
	}
	r.Close()
	sessions := srv.Sessions()
	for name, rt := range map[string]Route{"used": used, "unused": unused} {
		if _, err := rt.Send(context.Background(), basicMessage()); !errors.Is(err, ErrClosed) {
			t.Errorf("%s: Send after Close = %v, want ErrClosed", name, err)
		}
	}
	if got := srv.Sessions(); got != sessions {
		t.Errorf("after Close the retired routes opened %d sessions, want 0", got-sessions)
	}
}

// scriptServer accepts connections on loopback and runs serve on each.
func scriptServer(t *testing.T, serve func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				go func() { <-done; c.Close() }()
				serve(c, bufio.NewReader(c))
			})
		}
	})
	return ln.Addr().String()
}

// acceptUntilDot plays a server that accepts everything up to the end of
// the message, then says last and stops talking (the client must give up).
func acceptUntilDot(last string) func(c net.Conn, r *bufio.Reader) {
	return scriptSession("250-script\r\n250 8BITMIME\r\n", last)
}

// scriptSession plays a server whose EHLO reply is ehlo, that accepts
// every command (AUTH included) and says last after the final dot.
func scriptSession(ehlo, last string) func(c net.Conn, r *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 script ESMTP\r\n")
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
			case "EHLO":
				io.WriteString(c, ehlo)
			case "AUTH":
				io.WriteString(c, "235 2.7.0 ok\r\n")
			case "DATA":
				io.WriteString(c, "354 go ahead\r\n")
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				io.WriteString(c, last)
				if !strings.HasSuffix(last, "\n") {
					io.Copy(io.Discard, r) // a partial reply, then silence
					return
				}
			case "QUIT":
				io.WriteString(c, "221 bye\r\n")
				return
			default:
				io.WriteString(c, "250 ok\r\n")
			}
		}
	}
}

func TestIssue10_16_NonSMTPServiceEndsAtOnce(t *testing.T) {
	addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1\r\n")
		io.Copy(io.Discard, r)
	})
	for _, mode := range []TLSMode{TLSNone, TLSStartTLS, TLSOpportunistic} {
		c := Connection{Name: "x", MailServer: addr, TLSMode: mode, From: "a@example.com", ConnectTimeout: time.Minute}
		s := mustSender(t, c, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := s.Send(ctx, basicMessage())
		cancel()
		var e *Error
		if !errors.Is(err, ErrConnect) || !errors.As(err, &e) || e.Stage != StageGreeting || e.Temporary() || !strings.Contains(err.Error(), "does not speak SMTP") {
			t.Errorf("%s: Send = %v, want a permanent ErrConnect at the greeting saying the service does not speak SMTP", mode, err)
		}
		rep := TestConnection(context.Background(), c, nil)
		if rep.OK || !strings.Contains(rep.Sentence, "does not speak SMTP") || strings.Contains(rep.Sentence, "no greeting") {
			t.Errorf("%s: Test Connection sentence %q, want one saying the service does not speak SMTP", mode, rep.Sentence)
		}
	}
}

// TestIssue11_09_PartialLineIsNoReply: a reply is a reply only once its
// line has ended.
func TestIssue11_09_PartialLineIsNoReply(t *testing.T) {
	t.Run("dripped greeting", func(t *testing.T) {
		addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) {
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 100; i++ {
				if _, err := c.Write([]byte{"220 xxxx"[min(i, 7)]}); err != nil {
					return
				}
				<-tick.C
			}
		})
		c := Connection{Name: "x", MailServer: addr, From: "a@example.com", SendTimeout: time.Second}
		s := mustSender(t, c, &Options{Retry: RetryPolicy{MaxAttempts: 1}})
		_, err := s.Send(context.Background(), basicMessage())
		var e *Error
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &e) || e.Stage != StageGreeting {
			t.Errorf("Send = %v, want ErrTimeout at the greeting", err)
		}
	})
	for _, last := range []string{"250 ", "451 4.3.0 temporarily"} {
		t.Run(fmt.Sprintf("final reply %q then a stall", last), func(t *testing.T) {
			var datas atomic.Int32
			script := acceptUntilDot(last)
			addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) { datas.Add(1); script(c, r) })
			c := Connection{Name: "x", MailServer: addr, From: "a@example.com", SendTimeout: 500 * time.Millisecond}
			s := mustSender(t, c, nil)
			rc, err := s.Send(context.Background(), basicMessage())
			if rc != nil || !errors.Is(err, ErrDeliveryUnknown) {
				t.Errorf("Send = %v, %v; want ErrDeliveryUnknown", rc, err)
			}
			if n := datas.Load(); n != 1 {
				t.Errorf("%d sessions, want 1: a message of unknown state must not be retried", n)
			}
		})
	}
}

func TestIssue11_10_LongEHLOKeepsExtensions(t *testing.T) {
	var ehlo strings.Builder
	ehlo.WriteString("250-script\r\n")
	for i := range 300 {
		fmt.Fprintf(&ehlo, "250-X-FILLER-%d\r\n", i)
	}
	ehlo.WriteString("250 AUTH PLAIN\r\n")
	addr := scriptServer(t, scriptSession(ehlo.String(), "250 2.0.0 queued\r\n"))
	c := Connection{Name: "x", MailServer: addr, From: "a@example.com", Username: "u", Password: "p", SendTimeout: 5 * time.Second}
	s := mustSender(t, c, nil)
	rc, err := s.Send(context.Background(), basicMessage())
	if err != nil || rc.Mechanism != "PLAIN" {
		t.Fatalf("Send = %+v, %v; want delivery after AUTH PLAIN", rc, err)
	}
	rep := TestConnection(context.Background(), c, nil)
	if !rep.OK || len(rep.Server.Extensions) != 301 {
		t.Errorf("Test Connection: ok=%v, %d extensions, want a pass with 301: %s", rep.OK, len(rep.Server.Extensions), rep.Sentence)
	}
}

func TestIssue10_23_OpportunisticWithoutSTARTTLSSaysEHLOOnce(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, TLSOpportunistic)
	c.EnableTLS = false
	s := mustSender(t, c, nil)
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(strings.ToUpper(l), "EHLO") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("EHLO sent %d times on one plaintext session, want 1: %q", n, srv.Transcript())
	}
}

// TestIssue10_24_QuitAfterFailure: a session that failed at a reply the
// server sent, or that the client refused to go on with, ends with QUIT.
func TestIssue10_24_QuitAfterFailure(t *testing.T) {
	lastIsQuit := func(t *testing.T, srv *smtptest.Server, after string) {
		t.Helper()
		srv.Close() // every line the client sent is recorded
		tr := srv.Transcript()
		i := slices.IndexFunc(tr, func(l string) bool { return strings.HasPrefix(l, after) })
		if i < 0 || !slices.Contains(tr[i:], "QUIT") {
			var verbs []string // no AUTH arguments in test output
			for _, l := range tr {
				verbs = append(verbs, strings.Fields(l + " ")[0])
			}
			t.Errorf("no QUIT after %s: %q", after, verbs)
		}
	}
	t.Run("failed AUTH", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "right"}})
		c := connFor(t, srv, TLSStartTLS)
		c.Username, c.Password = "alice", "wrong"
		s := mustSender(t, c, nil)
		if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("Send = %v, want ErrAuthFailed", err)
		}
		lastIsQuit(t, srv, "AUTH")
	})
	t.Run("mechanism not offered", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		c := connFor(t, srv, TLSNone)
		c.Username, c.Password = "alice", "pw"
		s := mustSender(t, c, nil)
		if _, err := s.Send(context.Background(), basicMessage()); err == nil {
			t.Fatal("Send succeeded without AUTH offered")
		}
		lastIsQuit(t, srv, "EHLO")
	})
	t.Run("refused probe recipient", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{RcptHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}})
		rep := TestConnection(context.Background(), connFor(t, srv, TLSNone), &TestOptions{ProbeRecipient: "nobody@example.com"})
		if rep.OK {
			t.Fatal("Test Connection passed with a refused probe recipient")
		}
		lastIsQuit(t, srv, "RCPT")
	})
}
