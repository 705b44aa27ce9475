package emailconn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

type faultCase struct {
	name     string
	srv      smtptest.Options
	mode     string
	conn     func(*emailconn.Connection)
	opts     *emailconn.Options
	msg      func() *emailconn.Message
	wantErr  error         // sentinel the error must match; nil = success
	wantCode int           // SMTP code in the chain, 0 = not checked
	temp     *bool         // Temporary() of the *Error, nil = not checked
	within   time.Duration // the call must return within this; 0 = not checked
	absent   []string      // transcript must have no line starting with these
	check    func(t *testing.T, rc *emailconn.Receipt, err error, srv *smtptest.Server)
}

// lockstep switches PIPELINING off: the case is about which commands a
// lockstep client never sends (issue17_pipeline_test.go has the pipelined
// ones).
func lockstep(c *emailconn.Connection) { c.DisablePipelining = true }

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

func runFaultCase(t *testing.T, tc faultCase) {
	t.Helper()
	srv := smtptest.NewServer(t, tc.srv)
	mode := tc.mode
	if mode == "" {
		mode = map[smtptest.Mode]string{smtptest.Plain: "none", smtptest.StartTLS: "starttls", smtptest.Implicit: "implicit"}[tc.srv.TLS]
	}
	c := connFor(t, srv, mode)
	if tc.within != 0 || tc.wantErr == emailconn.ErrTimeout {
		c.ConnectTimeout, c.SendTimeout = ftC, ftS // the case is about them
	} else {
		// Room for a loaded machine: nothing in the case should wait on them.
		c.ConnectTimeout, c.SendTimeout = 10*time.Second, 10*time.Second
	}
	if tc.srv.Users != nil {
		c.Username, c.Password = "alice", "s3cret"
	}
	if tc.conn != nil {
		tc.conn(&c)
	}
	opts := tc.opts
	if opts == nil {
		opts = &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}
	}
	s := mustSender(t, c, opts)
	msg := basicMessage()
	if tc.msg != nil {
		msg = tc.msg()
	}
	start := time.Now()
	rc, err := s.Send(context.Background(), msg)
	elapsed := time.Since(start)
	t.Logf("Send = %v (after %v)", err, elapsed.Round(time.Millisecond))
	if tc.wantErr == nil && err != nil {
		t.Fatalf("Send = %v, want success", err)
	}
	if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
		t.Fatalf("Send = %v, want %v", err, tc.wantErr)
	}
	if tc.wantCode != 0 {
		var se *emailconn.SMTPError
		if !errors.As(err, &se) || se.Code != tc.wantCode {
			t.Errorf("Send error %v: SMTP code %v, want %d", err, se, tc.wantCode)
		}
	}
	if tc.temp != nil {
		var e *emailconn.Error
		if !errors.As(err, &e) || e.Temporary() != *tc.temp {
			t.Errorf("Send error %v: Temporary() = %v, want %v", err, e != nil && e.Temporary(), *tc.temp)
		}
	}
	if tc.within != 0 && elapsed > tc.within {
		t.Errorf("Send took %v, want at most %v", elapsed, tc.within)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "emailconn: ") {
		t.Errorf("error %q lacks the emailconn: prefix", err)
	}
	s.Close()
	srv.Close()
	for _, l := range srv.Transcript() {
		for _, a := range tc.absent {
			if strings.HasPrefix(strings.ToUpper(l), a) {
				t.Errorf("transcript has %q; want no %s line", l, a)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, rc, err, srv)
	}
}

