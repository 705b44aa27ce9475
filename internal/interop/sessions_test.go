package interop

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// secrets returns the password and the forms it takes on the wire (AUTH
// PLAIN's and LOGIN's base64), none of which may appear in errors or logs.
func (s *suite) secrets(password string) []string {
	return []string{
		password,
		base64.StdEncoding.EncodeToString([]byte("\x00" + s.user + "\x00" + password)),
		base64.StdEncoding.EncodeToString([]byte(password)),
	}
}

// TestSessions sends one message through every kind of session Mailpit
// offers and checks, through Mailpit's API, that it arrived as sent, over
// the TLS and SASL mechanism the Receipt names, authenticated as the
// suite's user.
func TestSessions(t *testing.T) {
	s := setup(t)
	cases := []struct {
		name     string
		inst     string
		mode     string
		tlsOn    bool   // EnableTLS, with mode ""
		authOnly string // offer only this mechanism (through a proxy)
		wantTLS  bool
		wantMech string
	}{
		{name: "plain/none", inst: instPlain, mode: "none", wantMech: "PLAIN"},
		{name: "plain/opportunistic", inst: instPlain, mode: "opportunistic", wantMech: "PLAIN"},
		{name: "plain/LOGIN only", inst: instPlain, mode: "none", authOnly: "LOGIN", wantMech: "LOGIN"},
		{name: "starttls-required/starttls", inst: instSTARTTLS, mode: "starttls", wantTLS: true, wantMech: "PLAIN"},
		{name: "starttls-required/EnableTLS", inst: instSTARTTLS, tlsOn: true, wantTLS: true, wantMech: "PLAIN"},
		{name: "starttls-required/opportunistic", inst: instSTARTTLS, mode: "opportunistic", wantTLS: true, wantMech: "PLAIN"},
		{name: "implicit-tls/implicit", inst: instTLS, mode: "implicit", wantTLS: true, wantMech: "PLAIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(tc.inst).reset(t)
			c := s.conn(tc.inst, tc.mode)
			c.EnableTLS = tc.tlsOn
			c.LocalName = "engine-host.example.com"
			if tc.authOnly != "" {
				c.MailServer = newProxy(t, smtpAddr(tc.inst), tc.authOnly).addr()
			}
			logs := &logRecorder{}
			snd := newSender(t, c, &emailconn.Options{Logger: newLogger(logs)})
			msg := &emailconn.Message{
				To:      []string{"Approver <approver@example.com>"},
				Subject: "interop " + tc.name,
				Text:    "Workunit 42 needs your approval.\n",
				Headers: map[string]string{"X-Workunit": "42"},
			}
			rc, err := snd.Send(t.Context(), msg)
			if err != nil {
				t.Fatalf("Send through %s (%s): %v", tc.inst, c.MailServer, err)
			}
			if got := rc.TLSVersion != ""; got != tc.wantTLS {
				t.Errorf("Receipt.TLSVersion = %q, want TLS: %v", rc.TLSVersion, tc.wantTLS)
			}
			if tc.wantTLS && rc.TLSVersion != "TLS 1.3" && rc.TLSVersion != "TLS 1.2" {
				t.Errorf("Receipt.TLSVersion = %q, want TLS 1.2 or 1.3", rc.TLSVersion)
			}
			if rc.Mechanism != tc.wantMech {
				t.Errorf("Receipt.Mechanism = %q, want %q", rc.Mechanism, tc.wantMech)
			}
			if rc.Attempts != 1 || len(rc.Accepted) != 1 || rc.Accepted[0] != "approver@example.com" || len(rc.Rejected) != 0 {
				t.Errorf("Receipt: Attempts %d, Accepted %q, Rejected %v; want 1, [approver@example.com], none", rc.Attempts, rc.Accepted, rc.Rejected)
			}
			got := mp.stored(t, rc)
			if got.Subject != msg.Subject {
				t.Errorf("stored Subject = %q, want %q", got.Subject, msg.Subject)
			}
			if got.Username != s.user {
				t.Errorf("stored Username = %q, want %q (the message was not sent authenticated)", got.Username, s.user)
			}
			if got.From == nil || got.From.Address != "engine@example.com" || got.From.Name != "Workflow Engine" {
				t.Errorf("stored From = %+v, want Workflow Engine <engine@example.com> (the connection's From)", got.From)
			}
			if len(got.To) != 1 || got.To[0] != (address{"Approver", "approver@example.com"}) {
				t.Errorf("stored To = %+v, want [Approver <approver@example.com>]", got.To)
			}
			if got.ReturnPath != "engine@example.com" {
				t.Errorf("stored Return-Path = %q, want the envelope sender engine@example.com", got.ReturnPath)
			}
			if got.Text != crlf(msg.Text) {
				t.Errorf("stored Text = %q, want %q", got.Text, crlf(msg.Text))
			}
			raw := string(mp.raw(t, got.ID))
			// Mailpit's Received header names the last EHLO (after
			// STARTTLS, the one said inside TLS).
			if !strings.Contains(raw, "\nReceived: from engine-host.example.com (") {
				t.Errorf("raw message has no Received header naming EHLO engine-host.example.com (Connection.LocalName):\n%.300s", raw)
			}
			if !strings.Contains(raw, "\r\nX-Workunit: 42\r\n") {
				t.Errorf("raw message lacks the header X-Workunit: 42:\n%.600s", raw)
			}
			logs.mustNotLeak(t, s.secrets(s.password)...)
		})
	}
}

