package emailconn_test

// Regression tests for the sending-core items of issues 10 and 11, named
// TestIssueNN_MM_… after the issue and item.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"os"
	"path/filepath"
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

func TestIssue10_03_RcptReplyKeptAsSent(t *testing.T) {
	t.Parallel()
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
			s := mustSender(t, connFor(t, srv, "none"), nil)
			rc, err := s.Send(context.Background(), &emailconn.Message{To: []string{"a@example.com", "b@example.com"}, Subject: "s", Text: "t"})
			var re *emailconn.RecipientsError
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
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	some := func(on bool, a string) []string {
		if on {
			return []string{a}
		}
		return nil
	}
	for mask := 0; mask < 64; mask++ {
		msgTo, node, connTo, cc, bcc, grid := mask&1 != 0, mask&2 != 0, mask&4 != 0, mask&8 != 0, mask&16 != 0, mask&32 != 0
		c := emailconn.Connection{Name: "c", MailServer: srv.Addr(), From: "engine@example.com", To: some(connTo, "conn@example.com")}
		cfg := emailconn.Config{Connections: []emailconn.Connection{c}, Processes: map[string]string{"P": "c"}}
		process := "P"
		if grid {
			cfg = emailconn.Config{Grid: &emailconn.Connection{MailServer: srv.Addr(), From: "engine@example.com", To: some(connTo, "conn@example.com")}}
			process = "Unassigned"
		}
		r, err := emailconn.NewRegistry(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		rt, err := r.Resolve(process, some(node, "node@example.com")...)
		if err != nil {
			t.Fatal(err)
		}
		msg := &emailconn.Message{To: some(msgTo, "msg@example.com"), Cc: some(cc, "cc@example.com"), Bcc: some(bcc, "hidden.bcc@example.com"), Subject: "s", Text: "t"}
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
			if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "no recipient") {
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
		if strings.Contains(string(got[0].Data), "hidden.bcc@example.com") {
			t.Errorf("%s: the Bcc address appears in the message", name)
		}
	}
}

func TestIssue10_10_NoRecipientSentence(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	_, err := s.Send(context.Background(), &emailconn.Message{Subject: "s"})
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
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	cfg := emailconn.Config{
		Connections: []emailconn.Connection{{Name: "used", MailServer: srv.Addr(), From: "a@example.com"}, {Name: "unused", MailServer: srv.Addr(), From: "b@example.com"}},
		Processes:   map[string]string{"U": "used", "N": "unused"},
	}
	r, err := emailconn.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	used, _ := r.Resolve("U")
	unused, _ := r.Resolve("N")
	if _, err := used.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	// Replace both connections: their entries are retired.
	if err := r.Update(func(c *emailconn.Config) error {
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
	for name, rt := range map[string]emailconn.Route{"used": used, "unused": unused} {
		if _, err := rt.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrClosed) {
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
	t.Parallel()
	addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1\r\n")
		io.Copy(io.Discard, r)
	})
	for _, mode := range []string{"none", "starttls", "opportunistic"} {
		c := emailconn.Connection{Name: "x", MailServer: addr, TLSMode: mode, From: "a@example.com", ConnectTimeout: time.Minute}
		s := mustSender(t, c, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := s.Send(ctx, basicMessage())
		cancel()
		var e *emailconn.Error
		if !errors.Is(err, emailconn.ErrConnect) || !errors.As(err, &e) || e.Stage != emailconn.StageGreeting || e.Temporary() || !strings.Contains(err.Error(), "does not speak SMTP") {
			t.Errorf("%s: Send = %v, want a permanent ErrConnect at the greeting saying the service does not speak SMTP", mode, err)
		}
		rep := runTest(c, nil)
		if rep.OK || !strings.Contains(rep.Sentence, "does not speak SMTP") || strings.Contains(rep.Sentence, "no greeting") {
			t.Errorf("%s: Test Connection sentence %q, want one saying the service does not speak SMTP", mode, rep.Sentence)
		}
	}
}

// TestIssue11_09_PartialLineIsNoReply: a reply is a reply only once its
// line has ended.
func TestIssue11_09_PartialLineIsNoReply(t *testing.T) {
	t.Parallel()
	t.Run("dripped greeting", func(t *testing.T) {
		t.Parallel()
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
		c := emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com", SendTimeout: time.Second}
		s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		_, err := s.Send(context.Background(), basicMessage())
		var e *emailconn.Error
		if !errors.Is(err, emailconn.ErrTimeout) || !errors.As(err, &e) || e.Stage != emailconn.StageGreeting {
			t.Errorf("Send = %v, want ErrTimeout at the greeting", err)
		}
	})
	for _, last := range []string{"250 ", "451 4.3.0 temporarily"} {
		t.Run(fmt.Sprintf("final reply %q then a stall", last), func(t *testing.T) {
			t.Parallel()
			var datas atomic.Int32
			script := acceptUntilDot(last)
			addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) { datas.Add(1); script(c, r) })
			// Room for the exchanges before the dot on a loaded machine;
			// the stall after the partial reply is what runs into it.
			c := emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com", SendTimeout: 1500 * time.Millisecond}
			s := mustSender(t, c, nil)
			rc, err := s.Send(context.Background(), basicMessage())
			if rc != nil || !errors.Is(err, emailconn.ErrDeliveryUnknown) {
				t.Errorf("Send = %v, %v; want ErrDeliveryUnknown", rc, err)
			}
			if n := datas.Load(); n != 1 {
				t.Errorf("%d sessions, want 1: a message of unknown state must not be retried", n)
			}
		})
	}
}

func TestIssue11_10_LongEHLOKeepsExtensions(t *testing.T) {
	t.Parallel()
	var ehlo strings.Builder
	ehlo.WriteString("250-script\r\n")
	for i := range 300 {
		fmt.Fprintf(&ehlo, "250-X-FILLER-%d\r\n", i)
	}
	ehlo.WriteString("250 AUTH PLAIN\r\n")
	addr := scriptServer(t, scriptSession(ehlo.String(), "250 2.0.0 queued\r\n"))
	c := emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com", Username: "u", Password: "p", SendTimeout: 5 * time.Second}
	s := mustSender(t, c, nil)
	rc, err := s.Send(context.Background(), basicMessage())
	if err != nil || rc.Mechanism != "PLAIN" {
		t.Fatalf("Send = %+v, %v; want delivery after AUTH PLAIN", rc, err)
	}
	rep := runTest(c, nil)
	if !rep.OK || len(rep.Server.Extensions) != 301 {
		t.Errorf("Test Connection: ok=%v, %d extensions, want a pass with 301: %s", rep.OK, len(rep.Server.Extensions), rep.Sentence)
	}
}

func TestIssue10_23_OpportunisticWithoutSTARTTLSSaysEHLOOnce(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, "opportunistic")
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
	t.Parallel()
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
		c := connFor(t, srv, "starttls")
		c.Username, c.Password = "alice", "wrong"
		s := mustSender(t, c, nil)
		if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrAuthFailed) {
			t.Fatalf("Send = %v, want ErrAuthFailed", err)
		}
		lastIsQuit(t, srv, "AUTH")
	})
	t.Run("mechanism not offered", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		c := connFor(t, srv, "none")
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
		rep := runTest(connFor(t, srv, "none"), &emailconn.TestOptions{ProbeRecipient: "nobody@example.com"})
		if rep.OK {
			t.Fatal("Test Connection passed with a refused probe recipient")
		}
		lastIsQuit(t, srv, "RCPT")
	})
}