func TestSendFaults(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "s3cret"}
	tests := []faultCase{
		// Greeting (F05–F10).
		{name: "F05 silent greeting", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}},
			wantErr: emailconn.ErrTimeout, temp: yes, within: ftC + ftSlack, absent: []string{"MAIL"}},
		{name: "F05 silent greeting, only SendTimeout", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}},
			conn: func(c *emailconn.Connection) { c.ConnectTimeout = 0 }, wantErr: emailconn.ErrTimeout, within: ftS + ftSlack},
		{name: "F06 421 greeting", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "421 4.3.2 Service not available", Close: true}}},
			wantErr: emailconn.ErrConnect, wantCode: 421, temp: yes},
		{name: "F07 554 greeting", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "554 5.3.2 No SMTP service here"}}},
			wantErr: emailconn.ErrConnect, wantCode: 554, temp: no},
		{name: "F08 not SMTP", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n", Close: true}}},
			wantErr: emailconn.ErrConnect, temp: no},
		{name: "F09 5000-byte greeting", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.LongLine}}},
			wantErr: emailconn.ErrConnect, temp: no},
		{name: "F10 endless greeting", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Endless}}},
			conn: func(c *emailconn.Connection) { c.ConnectTimeout, c.SendTimeout = 0, 0 }, wantErr: emailconn.ErrReplyTooLarge, within: 5 * time.Second},
		{name: "F10 endless EHLO reply", srv: smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "EHLO", Action: smtptest.Endless}}},
			conn: func(c *emailconn.Connection) { c.ConnectTimeout, c.SendTimeout = 0, 0 }, wantErr: emailconn.ErrReplyTooLarge, within: 5 * time.Second},

		// EHLO and STARTTLS (F11–F21).
		{name: "F11 EHLO 502, HELO fallback", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "EHLO", Reply: "502 5.5.1 Command not implemented"}}}},
		{name: "F11 EHLO 502 with TLS required", srv: smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "EHLO", Reply: "502 5.5.1 Command not implemented"}}},
			wantErr: emailconn.ErrTLSUnavailable, absent: []string{"MAIL", "AUTH"}},
		{name: "F12 EHLO 421", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "EHLO", Reply: "421 4.3.2 Shutting down", Close: true}}},
			wantErr: emailconn.ErrConnect, wantCode: 421, temp: yes, absent: []string{"HELO"}},
		{name: "F13 STARTTLS stripped", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "EHLO", Action: smtptest.StripStartTLS}}},
			wantErr: emailconn.ErrTLSUnavailable, temp: no, absent: []string{"AUTH", "MAIL", "STARTTLS"}},
		{name: "F14 STARTTLS 454", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "STARTTLS", Reply: "454 4.7.0 TLS not available due to temporary reason"}}},
			wantErr: emailconn.ErrTLSUnavailable, wantCode: 454, temp: yes, absent: []string{"AUTH", "MAIL"}},
		{name: "F14 STARTTLS 502", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "STARTTLS", Reply: "502 5.5.1 Not implemented"}}},
			wantErr: emailconn.ErrTLSUnavailable, wantCode: 502, temp: no, absent: []string{"AUTH", "MAIL"}},
		{name: "F14 opportunistic continues after 454", srv: smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "STARTTLS", Reply: "454 4.7.0 Try later"}}},
			mode: "opportunistic"},
		{name: "F15 injection after 220", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "STARTTLS", Action: smtptest.Inject, Reply: "250-INJECTED\r\n250 AUTH PLAIN"}}},
			wantErr: emailconn.ErrTLSUnavailable, absent: []string{"AUTH", "MAIL"}},
		{name: "F16 injection in a later segment", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "STARTTLS", Action: smtptest.Inject, Reply: "250 AUTH PLAIN", Delay: 50 * time.Millisecond}}},
			wantErr: emailconn.ErrTLSUnavailable, absent: []string{"AUTH", "MAIL"}},
		{name: "F17 wrong name", srv: smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertWrongName, Users: users},
			wantErr: emailconn.ErrTLSUnavailable, temp: no, absent: []string{"AUTH", "MAIL"}},
		{name: "F17 expired", srv: smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertExpired, Users: users},
			wantErr: emailconn.ErrTLSUnavailable, temp: no, absent: []string{"AUTH", "MAIL"}},
		{name: "F17 self-signed", srv: smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertSelfSigned, Users: users},
			wantErr: emailconn.ErrTLSUnavailable, temp: no, absent: []string{"AUTH", "MAIL", "EHLO"}},
		{name: "F17 unknown authority", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users},
			conn: func(c *emailconn.Connection) { c.CAFile = "" }, wantErr: emailconn.ErrTLSUnavailable, absent: []string{"AUTH", "MAIL"}},
		{name: "F19 TLS 1.1 only", srv: smtptest.Options{TLS: smtptest.Implicit, MaxTLSVersion: 0x0302},
			wantErr: emailconn.ErrTLSUnavailable, absent: []string{"MAIL"}},
		{name: "F20 implicit TLS to a plaintext port", srv: smtptest.Options{},
			mode: "implicit", wantErr: emailconn.ErrTLSUnavailable, within: ftSlack},
		{name: "F21 plaintext to an implicit-TLS port", srv: smtptest.Options{TLS: smtptest.Implicit},
			mode: "none", wantErr: emailconn.ErrTimeout, within: ftC + ftSlack},
		{name: "F21 STARTTLS to an implicit-TLS port", srv: smtptest.Options{TLS: smtptest.Implicit},
			mode: "starttls", wantErr: emailconn.ErrTimeout, within: ftC + ftSlack},

		// AUTH (F22–F27).
		{name: "F23 535", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "other"}},
			wantErr: emailconn.ErrAuthFailed, wantCode: 535, temp: no, absent: []string{"MAIL", "*"},
			check: func(t *testing.T, _ *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if n := srv.Sessions(); n != 1 {
					t.Errorf("sessions = %d, want 1 (no retry with the same password)", n)
				}
			}},
		{name: "F24 535 does not wait for a reply to an abort", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "other"}},
			conn: func(c *emailconn.Connection) { c.SendTimeout, c.ConnectTimeout = 0, 0 }, wantErr: emailconn.ErrAuthFailed, within: time.Second, absent: []string{"*"}},
		{name: "F25 454 in AUTH", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: smtptest.AuthResult, Reply: "454 4.7.0 Temporary authentication failure"}}},
			wantErr: emailconn.ErrAuthFailed, wantCode: 454, temp: yes},
		{name: "F26 AUTH not offered", srv: smtptest.Options{TLS: smtptest.StartTLS},
			conn: func(c *emailconn.Connection) { c.Username, c.Password = "alice", "s3cret" }, wantErr: emailconn.ErrAuthUnsupported, absent: []string{"AUTH", "MAIL"}},
		{name: "F26 mechanism not offered", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Mechanisms: []string{"CRAM-MD5"}},
			wantErr: emailconn.ErrAuthUnsupported, absent: []string{"AUTH", "MAIL"}},
		{name: "F27 LOGIN lower-case prompts", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Mechanisms: []string{"LOGIN"}, LoginPrompts: [2]string{"username:", "password:"}}},
		{name: "F27 LOGIN other prompts", srv: smtptest.Options{TLS: smtptest.StartTLS, Users: users, Mechanisms: []string{"LOGIN"}, LoginPrompts: [2]string{"User Name", "Passwort"}}},

		// MAIL and RCPT (F34–F39).
		{name: "F34 421 to MAIL", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "MAIL", Reply: "421 4.3.2 Shutting down", Close: true}}},
			wantErr: emailconn.ErrRefused, wantCode: 421, temp: yes},
		{name: "F34 421 to MAIL, retried", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "MAIL", Reply: "421 4.3.2 Shutting down", Close: true, Times: 1}}},
			opts: &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}},
			check: func(t *testing.T, rc *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if rc.Attempts != 2 || len(srv.Messages()) != 1 {
					t.Errorf("attempts %d, messages %d; want 2, 1", rc.Attempts, len(srv.Messages()))
				}
			}},
		{name: "F35 550 to MAIL", srv: smtptest.Options{MailHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender not allowed"}
		}}, conn: lockstep, wantErr: emailconn.ErrRefused, wantCode: 550, temp: no, absent: []string{"RCPT", "DATA"}},
		{name: "F36 SIZE exceeded before DATA", srv: smtptest.Options{MaxMessageBytes: 10000},
			msg: func() *emailconn.Message {
				m := basicMessage()
				m.Attachments = []emailconn.Attachment{{Filename: "big.bin", Content: bytes.NewReader(make([]byte, 50000))}}
				return m
			}, wantErr: emailconn.ErrMessageTooLarge, absent: []string{"MAIL", "DATA"}},
		{name: "F36 SIZE declared", srv: smtptest.Options{MaxMessageBytes: 1 << 20},
			msg: func() *emailconn.Message {
				m := basicMessage()
				m.Attachments = []emailconn.Attachment{{Filename: "small.bin", Content: bytes.NewReader(make([]byte, 5000))}}
				return m
			},
			check: func(t *testing.T, _ *emailconn.Receipt, _ error, srv *smtptest.Server) {
				m := srv.Messages()[0]
				if m.MailOptions.Size < int64(len(m.Data)) {
					t.Errorf("SIZE=%d, message is %d bytes: SIZE must not be below the real size", m.MailOptions.Size, len(m.Data))
				}
			}},
		{name: "F37 greylisted", srv: smtptest.Options{RcptHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "Greylisted"}
		}}, conn: lockstep, wantErr: emailconn.ErrRecipientRejected, wantCode: 450, temp: yes, absent: []string{"DATA"}},
		{name: "F38 mixed recipients", srv: smtptest.Options{RcptHook: rcptMix},
			msg: func() *emailconn.Message {
				m := basicMessage()
				m.To = []string{"a@example.com", "nouser@example.com", "b@example.com", "grey@example.com"}
				return m
			}, wantErr: emailconn.ErrRecipientRejected,
			check: func(t *testing.T, rc *emailconn.Receipt, err error, srv *smtptest.Server) {
				if rc == nil || len(rc.Accepted) != 2 || len(rc.Rejected) != 2 {
					t.Fatalf("receipt %+v, want 2 accepted and 2 rejected", rc)
				}
				var re *emailconn.RecipientsError
				if !errors.As(err, &re) || re.Accepted != 2 || re.Rejected[0].Address != "nouser@example.com" || re.Rejected[0].Err.Code != 550 || re.Rejected[1].Err.Code != 451 {
					t.Errorf("RecipientsError = %+v", re)
				}
				if msgs := srv.Messages(); len(msgs) != 1 || strings.Join(msgs[0].To, ",") != "a@example.com,b@example.com" {
					t.Errorf("server got %+v", msgs)
				}
			}},
		{name: "F38 all or nothing", srv: smtptest.Options{RcptHook: rcptMix},
			msg: func() *emailconn.Message {
				m := basicMessage()
				m.To = []string{"a@example.com", "nouser@example.com"}
				m.RequireAllRecipients = true
				return m
			}, wantErr: emailconn.ErrRecipientRejected, absent: []string{"DATA"},
			check: func(t *testing.T, rc *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if rc != nil || len(srv.Messages()) != 0 {
					t.Errorf("receipt %+v, messages %d; want nothing sent", rc, len(srv.Messages()))
				}
			}},
		{name: "F39 552 too many recipients is temporary", srv: smtptest.Options{RcptHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 5, 3}, Message: "Too many recipients"}
		}}, wantErr: emailconn.ErrRecipientRejected, wantCode: 552, temp: yes}, // issue 10-3: the server's own code, treated as temporary

		// DATA (F40–F46).
		{name: "F40 554 to DATA", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "DATA", Reply: "554 5.5.1 No valid recipients"}}},
			wantErr: emailconn.ErrRefused, wantCode: 554, temp: no},
		{name: "F41 server stops reading", srv: smtptest.Options{ReadBuffer: 64 << 10, Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Stall}}},
			// The bound includes filling the socket buffers before the
			// stall: small ones on both sides, so that 2 MiB fill them
			// without composing the many MiB (slow under the race detector)
			// that Linux's default buffers hold.
			opts: emailconn.WithDial(&emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}, smallWriteBuffer),
			msg:  bigMessage(2 << 20), wantErr: emailconn.ErrTimeout, temp: yes, within: ftS + 4*time.Second},
		// 512 KiB every 200 ms: the whole upload takes several send
		// timeouts, but no stretch of it (even on a loaded machine) one.
		// 6 MiB are 8.2 MiB in base64: 16 pauses, at least 3.2 s.
		{name: "F41 slow but moving upload succeeds", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.SlowRead, Bytes: 512 << 10, Interval: 200 * time.Millisecond}}},
			// SendTimeout 2 s also covers the test server's own work after
			// the last byte (under the race detector on a loaded machine)
			// before it replies.
			conn: func(c *emailconn.Connection) { c.SendTimeout = 2 * time.Second }, msg: bigMessage(6 << 20),
			check: func(t *testing.T, rc *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if rc.Duration < 3*time.Second {
					t.Errorf("upload took %v; the test wants it well over the send timeout", rc.Duration)
				}
			}},
		// The message is larger than the socket buffers, so the reset
		// reaches the client while it is still writing: not delivered. (A
		// reset after every byte was handed to the kernel is reported as
		// ErrDeliveryUnknown: the client cannot tell what the server read.)
		{name: "F42 reset mid-body", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Reset, Bytes: 64 << 10}}},
			msg: bigMessage(24 << 20), wantErr: emailconn.ErrConnect, temp: yes},
		{name: "F42 reset mid-body, retried", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Reset, Bytes: 64 << 10, Times: 1}}},
			msg: bigMessage(24 << 20), opts: &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}},
			check: func(t *testing.T, rc *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if rc.Attempts != 2 || len(srv.Messages()) != 1 || len(srv.Messages()[0].Data) < 24<<20 {
					t.Errorf("attempts %d, messages %d", rc.Attempts, len(srv.Messages()))
				}
			}},
		{name: "F43 close after the final dot", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop}}},
			opts: &emailconn.Options{}, wantErr: emailconn.ErrDeliveryUnknown, temp: no,
			check: func(t *testing.T, _ *emailconn.Receipt, err error, srv *smtptest.Server) {
				if srv.Sessions() != 1 {
					t.Errorf("sessions = %d: a message of unknown delivery state was sent again", srv.Sessions())
				}
				if !strings.Contains(err.Error(), "Message-ID") {
					t.Errorf("error %q does not name the Message-ID", err)
				}
			}},
		{name: "F44 no reply after the final dot", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Silent}}},
			opts: &emailconn.Options{}, wantErr: emailconn.ErrDeliveryUnknown, within: ftS + ftSlack,
			check: func(t *testing.T, _ *emailconn.Receipt, err error, srv *smtptest.Server) {
				if srv.Sessions() != 1 {
					t.Errorf("sessions = %d: sent again", srv.Sessions())
				}
			}},
		{name: "F45 552 after the dot", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "552 5.3.4 Message too big"}}},
			wantErr: emailconn.ErrRefused, wantCode: 552, temp: no},
		{name: "F45 554 after the dot", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "554 5.7.1 Rejected as spam"}}},
			wantErr: emailconn.ErrRefused, wantCode: 554, temp: no},
		{name: "F46 451 after the dot, retried", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "451 4.3.0 Try again", Times: 1}}},
			opts: &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}},
			check: func(t *testing.T, rc *emailconn.Receipt, _ error, srv *smtptest.Server) {
				if rc.Attempts != 2 || len(srv.Messages()) != 1 {
					t.Errorf("attempts %d, messages %d; want 2, 1", rc.Attempts, len(srv.Messages()))
				}
			}},
		{name: "F46 451 after the dot", srv: smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "451 4.3.0 Try again"}}},
			wantErr: emailconn.ErrRefused, wantCode: 451, temp: yes},
		{name: "F47 QUIT unanswered", srv: smtptest.Options{Faults: []smtptest.Fault{{At: "QUIT", Action: smtptest.Silent}}},
			opts: &emailconn.Options{IdleTimeout: -1}, within: ftS + ftSlack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runFaultCase(t, tc)
		})
	}
}