// stored returns the one message Mailpit stored for rc, found by its
// Message-ID, and checks that rc.QueueID is Mailpit's ID of it ("250 2.0.0
// Ok: queued as ID").
func (m *mailpit) stored(t *testing.T, rc *emailconn.Receipt) *message {
	t.Helper()
	found := findByMessageID(m.list(t), rc.MessageID)
	if len(found) != 1 {
		t.Fatalf("mailpit %s holds %d messages with Message-ID %q, want 1", m.name, len(found), rc.MessageID)
	}
	if rc.QueueID != found[0].ID {
		t.Errorf("Receipt.QueueID = %q, want Mailpit's ID %q (reply %q)", rc.QueueID, found[0].ID, rc.Reply)
	}
	return m.message(t, found[0].ID)
}

// mustBeEmpty fails the test when the instance stored anything.
func (m *mailpit) mustBeEmpty(t *testing.T) {
	t.Helper()
	if list := m.list(t); len(list) > 0 {
		var subjects []string
		for _, s := range list {
			subjects = append(subjects, fmt.Sprintf("%q", s.Subject))
		}
		t.Errorf("mailpit %s stored %d messages (%s), want none", m.name, len(list), strings.Join(subjects, ", "))
	}
}

// TestWrongPassword checks that a rejected password is ErrAuthFailed with
// Mailpit's permanent 535 reply, is not retried, leaks the password
// nowhere, and that nothing is stored.
func TestWrongPassword(t *testing.T) {
	s := setup(t)
	const wrong = "not-the-interop-password-7c1f"
	cases := []struct {
		name     string
		inst     string
		mode     string
		authOnly string
	}{
		{"plain/PLAIN", instPlain, "none", ""},
		{"plain/LOGIN only", instPlain, "none", "LOGIN"},
		{"starttls-required", instSTARTTLS, "starttls", ""},
		{"implicit-tls", instTLS, "implicit", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(tc.inst).reset(t)
			c := s.conn(tc.inst, tc.mode)
			c.Password = wrong
			if tc.authOnly != "" {
				c.MailServer = newProxy(t, smtpAddr(tc.inst), tc.authOnly).addr()
			}
			logs := &logRecorder{}
			// The default retry policy: a wrong password must not be retried.
			snd := newSender(t, c, &emailconn.Options{Logger: newLogger(logs), Retry: emailconn.RetryPolicy{InitialBackoff: time.Millisecond}})
			rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"})
			if err == nil {
				t.Fatalf("Send with a wrong password succeeded (receipt %+v)", rc)
			}
			if !errors.Is(err, emailconn.ErrAuthFailed) {
				t.Errorf("Send error = %v, want ErrAuthFailed", err)
			}
			var se *emailconn.SMTPError
			if !errors.As(err, &se) {
				t.Errorf("Send error %v holds no *SMTPError", err)
			} else if se.Code != 535 || se.Temporary() {
				t.Errorf("SMTPError = %v (Temporary %v), want Mailpit's 535 5.7.8, permanent", se, se.Temporary())
			}
			var ee *emailconn.Error
			if !errors.As(err, &ee) {
				t.Errorf("Send error %v is no *Error", err)
			} else if ee.Stage != emailconn.StageAuth || ee.Temporary() {
				t.Errorf("Error.Stage = %q, Temporary = %v; want %q, false", ee.Stage, ee.Temporary(), emailconn.StageAuth)
			}
			if n := logs.attempts(); n != 1 {
				t.Errorf("%d attempts logged, want 1: a rejected password must not be retried", n)
			}
			for _, sec := range s.secrets(wrong) {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("error message %q contains the password", err)
				}
			}
			logs.mustNotLeak(t, s.secrets(wrong)...)
			mp.mustBeEmpty(t)
		})
	}
}