func TestIssue10_22_TimeoutSentences(t *testing.T) {
	t.Parallel()
	t.Run("upload stall", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Stall}}})
		c := connFor(t, srv, "none")
		// Long enough for the greeting and EHLO on a loaded machine under
		// the race detector; the stall itself is what runs into it.
		c.SendTimeout = 1500 * time.Millisecond
		s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		_, err := s.Send(context.Background(), bigMessage(16<<20)())
		if !errors.Is(err, emailconn.ErrTimeout) || !strings.Contains(err.Error(), "the upload made no progress within the send timeout (1.5s)") {
			t.Errorf("Send = %v, want ErrTimeout saying the upload made no progress", err)
		}
	})
	t.Run("connect timeout over retries", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}})
		c := connFor(t, srv, "none")
		c.ConnectTimeout = 200 * time.Millisecond
		s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
		_, err := s.Send(context.Background(), basicMessage())
		if !errors.Is(err, emailconn.ErrTimeout) || !strings.Contains(err.Error(), "connect timeout (200ms) expired (gave up after 3 attempts in ") {
			t.Errorf("Send = %v, want ErrTimeout naming the 3 attempts and their total time", err)
		}
	})
}

// TestIssue11_02_EveryTypePrintsRedacted prints every exported value that
// holds a secret, directly or through a pointer, with every verb and both
// slog handlers, and finds no canary.
func TestIssue11_02_EveryTypePrintsRedacted(t *testing.T) {
	t.Parallel()
	const pw, clientSecret, refresh = "canaryPW-5f3e9a1c", "canaryCS-0b1d2e3f", "canaryRT-9a8b7c6d"
	srv := smtptest.NewServer(t, smtptest.Options{})
	basic := emailconn.Connection{Name: "basic", MailServer: srv.Addr(), From: "a@example.com", Username: "alice", Password: pw}
	oauth := emailconn.Connection{Name: "oauth", MailServer: srv.Addr(), From: "a@example.com", Username: "alice", AuthType: "oauth2", OAuth2Config: "o"}
	oc := emailconn.OAuth2Config{Name: "o", GrantType: "refresh_token", TokenURL: "https://login.example.com/token", ClientID: "id", ClientSecret: clientSecret, RefreshToken: refresh, Scopes: []string{"s"}}
	grid := basic
	grid.Name = ""
	cfg := emailconn.Config{Connections: []emailconn.Connection{basic, oauth}, OAuth2Configs: []emailconn.OAuth2Config{oc}, Grid: &grid, Processes: map[string]string{"P": "oauth"}}
	r, err := emailconn.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sb, err := emailconn.NewSender(basic, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	so, err := r.Sender("oauth")
	if err != nil {
		t.Fatal(err)
	}
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	opts := &emailconn.Options{}
	values := []any{sb, so, r, rt, &rt, cfg, &cfg, basic, &basic, oc, &oc, basic.Password, oc.ClientSecret, opts}
	var out bytes.Buffer
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %p"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		slog.New(slog.NewTextHandler(&out, nil)).Info("v", "value", v)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("v", "value", v)
	}
	for _, f := range (canaries{pw, clientSecret, refresh}).forms("alice") {
		if strings.Contains(out.String(), f) {
			t.Errorf("printed output contains a secret (or its encoding %q)", f)
		}
	}
}