func rcptMix(to string) *smtp.SMTPError {
	switch {
	case strings.HasPrefix(to, "nouser"):
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	case strings.HasPrefix(to, "grey"):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Greylisted"}
	}
	return nil
}

// smallWriteBuffer dials with a 64 KiB send buffer, so that a server that
// stops reading blocks the upload after little data.
func smallWriteBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn.(*net.TCPConn).SetWriteBuffer(64 << 10)
	return conn, nil
}

func TestInsecureAuthRefused(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"alice": "s3cret"}, Mechanisms: []string{"PLAIN", "LOGIN", "XOAUTH2"}})
	c := connFor(t, srv, "none")
	c.Username, c.Password, c.AllowInsecureAuth = "alice", "s3cret", false
	opts := emailconn.WithDial(&emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}, func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return fakeRemote{conn}, nil
	})
	s := mustSender(t, c, opts)
	_, err := s.Send(context.Background(), basicMessage())
	if !errors.Is(err, emailconn.ErrInsecureAuth) {
		t.Fatalf("Send = %v, want ErrInsecureAuth", err)
	}
	s.Close()
	srv.Close()
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "AUTH") || strings.Contains(l, "czNjcmV0") || strings.HasPrefix(l, "MAIL") {
			t.Errorf("transcript has %q", l)
		}
	}

	// With AllowInsecureAuth the same session authenticates.
	srv2 := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"alice": "s3cret"}, RequireAuth: true})
	c2 := connFor(t, srv2, "none")
	c2.Username, c2.Password, c2.AllowInsecureAuth = "alice", "s3cret", true
	emailconn.WithDial(opts, func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return fakeRemote{conn}, nil
	})
	if _, err := mustSender(t, c2, opts).Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("Send with AllowInsecureAuth = %v", err)
	}
}