// TestTLSUnavailable checks that a connection that requires TLS never
// talks in plaintext past the point where TLS fails: a server that does
// not offer STARTTLS, a plaintext port for implicit TLS, and a
// certificate the client does not trust all end in ErrTLSUnavailable,
// with no credentials and no message sent.
func TestTLSUnavailable(t *testing.T) {
	s := setup(t)
	cases := []struct {
		name      string
		inst      string
		mode      string
		tlsOn     bool
		noCA      bool
		proxy     bool // through a recording proxy (plaintext servers only)
		wantStage emailconn.Stage
		wantCert  bool // the cause is a certificate verification error
	}{
		{name: "starttls mode, STARTTLS not offered", inst: instPlain, mode: "starttls", proxy: true, wantStage: emailconn.StageSTARTTLS},
		{name: "EnableTLS, STARTTLS not offered", inst: instPlain, tlsOn: true, proxy: true, wantStage: emailconn.StageSTARTTLS},
		{name: "implicit mode, plaintext server", inst: instPlain, mode: "implicit", proxy: true, wantStage: emailconn.StageTLS},
		{name: "starttls, untrusted certificate", inst: instSTARTTLS, mode: "starttls", noCA: true, wantStage: emailconn.StageSTARTTLS, wantCert: true},
		{name: "implicit, untrusted certificate", inst: instTLS, mode: "implicit", noCA: true, wantStage: emailconn.StageTLS, wantCert: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(tc.inst).reset(t)
			c := s.conn(tc.inst, tc.mode)
			c.EnableTLS = tc.tlsOn
			if tc.noCA {
				c.CAFile = ""
			}
			var px *proxy
			if tc.proxy {
				px = newProxy(t, smtpAddr(tc.inst), "")
				c.MailServer = px.addr()
			}
			snd := newSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"})
			if err == nil {
				t.Fatalf("Send succeeded without TLS (receipt TLSVersion %q)", rc.TLSVersion)
			}
			if !errors.Is(err, emailconn.ErrTLSUnavailable) {
				t.Errorf("Send error = %v, want ErrTLSUnavailable", err)
			}
			var ee *emailconn.Error
			if errors.As(err, &ee) && ee.Stage != tc.wantStage {
				t.Errorf("Error.Stage = %q, want %q (error: %v)", ee.Stage, tc.wantStage, err)
			}
			if tc.wantCert {
				var cve *tls.CertificateVerificationError
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &cve) || !errors.As(err, &ua) {
					t.Errorf("Send error = %v, want a certificate verification error (unknown authority) in the chain", err)
				}
			}
			if px != nil {
				sent := strings.ToUpper(px.sent())
				for _, cmd := range []string{"AUTH", "MAIL FROM", "RCPT TO", "DATA"} {
					if strings.Contains(sent, cmd) {
						t.Errorf("the client sent %s in plaintext although TLS was required; it sent:\n%s", cmd, px.sent())
					}
				}
			}
			mp.mustBeEmpty(t)
		})
	}
}

// TestTLSModeMismatch checks that STARTTLS against an implicit-TLS port,
// where each side waits for the other, ends with ErrTimeout after the
// connect timeout instead of hanging.
func TestTLSModeMismatch(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instTLS).reset(t)
	c := s.conn(instTLS, "starttls")
	c.ConnectTimeout = time.Second
	snd := newSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	start := time.Now()
	_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"})
	took := time.Since(start)
	if !errors.Is(err, emailconn.ErrTimeout) {
		t.Errorf("Send error = %v, want ErrTimeout", err)
	}
	var ee *emailconn.Error
	if errors.As(err, &ee) && ee.Stage != emailconn.StageGreeting {
		t.Errorf("Error.Stage = %q, want %q", ee.Stage, emailconn.StageGreeting)
	}
	if took > 5*time.Second {
		t.Errorf("Send took %v with a 1s connect timeout", took)
	}
	mp.mustBeEmpty(t)
}

// crlf returns s with its line ends as a message carries them: CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

// TestPlaintextToSTARTTLSRequired connects without TLS (TLSMode none) to
// the instance that requires STARTTLS: Mailpit refuses AUTH, or MAIL
// without credentials, with 530 5.7.0 "Must issue a STARTTLS command
// first", which must reach the caller as a permanent *SMTPError, with
// nothing stored.
func TestPlaintextToSTARTTLSRequired(t *testing.T) {
	s := setup(t)
	for _, tc := range []struct {
		name      string
		user      string
		wantStage emailconn.Stage
	}{
		{"with credentials", s.user, emailconn.StageAuth},
		{"without credentials", "", emailconn.StageMail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(instSTARTTLS).reset(t)
			c := s.conn(instSTARTTLS, "none")
			c.Username = tc.user
			if tc.user == "" {
				c.Password = ""
			}
			snd := newSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"})
			var se *emailconn.SMTPError
			if !errors.As(err, &se) || se.Code != 530 || se.Temporary() {
				t.Errorf("Send error = %v, want Mailpit's permanent 530 as *SMTPError", err)
			}
			var ee *emailconn.Error
			if errors.As(err, &ee) && (ee.Stage != tc.wantStage || ee.Temporary()) {
				t.Errorf("Error.Stage = %q, Temporary = %v; want %q, false", ee.Stage, ee.Temporary(), tc.wantStage)
			}
			for _, k := range []error{emailconn.ErrAuthFailed, emailconn.ErrRefused, emailconn.ErrTLSUnavailable} {
				if errors.Is(err, k) {
					t.Logf("classified as %v: %v", k, err)
				}
			}
			mp.mustBeEmpty(t)
		})
	}
}