// The fault matrix rows the security review found uncovered (issue 11,
// "Coverage to add").

func TestIssue11_F01_DNSFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		block   bool // the lookup hangs until the connect timeout
		want    error
		temp    bool
		lookups int32
	}{
		{"NXDOMAIN", &net.DNSError{Err: "no such host", Name: "mx.example.com", IsNotFound: true}, false, emailconn.ErrConnect, false, 1},
		{"SERVFAIL", &net.DNSError{Err: "server misbehaving", Name: "mx.example.com", IsTemporary: true}, false, emailconn.ErrConnect, true, 3},
		{"timeout", nil, true, emailconn.ErrTimeout, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lookups atomic.Int32
			opts := &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}}
			emailconn.WithLookup(opts, func(ctx context.Context, host string) ([]netip.Addr, error) {
				lookups.Add(1)
				if tt.block {
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return nil, tt.err
			})
			emailconn.WithDial(opts, func(context.Context, string, string) (net.Conn, error) {
				t.Error("dialled after a failed lookup")
				return nil, errors.New("no dial")
			})
			c := emailconn.Connection{Name: "dns", MailServer: "mx.example.com", From: "a@example.com", ConnectTimeout: 100 * time.Millisecond}
			s := mustSender(t, c, opts)
			start := time.Now()
			_, err := s.Send(context.Background(), basicMessage())
			var e *emailconn.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &e) || e.Stage != emailconn.StageResolve || e.Temporary() != tt.temp {
				t.Errorf("Send = %v, want %v at the resolve stage with Temporary() = %v", err, tt.want, tt.temp)
			}
			if n := lookups.Load(); n != tt.lookups {
				t.Errorf("%d lookups, want %d", n, tt.lookups)
			}
			if d := time.Since(start); d > 3*(100*time.Millisecond)+ftSlack {
				t.Errorf("Send took %v: each attempt must be bounded by the connect timeout", d)
			}
		})
	}
}