// TestHostileInputRefusedBeforeIO checks that bad messages never reach the
// network: the server sees no session at all.
func TestHostileInputRefusedBeforeIO(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	hostile := []struct {
		name  string
		msg   *emailconn.Message
		field string
	}{
		{"crlf subject", &emailconn.Message{To: []string{"a@example.com"}, Subject: "x\r\nBcc: victim@example.com"}, "Subject"},
		{"lf in header", &emailconn.Message{To: []string{"a@example.com"}, Headers: map[string]string{"X-Id": "1\nBcc: v@example.com"}}, "Headers"},
		{"structural header", &emailconn.Message{To: []string{"a@example.com"}, Headers: map[string]string{"Bcc": "v@example.com"}}, "Headers"},
		{"smuggled rcpt", &emailconn.Message{To: []string{"a@example.com> NOTIFY=SUCCESS ORCPT=rfc822;x@evil.example"}}, "To[0]"},
		{"smuggled from", &emailconn.Message{From: "a@example.com> RET=FULL", To: []string{"b@example.com"}}, "From"},
		{"quoted smuggling", &emailconn.Message{To: []string{`"x> ORCPT=rfc822;a@evil.test"@example.com`}}, "To[0]"},
		{"crlf in address", &emailconn.Message{To: []string{"a@example.com\r\nRCPT TO:<b@example.com>"}}, "To[0]"},
		{"nul", &emailconn.Message{To: []string{"a@example.com"}, Subject: "a\x00b"}, "Subject"},
		{"no recipient", &emailconn.Message{Subject: "x"}, "To"},
		{"crlf filename", &emailconn.Message{To: []string{"a@example.com"}, Attachments: []emailconn.Attachment{{Filename: "a\r\nb", Content: strings.NewReader("x")}}}, "Attachments[0]"},
		{"long address", &emailconn.Message{To: []string{strings.Repeat("a", 300) + "@example.com"}}, "To[0]"},
	}
	for _, h := range hostile {
		_, err := s.Send(context.Background(), h.msg)
		var fe *emailconn.FieldError
		if !errors.Is(err, emailconn.ErrInvalid) || !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, h.field) {
			t.Errorf("%s: Send = %v, want ErrInvalid naming %s", h.name, err, h.field)
		}
	}
	if n := srv.Sessions(); n != 0 {
		t.Errorf("the server saw %d sessions, want 0: hostile input reached the network", n)
	}
}

// TestNoBareCROrLFOnTheWire sends the smuggling sequences of T1 through
// every path and checks what the server received.
func TestNoBareCROrLFOnTheWire(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	seqs := []string{"x\r.\rSMUGGLED\r", "x\r.\r\nSMUGGLED\r\n", "a\n.\r\nMAIL FROM:<x@y>\r\n", "x\n.\nSMUGGLED\n", "\r\r\n", "trailing\r", ".leading\r\n"}
	for _, seq := range seqs {
		if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"a@example.com"}, Text: seq, HTML: "<p>" + seq + "</p>",
			Attachments: []emailconn.Attachment{{Filename: "a.txt", Content: strings.NewReader(seq)}}}); err != nil {
			t.Fatalf("Send(%q) = %v", seq, err)
		}
		raw := "From: a@example.com\r\nTo: b@example.com\r\nSubject: raw\r\n\r\n" + seq
		if _, err := s.SendRaw(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(raw)); err != nil {
			t.Fatalf("SendRaw(%q) = %v", seq, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2*len(seqs) {
		t.Fatalf("server got %d messages, want %d: a sequence split a message", len(msgs), 2*len(seqs))
	}
	for i, m := range msgs {
		d := string(m.Data)
		for j := 0; j < len(d); j++ {
			if d[j] == '\r' && (j+1 == len(d) || d[j+1] != '\n') || d[j] == '\n' && (j == 0 || d[j-1] != '\r') {
				t.Errorf("message %d has a bare CR or LF at %d: %q", i, j, d[max(0, j-10):min(len(d), j+10)])
				break
			}
		}
	}
	for _, l := range srv.Transcript() {
		if strings.Contains(l, "SMUGGLED") || strings.HasPrefix(l, "MAIL FROM:<x@y>") {
			t.Errorf("a smuggled command reached the server: %q", l)
		}
	}
}

// TestEndlessReplyMemory checks that an endless reply — the greeting, or
// the EHLO reply (issue 11, T15) — does not grow the heap (F10, T15).
func TestEndlessReplyMemory(t *testing.T) {
	for name, at := range map[string]smtptest.Point{"greeting": smtptest.Greeting, "issue11-T15/EHLO": "EHLO"} {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: at, Action: smtptest.Endless}}})
			c := connFor(t, srv, "none")
			c.ConnectTimeout, c.SendTimeout = 0, 0
			s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := s.Send(ctx, basicMessage())
			runtime.ReadMemStats(&after)
			if !errors.Is(err, emailconn.ErrReplyTooLarge) || !errors.Is(err, emailconn.ErrConnect) {
				t.Fatalf("Send = %v, want ErrConnect caused by errReplyTooLarge", err)
			}
			if grew := int64(after.TotalAlloc) - int64(before.TotalAlloc); grew > 8<<20 {
				t.Errorf("allocated %d bytes reading an endless reply, want < 8 MiB", grew)
			}
		})
	}
}