func TestIssue11_F02_RefusedQuickly(t *testing.T) {
	// Not parallel: the test bounds the wall time of a send tightly.
	addr := smtptest.RefusedAddr(t) // nothing listens there: connections are refused
	s := mustSender(t, emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com"}, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	start := time.Now()
	_, err := s.Send(context.Background(), basicMessage())
	var e *emailconn.Error
	if !errors.Is(err, emailconn.ErrConnect) || !errors.As(err, &e) || !e.Temporary() || e.Stage != emailconn.StageConnect {
		t.Errorf("Send = %v, want a temporary ErrConnect at the connect stage", err)
	}
	if d := time.Since(start); d > slowdown*100*time.Millisecond {
		t.Errorf("a refused connection took %v, want < %v", d, slowdown*100*time.Millisecond)
	}
}

func TestIssue11_F18_CloseInTheHandshakeIsTemporary(t *testing.T) {
	t.Parallel()
	closeAfterHello := func(c net.Conn, r *bufio.Reader) {
		buf := make([]byte, 5) // a TLS record header: the ClientHello has begun
		io.ReadFull(r, buf)
	}
	implicit := scriptServer(t, closeAfterHello)
	starttls := scriptServer(t, func(c net.Conn, r *bufio.Reader) {
		io.WriteString(c, "220 script ESMTP\r\n")
		r.ReadString('\n')
		io.WriteString(c, "250-script\r\n250 STARTTLS\r\n")
		r.ReadString('\n')
		io.WriteString(c, "220 go ahead\r\n")
		closeAfterHello(c, r)
	})
	for mode, addr := range map[string]string{"implicit": implicit, "starttls": starttls} {
		var sessions atomic.Int32
		opts := emailconn.WithDial(&emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}},
			func(ctx context.Context, network, a string) (net.Conn, error) {
				sessions.Add(1)
				return (&net.Dialer{}).DialContext(ctx, network, a)
			})
		s := mustSender(t, emailconn.Connection{Name: "x", MailServer: addr, TLSMode: mode, EnableTLS: true, From: "a@example.com", SendTimeout: 5 * time.Second}, opts)
		_, err := s.Send(context.Background(), basicMessage())
		var e *emailconn.Error
		if !errors.Is(err, emailconn.ErrTLSUnavailable) || !errors.As(err, &e) || !e.Temporary() {
			t.Errorf("%s: Send = %v, want a temporary ErrTLSUnavailable", mode, err)
		}
		if n := sessions.Load(); n != 2 {
			t.Errorf("%s: %d sessions, want 2 (a temporary failure is retried)", mode, n)
		}
	}
}