func TestPoolReusesSessions(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}})
	c := connFor(t, srv, "starttls")
	c.Username, c.Password = "alice", "s3cret"
	s := mustSender(t, c, nil)
	for i := range 20 {
		if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"a@example.com"}, Subject: fmt.Sprint(i), Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Sessions(); n != 1 {
		t.Errorf("20 sequential sends used %d sessions, want 1", n)
	}
	var auths, rsets int
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "AUTH") {
			auths++
		}
		if l == "RSET" {
			rsets++
		}
	}
	if auths != 1 || rsets != 0 {
		t.Errorf("AUTH %d times, RSET %d times; want 1 and 0", auths, rsets)
	}
}

func TestPoolRedialsDeadIdleSession(t *testing.T) {
	t.Parallel()
	// The server closes each session after its message with the farewell
	// of an idle timeout ("421 4.4.2 Idle timeout", then the FIN), while
	// the session waits in the pool. (An Idle fault of 100 ms did the same
	// by the clock, and under load also cut a new session between its
	// greeting and EHLO.)
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "250 2.0.0 Queued\n421 4.4.2 Idle timeout", Close: true}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	for i := range 3 {
		if _, err := s.Send(context.Background(), basicMessage()); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		// The server has closed the pooled session.
		select {
		case <-srv.SessionClosed(i + 1):
		case <-time.After(10 * time.Second):
			t.Fatalf("session %d was never closed", i+1)
		}
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("messages = %d, want 3", n)
	}
	if n := srv.Sessions(); n != 3 {
		t.Errorf("sessions = %d, want 3 (one redial per dead session)", n)
	}
}

func TestPoolRedialsWhenServerDropsAfterMessage(t *testing.T) {
	t.Parallel()
	// The server answers the first command after each message with 421
	// and closes: the stale session is replaced without failing the send.
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterMessage, Reply: "421 4.4.2 Closing", Close: true}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	for i := range 3 {
		if _, err := s.Send(context.Background(), basicMessage()); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("messages = %d, want 3", n)
	}
}

func TestMaxSessionsBound(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Delay: 50 * time.Millisecond}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{MaxSessions: 2})
	errc := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := s.Send(context.Background(), basicMessage())
			errc <- err
		}()
	}
	for range 10 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.Sessions(); n > 2 {
		t.Errorf("10 concurrent sends with MaxSessions 2 opened %d sessions", n)
	}
	if n := len(srv.Messages()); n != 10 {
		t.Errorf("messages = %d, want 10", n)
	}
}

// TestCancelInEveryPhase cancels the context while the send waits in each
// phase (F49): the send returns the context's error within 100 ms.
func TestCancelInEveryPhase(t *testing.T) {
	t.Parallel()
	phases := []struct {
		name  string
		fault smtptest.Fault
		msg   func() *emailconn.Message
		mode  smtptest.Mode
	}{
		{"greeting", smtptest.Fault{At: smtptest.Greeting, Action: smtptest.Silent}, nil, smtptest.Plain},
		{"ehlo", smtptest.Fault{At: "EHLO", Action: smtptest.Silent}, nil, smtptest.StartTLS},
		{"starttls", smtptest.Fault{At: "STARTTLS", Action: smtptest.Silent}, nil, smtptest.StartTLS},
		{"tls handshake", smtptest.Fault{At: smtptest.Greeting, Action: smtptest.Silent}, nil, smtptest.Plain},
		{"auth", smtptest.Fault{At: "AUTH", Action: smtptest.Silent}, nil, smtptest.StartTLS},
		{"mail", smtptest.Fault{At: "MAIL", Action: smtptest.Silent}, nil, smtptest.Plain},
		{"data body", smtptest.Fault{At: smtptest.DataBody, Action: smtptest.Stall}, bigMessage(2 << 20), smtptest.Plain},
		{"final dot", smtptest.Fault{At: smtptest.AfterDot, Action: smtptest.Silent}, nil, smtptest.Plain},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			t.Parallel()
			// Small socket buffers: the upload blocks after little data.
			opts := smtptest.Options{TLS: ph.mode, Faults: []smtptest.Fault{ph.fault}, ReadBuffer: 64 << 10}
			if ph.name == "auth" {
				opts.Users = map[string]string{"alice": "s3cret"}
			}
			srv := smtptest.NewServer(t, opts)
			mode := "none"
			if ph.mode == smtptest.StartTLS {
				mode = "starttls"
			}
			if ph.name == "tls handshake" {
				mode = "implicit" // the server never answers the ClientHello
			}
			c := connFor(t, srv, mode)
			c.ConnectTimeout, c.SendTimeout = 0, 0 // only the context can end it
			if ph.name == "auth" {
				c.Username, c.Password = "alice", "s3cret"
			}
			s := mustSender(t, c, emailconn.WithDial(&emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}, smallWriteBuffer))
			msg := basicMessage()
			if ph.msg != nil {
				msg = ph.msg()
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := s.Send(ctx, msg)
				done <- err
			}()
			// The server has reached the phase: the fault fired (it now
			// stays silent or stalls for ever).
			select {
			case <-srv.Fired(0, 1):
			case err := <-done:
				t.Fatalf("Send returned before the phase was reached: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the phase was never reached")
			}
			cancelled := time.Now()
			cancel()
			select {
			case err := <-done:
				if d := time.Since(cancelled); d > 100*time.Millisecond {
					t.Errorf("Send returned %v after cancel, want ≤ 100ms", d)
				}
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Send = %v, want context.Canceled", err)
				}
				if strings.Contains(err.Error(), "use of closed network connection") {
					t.Errorf("Send = %q leaks the closed-connection error", err)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("Send did not return after cancel")
			}
		})
	}
}