func TestIssue11_F20_ImplicitTLSToPlaintextQuickly(t *testing.T) {
	// Not parallel: the test bounds the wall time of a send tightly.
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, "implicit")
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	start := time.Now()
	_, err := s.Send(context.Background(), basicMessage())
	var e *emailconn.Error
	if !errors.Is(err, emailconn.ErrTLSUnavailable) || !errors.As(err, &e) || e.Stage != emailconn.StageTLS || e.Temporary() {
		t.Errorf("Send = %v, want a permanent ErrTLSUnavailable at the tls stage", err)
	}
	if d := time.Since(start); d > slowdown*100*time.Millisecond {
		t.Errorf("took %v, want < %v", d, slowdown*100*time.Millisecond)
	}
}

func TestIssue11_04_ImplicitHandshakeBoundedBySendTimeout(t *testing.T) {
	t.Parallel()
	addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) { io.Copy(io.Discard, r) }) // accepts, never answers
	s := mustSender(t, emailconn.Connection{Name: "x", MailServer: addr, TLSMode: "implicit", EnableTLS: true, From: "a@example.com", SendTimeout: 300 * time.Millisecond},
		&emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	start := time.Now()
	_, err := s.Send(context.Background(), basicMessage())
	if !errors.Is(err, emailconn.ErrTimeout) {
		t.Errorf("Send = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 300*time.Millisecond+ftSlack {
		t.Errorf("took %v, want about the send timeout", d)
	}
}

// TestIssue11_T7_CertificateFailuresStage: every certificate failure is
// reported at the stage where TLS started, before any AUTH or MAIL.
func TestIssue11_T7_CertificateFailuresStage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		srv  smtptest.Options
		mode string
		ca   bool
	}{
		{"self-signed implicit", smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertSelfSigned}, "implicit", true},
		{"wrong name starttls", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertWrongName}, "starttls", true},
		{"expired starttls", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertExpired}, "starttls", true},
		{"unknown authority implicit", smtptest.Options{TLS: smtptest.Implicit}, "implicit", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.srv.Users = map[string]string{"alice": "pw"}
			srv := smtptest.NewServer(t, tc.srv)
			c := connFor(t, srv, tc.mode)
			c.Username, c.Password = "alice", "pw"
			if !tc.ca {
				c.CAFile = ""
			}
			s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			_, err := s.Send(context.Background(), basicMessage())
			want := map[string]emailconn.Stage{"implicit": emailconn.StageTLS, "starttls": emailconn.StageSTARTTLS}[tc.mode]
			var e *emailconn.Error
			var cv *tls.CertificateVerificationError
			if !errors.Is(err, emailconn.ErrTLSUnavailable) || !errors.As(err, &e) || e.Stage != want || !errors.As(err, &cv) {
				t.Errorf("Send = %v, want a certificate verification error at the %s stage", err, want)
			}
			srv.Close()
			for _, l := range srv.Transcript() {
				if strings.HasPrefix(l, "AUTH") || strings.HasPrefix(l, "MAIL") {
					t.Errorf("transcript has %s after a failed verification", strings.Fields(l)[0])
				}
			}
		})
	}
}

// TestIssue11_T15_SlowDripEHLO: the slow-drip half of
// TestIssue11_T15_SlowDripAndEndlessEHLO, apart so that it runs in
// parallel (the memory half measures the heap, so it runs alone).
func TestIssue11_T15_SlowDripEHLO(t *testing.T) {
	t.Parallel()
	t.Run("slow-drip EHLO reply", func(t *testing.T) {
		addr := scriptServer(t, func(c net.Conn, r *bufio.Reader) {
			io.WriteString(c, "220 script ESMTP\r\n")
			r.ReadString('\n')
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 1000; i++ {
				if _, err := io.WriteString(c, "250-x\r\n"[i%7:i%7+1]); err != nil {
					return
				}
				<-tick.C
			}
		})
		s := mustSender(t, emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com", SendTimeout: 500 * time.Millisecond}, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		start := time.Now()
		_, err := s.Send(context.Background(), basicMessage())
		if !errors.Is(err, emailconn.ErrTimeout) {
			t.Errorf("Send = %v, want ErrTimeout", err)
		}
		// Without the bound the drip holds the send for its whole
		// 1,000 × 50 ms = 50 s; with it, about the 500 ms send timeout.
		// The allowance is the machine's: under the race detector at a
		// load of 10 on 2 cores the timeout was seen to end at 1.5 s.
		if d := time.Since(start); d > 500*time.Millisecond+3*ftSlack {
			t.Errorf("a dripped reply held the send for %v, want about the send timeout (the drip lasts 50 s)", d)
		}
	})
}

// The endless EHLO reply of T15 is a case of TestEndlessReplyMemory.

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("attachment reader failed") }