func TestContextDeadlineWithoutTimeouts(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}})
	c := connFor(t, srv, "none")
	c.ConnectTimeout, c.SendTimeout = 0, 0
	s := mustSender(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Send(ctx, basicMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 450*time.Millisecond || d > 500*time.Millisecond+ftSlack {
		t.Errorf("Send took %v, want about 500ms", d)
	}
}

func TestSendAfterClose(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	s := mustSender(t, connFor(t, srv, "none"), nil)
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestNonSeekableAttachmentNotRetriedAfterUpload(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "451 4.3.0 Try again", Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}})
	m := basicMessage()
	m.Attachments = []emailconn.Attachment{{Filename: "a.bin", Content: io.LimitReader(zeroReader{}, 1000)}}
	_, err := s.Send(context.Background(), m)
	if !errors.Is(err, emailconn.ErrRefused) || len(srv.Messages()) != 0 {
		t.Errorf("Send = %v with %d messages; want the 451 returned, not a retry with a consumed reader", err, len(srv.Messages()))
	}
}

// TestRSETAfterRefusedMessage: after the server refuses a message at the
// end of DATA, the next message on the same session starts with RSET, for
// servers that keep the transaction open (found with Mailpit).
func TestRSETAfterRefusedMessage(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "552 5.3.4 Message too big", Times: 1}}})
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrRefused) {
		t.Fatalf("first Send = %v, want ErrRefused", err)
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("second Send = %v", err)
	}
	var lines []string
	for _, l := range srv.Transcript() {
		if l == "RSET" || strings.HasPrefix(l, "MAIL") {
			lines = append(lines, l[:4])
		}
	}
	if strings.Join(lines, ",") != "MAIL,RSET,MAIL" || srv.Sessions() != 1 {
		t.Errorf("commands %v over %d sessions, want MAIL,RSET,MAIL over one", lines, srv.Sessions())
	}
}

func TestAuthRefusedBeforeTLSIsNotBadCredentials(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"alice": "s3cret"}, Faults: []smtptest.Fault{{At: "AUTH", Reply: "530 5.7.0 Must issue a STARTTLS command first"}}})
	c := connFor(t, srv, "none")
	c.Username, c.Password = "alice", "s3cret"
	_, err := mustSender(t, c, nil).Send(context.Background(), basicMessage())
	if !errors.Is(err, emailconn.ErrAuthUnsupported) || errors.Is(err, emailconn.ErrAuthFailed) {
		t.Errorf("Send = %v, want ErrAuthUnsupported (the credentials were never checked)", err)
	}
}