// TestIssue11_08_PanickingReaderKeepsThePool: a panic in the caller's
// attachment reader goes up to the caller, and the session it held is
// closed and its slot freed.
func TestIssue11_08_PanickingReaderKeepsThePool(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{MaxSessions: 2})
	for range 3 {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("the reader's panic did not reach the caller")
				}
			}()
			m := basicMessage()
			m.Attachments = []emailconn.Attachment{{Filename: "a.bin", Content: panicReader{}}}
			s.Send(context.Background(), m)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Send(ctx, basicMessage()); err != nil {
		t.Fatalf("Send after recovered panics = %v, want a delivery (no session slot may be lost)", err)
	}
}

// TestIssue11_07_EchoedCredentialsRedacted: a server that quotes the AUTH
// line, or the password, back in its reply reveals neither through the
// error, the Test Connection report or the debug log.
func TestIssue11_07_EchoedCredentialsRedacted(t *testing.T) {
	t.Parallel()
	const user, pw = "alice", "canaryEcho-3c4d5e6f"
	blob := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
	reply := "535 5.7.8 rejected: AUTH PLAIN " + blob + " (password " + pw + ")"
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{user: pw}, Mechanisms: []string{"PLAIN"},
		Faults: []smtptest.Fault{{At: smtptest.AuthResult, Reply: reply}}})
	c := connFor(t, srv, "starttls")
	c.Username, c.Password = user, pw
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := mustSender(t, c, &emailconn.Options{Logger: logger})
	_, err := s.Send(context.Background(), basicMessage())
	if !errors.Is(err, emailconn.ErrAuthFailed) {
		t.Fatalf("Send = %v, want ErrAuthFailed", err)
	}
	var se *smtp.SMTPError
	errors.As(err, &se)
	rep := runTest(c, &emailconn.TestOptions{})
	out := fmt.Sprintf("%v\n%+v\n%v\n%s\n%s\n%s", err, err, se, rep.Sentence, reportJSON(rep), logs.String())
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("the echoed credentials were not replaced by [redacted]:\n%s", err)
	}
	for _, f := range (canaries{pw}).forms(user) {
		if strings.Contains(out, f) {
			t.Errorf("output contains the password (or its encoding %q)", f)
		}
	}
}

// TestIssue10_02_HungTokenEndpointNotRetried: a token request that timed
// out is not repeated by the send's retries: one timeout, not three.
func TestIssue10_02_HungTokenEndpointNotRetried(t *testing.T) {
	shortTokenTimeout(t, 300*time.Millisecond)
	hung, requests := hungEndpoint(t)
	r := oauthRegistryAt(t, xoauth2Server(t), hung.URL+"/token", &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrTimeout) {
		t.Fatalf("Send = %v, want ErrTimeout", err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
}

// TestIssue12_CAFileReadOnce: a CAFile is read once, when the configuration
// is checked; the Sender trusts what was read then.
func TestIssue12_CAFileReadOnce(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS})
	c := connFor(t, srv, "starttls")
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, smtptest.SharedCA().PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	c.CAFile = ca
	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}, Processes: map[string]string{"P": c.Name}}, allowCA(c, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Send(context.Background(), basicMessage()); err != nil {
		t.Errorf("Send after the CA file changed = %v, want the certificates read at registration", err)
	}
}
