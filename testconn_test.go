package emailconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func outcomes(rep *emailconn.TestReport) map[emailconn.Stage]emailconn.Outcome {
	m := map[emailconn.Stage]emailconn.Outcome{}
	for _, s := range rep.Stages {
		m[s.Stage] = s.Outcome
	}
	return m
}

func TestTestConnectionPasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		srv   smtptest.Options
		mode  string
		auth  bool
		probe string
		want  map[emailconn.Stage]emailconn.Outcome
		say   string
	}{
		{"starttls with auth and probe", smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}}, "starttls", true, "ops@example.com",
			map[emailconn.Stage]emailconn.Outcome{emailconn.StageResolve: emailconn.OutcomeSkipped, emailconn.StageConnect: emailconn.OutcomePassed, emailconn.StageTLS: emailconn.OutcomeSkipped, emailconn.StageGreeting: emailconn.OutcomePassed, emailconn.StageEHLO: emailconn.OutcomePassed, emailconn.StageSTARTTLS: emailconn.OutcomePassed,
				emailconn.StageToken: emailconn.OutcomeSkipped, emailconn.StageAuth: emailconn.OutcomePassed, emailconn.StageMail: emailconn.OutcomePassed, emailconn.StageRcpt: emailconn.OutcomePassed, emailconn.StageReset: emailconn.OutcomePassed, emailconn.StageQuit: emailconn.OutcomePassed},
			"STARTTLS (TLS 1.3), authenticated as alice with PLAIN, and the server accepts mail from engine@example.com to the probe recipient in"},
		{"implicit without probe", smtptest.Options{TLS: smtptest.Implicit, Users: map[string]string{"alice": "s3cret"}}, "implicit", true, "",
			map[emailconn.Stage]emailconn.Outcome{emailconn.StageTLS: emailconn.OutcomePassed, emailconn.StageGreeting: emailconn.OutcomePassed, emailconn.StageEHLO: emailconn.OutcomePassed, emailconn.StageSTARTTLS: emailconn.OutcomeSkipped, emailconn.StageAuth: emailconn.OutcomePassed, emailconn.StageMail: emailconn.OutcomeSkipped, emailconn.StageQuit: emailconn.OutcomePassed},
			"implicit TLS (TLS 1.3), authenticated as alice with PLAIN in"},
		{"plaintext without auth", smtptest.Options{}, "none", false, "",
			map[emailconn.Stage]emailconn.Outcome{emailconn.StageTLS: emailconn.OutcomeSkipped, emailconn.StageSTARTTLS: emailconn.OutcomeSkipped, emailconn.StageAuth: emailconn.OutcomeSkipped, emailconn.StageQuit: emailconn.OutcomePassed},
			", without TLS in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.srv)
			c := connFor(t, srv, tt.mode)
			if tt.auth {
				c.Username, c.Password = "alice", "s3cret"
			}
			rep := runTest(c, &emailconn.TestOptions{ProbeRecipient: tt.probe})
			if !rep.OK || rep.Err != nil {
				t.Fatalf("report not OK: %s", reportJSON(rep))
			}
			got := outcomes(rep)
			for st, o := range tt.want {
				if got[st] != o {
					t.Errorf("stage %s = %s, want %s", st, got[st], o)
				}
			}
			if !strings.Contains(rep.Sentence, tt.say) || !strings.HasPrefix(rep.Sentence, "Connected to "+srv.Addr()) {
				t.Errorf("sentence = %q, want it to contain %q", rep.Sentence, tt.say)
			}
			low := strings.ToLower(rep.Sentence)
			for _, word := range []string{"error", "fail"} {
				if strings.Contains(low, word) {
					t.Errorf("success sentence %q contains %q", rep.Sentence, word)
				}
			}
			if len(rep.Stages) != emailconn.LadderLen() {
				t.Errorf("%d stages, want %d", len(rep.Stages), emailconn.LadderLen())
			}
			for _, l := range srv.Transcript() {
				if strings.HasPrefix(l, "DATA") {
					t.Error("Test Connection sent DATA")
				}
			}
			if len(srv.Messages()) != 0 {
				t.Error("Test Connection sent a message")
			}
		})
	}
}

func TestTestConnectionReportsServer(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}, MaxMessageBytes: 10 << 20, Mechanisms: []string{"PLAIN", "LOGIN", "CRAM-MD5"}})
	c := connFor(t, srv, "starttls")
	c.Username, c.Password, c.ActionsBaseURL = "alice", "s3cret", "https://approvals.example.com"
	rep := runTest(c, &emailconn.TestOptions{Options: &emailconn.Options{ActionOrigin: "http://engine.internal:8080"}})
	if !rep.OK {
		t.Fatalf("%s", reportJSON(rep))
	}
	s := rep.Server
	if s.TLSVersion != "TLS 1.3" || s.CipherSuite == "" || s.Mechanism != "PLAIN" || s.MaxMessageSize != 10<<20 || s.Address != srv.Addr() ||
		strings.Join(s.AuthMechanisms, " ") != "PLAIN LOGIN CRAM-MD5" || len(s.Extensions) < 3 {
		t.Errorf("server info %+v", s)
	}
	if rep.Certificate == nil || !rep.Certificate.Verified || !strings.Contains(strings.Join(rep.Certificate.IPs, " "), "127.0.0.1") || rep.Certificate.Issuer == "" {
		t.Errorf("certificate %+v", rep.Certificate)
	}
	if rep.ActionLinkPreview != "https://approvals.example.com/actions/approve?workunit=4711&action=approve" {
		t.Errorf("preview = %q", rep.ActionLinkPreview)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "also offers CRAM-MD5") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	// The JSON form is stable: every field is present.
	var m map[string]any
	if err := json.Unmarshal(reportJSON(rep), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"connection", "ok", "sentence", "stages", "server", "certificate", "hints", "warnings", "notProven", "actionLinkPreview", "durationMs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if strings.Contains(string(reportJSON(rep)), "s3cret") {
		t.Error("the report contains the password")
	}
}

func TestTestConnectionWarnings(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertExpiresSoon})
	c := connFor(t, srv, "implicit")
	c.ConnectTimeout, c.SendTimeout = 0, 0
	rep := runTest(c, nil)
	if !rep.OK {
		t.Fatalf("%s", reportJSON(rep))
	}
	// Implicit TLS on a port that is not well known: no port warning
	// (issue 10-19; the port warning is asserted on port 587 in
	// TestIssue10_19_PortWarningOnlyOnWellKnownPorts).
	want := []string{"No timeouts are configured", "certificate expires on"}
	if len(rep.Warnings) != len(want) {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	for i, w := range want {
		if i < len(rep.Warnings) && !strings.Contains(rep.Warnings[i], w) {
			t.Errorf("warning %d = %q, want %q", i, rep.Warnings[i], w)
		}
	}

	plain := smtptest.NewServer(t, smtptest.Options{})
	rep = runTest(connFor(t, plain, "none"), nil)
	if !rep.OK || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "messages travel in plaintext") {
		t.Errorf("plaintext warnings = %q", rep.Warnings)
	}

	// STARTTLS on 465: a warning even though nothing listens there.
	c = emailconn.Connection{Name: "x", MailServer: "127.0.0.1:465", TLSMode: "starttls", EnableTLS: true, ConnectTimeout: time.Second, SendTimeout: time.Second}
	rep = runTest(c, nil)
	if rep.OK || !strings.Contains(strings.Join(rep.Warnings, " "), "STARTTLS on port 465") {
		t.Errorf("465 warnings = %q", rep.Warnings)
	}
}

// hintCase is a Test Connection that fails with a recognisable cause.
type hintCase struct {
	name  string
	srv   smtptest.Options
	mode  string
	patch func(*emailconn.Connection, *emailconn.TestOptions)
	stage emailconn.Stage
	hint  string // substring of the first hint
}

func TestTestConnectionHints(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "s3cret"}
	authReply := func(reply string) smtptest.Options {
		return smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: smtptest.AuthResult, Reply: reply}}}
	}
	probe := func(c *emailconn.Connection, o *emailconn.TestOptions) {
		o.ProbeRecipient = "someone@elsewhere.example"
	}
	tests := []hintCase{
		{"plaintext to implicit TLS port", smtptest.Options{TLS: smtptest.Implicit}, "none", nil, emailconn.StageGreeting, "expects implicit TLS"},
		{"TLS to a plaintext port", smtptest.Options{}, "implicit", nil, emailconn.StageTLS, "does not speak TLS on port"},
		{"STARTTLS not offered", smtptest.Options{}, "starttls", nil, emailconn.StageSTARTTLS, "does not offer STARTTLS on port"},
		{"certificate name mismatch", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertWrongName}, "starttls", nil, emailconn.StageSTARTTLS, "The certificate is for wrong.example, not 127.0.0.1"},
		// Without caFile (issue 10-17: with a caFile of the wrong CA, the
		// hint is another one; see TestIssue10_17_CAFileOfAnotherCA).
		{"unknown authority", smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertSelfSigned}, "implicit", func(c *emailconn.Connection, _ *emailconn.TestOptions) { c.CAFile = "" }, emailconn.StageTLS, "set caFile"},
		{"expired certificate", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertExpired}, "starttls", nil, emailconn.StageSTARTTLS, "certificate has expired"},
		{"AUTH not offered", smtptest.Options{TLS: smtptest.StartTLS}, "starttls", func(c *emailconn.Connection, _ *emailconn.TestOptions) { c.Username, c.Password = "alice", "s3cret" }, emailconn.StageAuth, "offers no AUTH"},
		{"mechanism not offered", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Mechanisms: []string{"CRAM-MD5", "GSSAPI"}}, "starttls", nil, emailconn.StageAuth, "offers CRAM-MD5 GSSAPI but not PLAIN or LOGIN"},
		{"535 5.7.139", authReply("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully"), "starttls", nil, emailconn.StageAuth, "Basic authentication) is disabled for this Microsoft 365 tenant"},
		{"535 5.7.3", authReply("535 5.7.3 Authentication unsuccessful"), "starttls", nil, emailconn.StageAuth, "SMTP.SendAsApp"},
		{"534 5.7.9", authReply("534-5.7.9 Application-specific password required.\n534 5.7.9 Learn more at https://support.google.com/mail"), "starttls", nil, emailconn.StageAuth, "app password or OAuth2"},
		{"530 5.7.0", smtptest.Options{Users: users, Faults: []smtptest.Fault{{At: "AUTH", Reply: "530 5.7.0 Must issue a STARTTLS command first"}}}, "none", nil, emailconn.StageAuth, "requires STARTTLS before this command"},
		{"550 5.7.30", authReply("550 5.7.30 Basic authentication is not supported for Client Submission"), "starttls", nil, emailconn.StageAuth, "Basic authentication is retired"},
		{"504 5.7.4", authReply("504 5.7.4 Unrecognized authentication type"), "starttls", nil, emailconn.StageAuth, "Microsoft 365 accepts only LOGIN and XOAUTH2"},
		{"wrong password", smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "other"}}, "starttls", nil, emailconn.StageAuth, "rejected the credentials of alice"},
		{"550 5.7.1 relay denied", smtptest.Options{TLS: smtptest.StartTLS, Users: users, RcptHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Unable to relay"}
		}}, "starttls", probe, emailconn.StageRcpt, "refuses to relay"},
		{"550 5.7.60 send-as denied", smtptest.Options{TLS: smtptest.StartTLS, Users: users, MailHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "Client does not have permissions to send as this sender"}
		}}, "starttls", probe, emailconn.StageMail, "may not send as engine@example.com"},
		{"non-SMTP service", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "HTTP/1.1 400 Bad Request\r\n", Close: true}}}, "none", nil, emailconn.StageGreeting, "does not speak SMTP"},
		{"421 greeting", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "421 4.3.2 Too many connections", Close: true}}}, "none", nil, emailconn.StageGreeting, "closed the session (421)"},
		{"greeting timeout", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}}, "none", nil, emailconn.StageGreeting, "sent no greeting"},
		{"EHLO timeout", smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "EHLO", Action: smtptest.Silent}}}, "starttls", nil, emailconn.StageEHLO, "sent no greeting"},
		{"STARTTLS timeout", smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "STARTTLS", Action: smtptest.Silent}}}, "starttls", nil, emailconn.StageSTARTTLS, "did not reply in time"},
		{"AUTH timeout", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "AUTH", Action: smtptest.Silent}}}, "starttls", nil, emailconn.StageAuth, "did not reply in time"},
		{"MAIL timeout", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "MAIL", Action: smtptest.Silent}}}, "starttls", probe, emailconn.StageMail, "did not reply in time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.NewServer(t, tc.srv)
			c := connFor(t, srv, tc.mode)
			// Room for a loaded machine, except for the timeout that the
			// case is about: a server silent in a phase, or one that waits
			// for a TLS handshake the client never starts.
			c.ConnectTimeout, c.SendTimeout = 10*time.Second, 10*time.Second
			silent := tc.name == "plaintext to implicit TLS port"
			for _, f := range tc.srv.Faults {
				silent = silent || f.Action == smtptest.Silent
			}
			if silent {
				// Long enough for the phases before the silent one on a
				// loaded machine under the race detector.
				switch tc.stage {
				case emailconn.StageAuth, emailconn.StageMail, emailconn.StageRcpt:
					c.SendTimeout = time.Second
				default:
					c.ConnectTimeout = time.Second
				}
			}
			if tc.srv.Users != nil {
				c.Username, c.Password = "alice", "s3cret"
			}
			opts := &emailconn.TestOptions{}
			if tc.patch != nil {
				tc.patch(&c, opts)
			}
			checkFailure(t, runTest(c, opts), tc.stage, tc.hint)
		})
	}
}

func checkFailure(t *testing.T, rep *emailconn.TestReport, stage emailconn.Stage, hint string) {
	t.Helper()
	if rep.OK || rep.Err == nil {
		t.Fatalf("report OK, want a failure at %s: %s", stage, reportJSON(rep))
	}
	got := outcomes(rep)
	if got[stage] != emailconn.OutcomeFailed {
		t.Errorf("stage %s = %s, want failed\n%s", stage, got[stage], reportJSON(rep))
	}
	after := false
	for _, s := range rep.Stages {
		if after && s.Outcome != emailconn.OutcomeNotRun {
			t.Errorf("stage %s after the failure = %s, want not run", s.Stage, s.Outcome)
		}
		if s.Stage == stage {
			after = true
		}
	}
	if len(rep.Hints) == 0 || !strings.Contains(rep.Hints[0], hint) {
		t.Errorf("hints = %q, want %q", rep.Hints, hint)
	}
	if !strings.Contains(rep.Sentence, "stopped at") || !strings.Contains(rep.Sentence, hint) {
		t.Errorf("sentence = %q, want the stage and the hint", rep.Sentence)
	}
}

func TestTestConnectionConnectionFailures(t *testing.T) {
	t.Parallel()
	// Connection refused: a port nothing listens on.
	addr := smtptest.RefusedAddr(t)
	checkFailure(t, runTest(emailconn.Connection{Name: "x", MailServer: addr, ConnectTimeout: time.Second}, nil), emailconn.StageConnect, "Nothing accepts connections")

	// Host not found, through the resolver seam.
	notFound := emailconn.WithLookup(&emailconn.Options{}, func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "smtp.example.invalid", IsNotFound: true}
	})
	checkFailure(t, runTest(emailconn.Connection{Name: "x", MailServer: "smtp.example.invalid", ConnectTimeout: time.Second},
		&emailconn.TestOptions{Options: notFound}), emailconn.StageResolve, "does not resolve")

	// Connect timeout, through the dialer seam.
	blocking := emailconn.WithDial(&emailconn.Options{}, func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	start := time.Now()
	checkFailure(t, runTest(emailconn.Connection{Name: "x", MailServer: "127.0.0.1:25", ConnectTimeout: 300 * time.Millisecond},
		&emailconn.TestOptions{Options: blocking}), emailconn.StageConnect, "No answer from 127.0.0.1 port 25")
	if d := time.Since(start); d > 300*time.Millisecond+ftSlack {
		t.Errorf("connect timeout reported after %v", d)
	}
}

// TestTestConnectionBoundedWithoutTimeouts: a silent server and a
// connection without timeouts are still reported within the default cap.
func TestTestConnectionBoundedWithoutTimeouts(t *testing.T) {
	const limit = 300 * time.Millisecond // the cap, shortened for the test
	emailconn.SetDefaultTestTimeout(t, limit)
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}})
	c := connFor(t, srv, "none")
	c.ConnectTimeout, c.SendTimeout = 0, 0
	start := time.Now()
	rep := runTest(c, nil)
	if d := time.Since(start); d < limit || d > limit+ftSlack {
		t.Errorf("the test returned after %v, want about the %v cap", d, limit)
	}
	checkFailure(t, rep, emailconn.StageGreeting, "reached its time limit")
	if !strings.Contains(strings.Join(rep.Warnings, " "), "No timeouts are configured") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
}

func TestTestConnectionInvalid(t *testing.T) {
	t.Parallel()
	rep := runTest(emailconn.Connection{Name: "x", MailServer: "smtp://bad", SendTimeout: -1}, nil)
	if rep.OK || !errors.Is(rep.Err, emailconn.ErrInvalid) || !strings.Contains(rep.Sentence, "not valid") || !strings.Contains(rep.Sentence, "SendTimeout") {
		t.Errorf("report %s", reportJSON(rep))
	}
	for _, s := range rep.Stages {
		if s.Outcome != emailconn.OutcomeNotRun {
			t.Errorf("stage %s = %s for an invalid connection", s.Stage, s.Outcome)
		}
	}
}

// TestTestConnectionDialPolicy: every blocked class is refused before any
// connection is made, with one and the same error.
func TestTestConnectionDialPolicy(t *testing.T) {
	t.Parallel()
	var accepts atomic.Int32
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan string, 100) // the peers, in accept order
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepts.Add(1)
			select {
			case accepted <- c.RemoteAddr().String():
			default:
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	targets := []string{"169.254.169.254", "::ffff:127.0.0.1", "100.100.100.200", "fd00:ec2::254", "10.0.0.5", "127.0.0.1", "::1", "100.64.1.1", "192.168.1.10", "fe80::1", "0.0.0.0", "64:ff9b::7f00:1"}
	var sentences []string
	for _, target := range targets {
		ip := netip.MustParseAddr(target)
		opts := emailconn.WithLookup(&emailconn.Options{DialPolicy: &emailconn.DialPolicy{}}, func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{ip}, nil })
		c := emailconn.Connection{Name: "tenant", MailServer: "mail.tenant.example:" + itoa(port), ConnectTimeout: time.Second}
		rep := runTest(c, &emailconn.TestOptions{Options: opts})
		if !errors.Is(rep.Err, emailconn.ErrBlocked) {
			t.Errorf("%s: %v, want ErrBlocked", target, rep.Err)
		}
		sentences = append(sentences, rep.Sentence)
	}
	for i := 1; i < len(sentences); i++ {
		if sentences[i] != sentences[0] {
			t.Errorf("refusals differ: %q vs %q", sentences[i], sentences[0])
		}
	}
	// The listener accepts in arrival order: once it has accepted the
	// test's own marker connection, it has counted every earlier one.
	mc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	for peer := ""; peer != mc.LocalAddr().String(); {
		select {
		case peer = <-accepted:
		case <-time.After(10 * time.Second):
			t.Fatal("the listener never accepted the marker connection")
		}
	}
	accepts.Add(-1) // the marker
	if n := accepts.Load(); n != 0 {
		t.Errorf("the listener saw %d connections, want 0", n)
	}
	// Allowed explicitly, loopback connects.
	opts := &emailconn.Options{DialPolicy: &emailconn.DialPolicy{AllowLoopback: true}}
	rep := runTest(emailconn.Connection{Name: "x", MailServer: l.Addr().String(), ConnectTimeout: time.Second, SendTimeout: time.Second}, &emailconn.TestOptions{Options: opts})
	if got := outcomes(rep)[emailconn.StageConnect]; got != emailconn.OutcomePassed {
		t.Errorf("with AllowLoopback, connect = %s: %v", got, rep.Err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTestConnectionOAuth2(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(_, tok string) bool { return tok != "tok-1" }})
	r := oauthRegistry(t, srv, te, "client_credentials", nil)
	rep := r.TestConnection(context.Background(), "m365", nil)
	// The first token is rejected; like a send, the test drops it and
	// authenticates with a fresh one, and says so.
	if !rep.OK || rep.Server.Mechanism != "XOAUTH2" || !strings.Contains(rep.Sentence, "authenticated as robot@contoso.com with XOAUTH2") {
		t.Errorf("test: %s", reportJSON(rep))
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "rejected the cached OAuth2 access token (535 5.7.8 Username and Password not accepted (token rejected: status 401") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	if outcomes(rep)[emailconn.StageToken] != emailconn.OutcomePassed {
		t.Errorf("token stage = %s", outcomes(rep)[emailconn.StageToken])
	}
	// Every token rejected: the failure names the decoded challenge.
	srv2 := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return false }})
	r2 := oauthRegistry(t, srv2, te, "client_credentials", nil)
	checkFailure(t, r2.TestConnection(context.Background(), "m365", nil), emailconn.StageAuth, "rejected the OAuth2 access token for robot@contoso.com (status 401, scope https://mail.google.com/")
	if strings.Contains(string(reportJSON(rep)), "tok-") {
		t.Error("the report contains a token")
	}
	if rep := r.TestConnection(context.Background(), "nope", nil); rep.OK || !errors.Is(rep.Err, emailconn.ErrNotFound) {
		t.Errorf("unknown connection: %s", reportJSON(rep))
	}
}

func TestTestConnection530Hints(t *testing.T) {
	t.Parallel()
	// A server that requires AUTH, and a connection without credentials.
	srv := smtptest.NewServer(t, smtptest.Options{RequireAuth: true, Users: map[string]string{"alice": "s3cret"}})
	c := connFor(t, srv, "none")
	checkFailure(t, runTest(c, &emailconn.TestOptions{ProbeRecipient: "ops@example.com"}), emailconn.StageMail, "requires authentication before sending")
}

// TestIssue10_15_TokenEndpointDown: the mail server answers, the token
// endpoint refuses connections. The report stops at the token stage and
// its hint is about the token endpoint, not the mail server's port.
func TestIssue10_15_TokenEndpointDown(t *testing.T) {
	t.Parallel()
	down := smtptest.RefusedAddr(t)
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return true }})
	c := connFor(t, srv, "starttls")
	c.AuthType, c.Username, c.OAuth2Config = "oauth2", "robot@contoso.com", "down"
	oc := &emailconn.OAuth2Config{Name: "down", GrantType: "client_credentials", TokenURL: "http://" + down + "/token", ClientID: "app", ClientSecret: "client-secret-canary", Scopes: []string{"https://outlook.office365.com/.default"}}
	for _, restricted := range []bool{false, true} {
		rep := runTest(c, &emailconn.TestOptions{OAuth2Config: oc, Restricted: restricted})
		checkFailure(t, rep, emailconn.StageToken, `Nothing accepts connections at the token endpoint of OAuth2 configuration "down": check its tokenURL`)
		if got := outcomes(rep)[emailconn.StageConnect]; got != emailconn.OutcomePassed {
			t.Errorf("connect = %s, want passed", got)
		}
		for _, h := range rep.Hints {
			if strings.Contains(h, "check the port") || strings.Contains(h, srv.Addr()[strings.LastIndex(srv.Addr(), ":")+1:]) {
				t.Errorf("hint about the mail server's port: %q", h)
			}
		}
		if strings.Contains(string(reportJSON(rep)), "client-secret-canary") {
			t.Error("the report contains the client secret")
		}
	}
}

// TestIssue10_17_CAFileOfAnotherCA: a caFile that does not sign the
// server's certificate gets its own hint; only a connection without caFile
// is told to set one.
func TestIssue10_17_CAFileOfAnotherCA(t *testing.T) {
	t.Parallel()
	other := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(other, smtptest.NewCA().PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cert   smtptest.CertKind
		caFile func(t testing.TB) string
		hint   string
	}{
		{"caFile of another CA", smtptest.CertGood, func(testing.TB) string { return other }, "is not signed by an authority in caFile: caFile replaces the system's trusted authorities"},
		{"self-signed, caFile of the test CA", smtptest.CertSelfSigned, caFile, "is not signed by an authority in caFile"},
		{"self-signed, no caFile", smtptest.CertSelfSigned, func(testing.TB) string { return "" }, "for a private relay, set caFile to the relay's CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Implicit, Cert: tt.cert})
			c := connFor(t, srv, "implicit")
			c.CAFile = tt.caFile(t)
			rep := runTest(c, nil)
			checkFailure(t, rep, emailconn.StageTLS, tt.hint)
			if c.CAFile != "" && strings.Contains(rep.Hints[0], "set caFile") {
				t.Errorf("hint %q tells a connection with a caFile to set one", rep.Hints[0])
			}
		})
	}
}

// TestIssue10_18_AuthNotOffered: the hint for a server without AUTH
// depends on whether the session was encrypted and whether STARTTLS was
// offered; a plaintext session where no credentials were sent does not
// warn that credentials were sent.
func TestIssue10_18_AuthNotOffered(t *testing.T) {
	t.Parallel()
	creds := func(c *emailconn.Connection, _ *emailconn.TestOptions) { c.Username, c.Password = "alice", "s3cret" }
	tests := []struct {
		name string
		srv  smtptest.Options
		mode string
		hint string
		not  string
	}{
		{"encrypted", smtptest.Options{TLS: smtptest.StartTLS}, "starttls", "offers no AUTH, although the session is encrypted", "turn Enable TLS on"},
		{"implicit TLS", smtptest.Options{TLS: smtptest.Implicit}, "implicit", "offers no AUTH, although the session is encrypted", "turn Enable TLS on"},
		{"plaintext, STARTTLS offered", smtptest.Options{TLS: smtptest.StartTLS, RequireTLSForAuth: true, Users: map[string]string{"alice": "s3cret"}}, "none", "offers STARTTLS and no AUTH before it: turn Enable TLS on", ""},
		{"plaintext, no STARTTLS", smtptest.Options{}, "none", "offers neither AUTH nor STARTTLS on port", "turn Enable TLS on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.srv)
			c := connFor(t, srv, tt.mode)
			creds(&c, nil)
			rep := runTest(c, nil)
			checkFailure(t, rep, emailconn.StageAuth, tt.hint)
			if tt.not != "" && strings.Contains(strings.ToLower(rep.Hints[0]), strings.ToLower(tt.not)) {
				t.Errorf("hint %q says %q", rep.Hints[0], tt.not)
			}
			for _, w := range rep.Warnings {
				if strings.Contains(w, "credentials") {
					t.Errorf("warning %q although no credentials were sent", w)
				}
			}
			if tt.mode == "none" && !strings.Contains(strings.Join(rep.Warnings, " "), "messages travel in plaintext") {
				t.Errorf("warnings = %q, want the plaintext warning", rep.Warnings)
			}
		})
	}
	// Credentials that were sent in plaintext (to loopback) are still
	// reported as sent.
	srv := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"alice": "s3cret"}})
	c := connFor(t, srv, "none")
	creds(&c, nil)
	rep := runTest(c, nil)
	if !rep.OK || !strings.Contains(strings.Join(rep.Warnings, " "), "the credentials were sent in plaintext") {
		t.Errorf("plaintext AUTH: ok %v, warnings %q", rep.OK, rep.Warnings)
	}
}

// TestIssue10_19_PortWarningOnlyOnWellKnownPorts: a TLS mode is only
// suspicious on a port whose convention is the other mode.
func TestIssue10_19_PortWarningOnlyOnWellKnownPorts(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Implicit})
	rep := runTest(connFor(t, srv, "implicit"), nil)
	if !rep.OK || len(rep.Warnings) != 0 {
		t.Errorf("implicit TLS on port %d: ok %v, warnings %q, want none", rep.Server.Port, rep.OK, rep.Warnings)
	}
	// The same server, reached as 127.0.0.1:587 (through the dialer seam).
	redirect := emailconn.WithDial(&emailconn.Options{}, func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, srv.Addr())
	})
	for _, port := range []string{"587", "25"} {
		c := connFor(t, srv, "implicit")
		c.MailServer = "127.0.0.1:" + port
		rep = runTest(c, &emailconn.TestOptions{Options: redirect})
		if !rep.OK || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "Implicit TLS on port "+port+": port "+port+" usually expects STARTTLS") {
			t.Errorf("implicit TLS on port %s: ok %v, warnings %q", port, rep.OK, rep.Warnings)
		}
	}
	// STARTTLS on an unusual port: no warning either.
	st := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS})
	if rep := runTest(connFor(t, st, "starttls"), nil); !rep.OK || len(rep.Warnings) != 0 {
		t.Errorf("STARTTLS: ok %v, warnings %q", rep.OK, rep.Warnings)
	}
}

// TestIssue10_20_TestLimitAtGreeting: a connection without timeouts that
// runs into the test's own limit keeps the stage's hint, and the limit is
// reported as this package's timeout, not as a context error.
func TestIssue10_20_TestLimitAtGreeting(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}})
	c := connFor(t, srv, "none")
	c.ConnectTimeout, c.SendTimeout = 0, 0
	for _, restricted := range []bool{false, true} {
		start := time.Now()
		rep := runTest(c, &emailconn.TestOptions{Timeout: 300 * time.Millisecond, Restricted: restricted})
		if d := time.Since(start); d > 300*time.Millisecond+ftSlack {
			t.Errorf("the test returned after %v", d)
		}
		checkFailure(t, rep, emailconn.StageGreeting, "The test reached its time limit (300ms) without a reply")
		if !errors.Is(rep.Err, emailconn.ErrTimeout) || errors.Is(rep.Err, context.DeadlineExceeded) {
			t.Errorf("err = %v: want ErrTimeout and not context.DeadlineExceeded", rep.Err)
		}
		if j := string(reportJSON(rep)); strings.Contains(j, "context deadline exceeded") || !strings.Contains(rep.Sentence, "stopped at the greeting stage: no reply within the test's time limit (300ms).") {
			t.Errorf("report: %s", j)
		}
		if len(rep.Hints) != 2 || !strings.Contains(rep.Hints[1], "sent no greeting: if port") {
			t.Errorf("hints = %q, want the time limit and the port hint", rep.Hints)
		}
	}
	// The caller's own deadline is still the caller's context error.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rep := c.Test(ctx, &emailconn.TestOptions{Timeout: 5 * time.Second, Options: allowCA(c, nil)})
	if !errors.Is(rep.Err, context.DeadlineExceeded) || errors.Is(rep.Err, emailconn.ErrTimeout) {
		t.Errorf("caller's deadline: err = %v", rep.Err)
	}
}

// TestIssue10_21_TemporaryProbeRefusal: a 4xx to the probe gets a hint.
func TestIssue10_21_TemporaryProbeRefusal(t *testing.T) {
	t.Parallel()
	reply := func(code int, enh smtp.EnhancedCode, msg string) func(string) *smtp.SMTPError {
		return func(string) *smtp.SMTPError { return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg} }
	}
	tests := []struct {
		name  string
		srv   smtptest.Options
		stage emailconn.Stage
		hint  string
	}{
		{"450 at RCPT", smtptest.Options{RcptHook: reply(450, smtp.EnhancedCode{4, 7, 1}, "Greylisted, try again later")}, emailconn.StageRcpt, "temporarily refused the probe recipient (450): greylisting"},
		{"450 at RCPT without enhanced code", smtptest.Options{RcptHook: reply(450, smtp.NoEnhancedCode, "Mailbox unavailable")}, emailconn.StageRcpt, "temporarily refused the probe recipient (450)"},
		{"452 at RCPT", smtptest.Options{RcptHook: reply(452, smtp.EnhancedCode{4, 2, 2}, "Mailbox full")}, emailconn.StageRcpt, "temporarily refused the probe recipient (452): the mailbox or the server is out of space"},
		{"451 at MAIL", smtptest.Options{MailHook: reply(451, smtp.EnhancedCode{4, 3, 0}, "Local error")}, emailconn.StageMail, "temporarily refused the sender engine@example.com (451)"},
		{"550 at RCPT", smtptest.Options{RcptHook: reply(550, smtp.NoEnhancedCode, "No")}, emailconn.StageRcpt, "refuses the probe recipient (550)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.srv)
			rep := runTest(connFor(t, srv, "none"), &emailconn.TestOptions{ProbeRecipient: "ops@example.com"})
			checkFailure(t, rep, tt.stage, tt.hint)
		})
	}
}

// normalized is a report's JSON without durations, to compare reports.
func normalized(rep *emailconn.TestReport) string {
	r := *rep
	r.Duration = 0
	r.Stages = slices.Clone(rep.Stages)
	for i := range r.Stages {
		r.Stages[i].Duration = 0
	}
	return string(reportJSON(&r))
}

// jsonError is the "error" member of the report's JSON.
func jsonError(rep *emailconn.TestReport) string {
	var m struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(reportJSON(rep), &m)
	return m.Error
}

// TestIssue11_13_RestrictedReport: a restricted report tells a tenant what
// an administrator of the connection needs and nothing about what the
// engine's position reveals.
func TestIssue11_13_RestrictedReport(t *testing.T) {
	t.Parallel()
	const banner = "554 internal-relay-7.corp.local Postfix 3.4.1 (Debian) db=10.1.2.3"
	secret := []string{"internal-relay-7", "corp.local", "Postfix", "Debian", "10.1.2.3"}
	leaks := func(t *testing.T, rep *emailconn.TestReport, words ...string) {
		t.Helper()
		j := string(reportJSON(rep))
		for _, w := range words {
			if strings.Contains(j, w) || rep.Err != nil && strings.Contains(rep.Err.Error(), w) {
				t.Errorf("restricted report reveals %q:\n%s\nerr: %v", w, j, rep.Err)
			}
		}
	}

	t.Run("banner", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: banner, Close: true}}})
		c := connFor(t, srv, "none")
		full := runTest(c, nil)
		if !strings.Contains(full.Sentence, banner) {
			t.Errorf("full report: the banner is for administrators: %q", full.Sentence)
		}
		rep := runTest(c, &emailconn.TestOptions{Restricted: true})
		leaks(t, rep, secret...)
		if !strings.Contains(rep.Sentence, "stopped at the greeting stage: the server replied 554.") || jsonError(rep) != rep.Err.Error() {
			t.Errorf("sentence %q, error %q", rep.Sentence, jsonError(rep))
		}
		// The engine still has the whole error, and the sentinels.
		if !errors.Is(rep.Err, emailconn.ErrConnect) || !strings.Contains(errors.Unwrap(rep.Err).Error(), banner) {
			t.Errorf("err = %v, unwrapped %v", rep.Err, errors.Unwrap(rep.Err))
		}
		if rep.Server.Address != "" {
			t.Errorf("address dialled = %q", rep.Server.Address)
		}

		ssh := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"}}})
		rep = runTest(connFor(t, ssh, "none"), &emailconn.TestOptions{Restricted: true})
		checkFailure(t, rep, emailconn.StageGreeting, "does not speak SMTP")
		leaks(t, rep, "SSH-2.0", "OpenSSH", "Debian")
		if !strings.Contains(rep.Sentence, "stopped at the greeting stage: the service does not speak SMTP.") {
			t.Errorf("sentence = %q", rep.Sentence)
		}
	})

	t.Run("extensions and replies", func(t *testing.T) {
		ehlo := "250-internal-relay-7.corp.local Hello\n250-X-DB db=10.1.2.3\n250-SIZE 1000\n250-AUTH PLAIN LOGIN db=10.1.2.3\n250 PIPELINING"
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: "EHLO", Reply: ehlo}}})
		rep := runTest(connFor(t, srv, "none"), &emailconn.TestOptions{Restricted: true})
		if !rep.OK {
			t.Fatalf("%s", reportJSON(rep))
		}
		leaks(t, rep, append(secret, "X-DB")...)
		if got := strings.Join(rep.Server.Extensions, ", "); got != "SIZE 1000, AUTH PLAIN LOGIN, PIPELINING" {
			t.Errorf("extensions = %q", got)
		}
		if rep.Server.MaxMessageSize != 1000 || strings.Join(rep.Server.AuthMechanisms, " ") != "PLAIN LOGIN" {
			t.Errorf("server = %+v", rep.Server)
		}

		srv = smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"alice": "s3cret"}, Faults: []smtptest.Fault{
			{At: smtptest.AuthResult, Reply: "535 5.7.8 internal-relay-7.corp.local rejected alice (Postfix db=10.1.2.3)"},
		}})
		c := connFor(t, srv, "none")
		c.Username, c.Password = "alice", "s3cret"
		rep = runTest(c, &emailconn.TestOptions{Restricted: true})
		checkFailure(t, rep, emailconn.StageAuth, "rejected the credentials of alice")
		leaks(t, rep, secret...)
		if !strings.Contains(rep.Sentence, "the server replied 535 5.7.8.") {
			t.Errorf("sentence = %q", rep.Sentence)
		}

		// A refused opportunistic STARTTLS: the skip reason and the
		// warning do not quote the server.
		srv = smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "STARTTLS", Reply: "454 4.7.0 TLS not available on internal-relay-7.corp.local"}}})
		rep = runTest(connFor(t, srv, "opportunistic"), &emailconn.TestOptions{Restricted: true})
		if !rep.OK || !strings.Contains(strings.Join(rep.Warnings, " "), "Opportunistic TLS fell back to plaintext: the server refused STARTTLS") {
			t.Errorf("opportunistic: %s", reportJSON(rep))
		}
		leaks(t, rep, secret...)
	})

	t.Run("internal names under a dial policy", func(t *testing.T) {
		// Whether the name does not exist, cannot be resolved now, or
		// resolves to an address the policy refuses: the same report, and
		// neither the resolver's nor the resolved address.
		lookups := map[string]func(context.Context, string) ([]netip.Addr, error){
			"not found": func(_ context.Context, host string) ([]netip.Addr, error) {
				return nil, &net.DNSError{Err: "no such host", Name: host, Server: "10.255.255.53:53", IsNotFound: true}
			},
			"servfail": func(_ context.Context, host string) ([]netip.Addr, error) {
				return nil, &net.DNSError{Err: "server misbehaving", Name: host, Server: "10.255.255.53:53", IsTemporary: true}
			},
			"private": func(context.Context, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
			},
			"metadata": func(context.Context, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
			},
			"loopback": func(context.Context, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			},
		}
		c := emailconn.Connection{Name: "tenant", MailServer: "intranet.corp.example:25", ConnectTimeout: time.Second, SendTimeout: time.Second}
		var first, firstName string
		for name, lookup := range lookups {
			rep := runTest(c, &emailconn.TestOptions{Restricted: true, Options: emailconn.WithLookup(&emailconn.Options{DialPolicy: &emailconn.DialPolicy{}}, lookup)})
			checkFailure(t, rep, emailconn.StageResolve, "Check the spelling of the mail server's name intranet.corp.example: this engine connects only to addresses it is allowed to reach.")
			if !strings.Contains(rep.Sentence, "stopped at the resolve stage: the mail server's name does not resolve to an address this engine may connect to.") {
				t.Errorf("%s: sentence = %q", name, rep.Sentence)
			}
			leaks(t, rep, "10.255.255.53", "10.1.2.3", "169.254", "127.0.0.1", "no such host", "misbehaving")
			if got := outcomes(rep)[emailconn.StageConnect]; got != emailconn.OutcomeNotRun {
				t.Errorf("%s: connect = %s, want not run", name, got)
			}
			if n := normalized(rep); first == "" {
				first, firstName = n, name
			} else if n != first {
				t.Errorf("%s and %s reports differ:\n%s\n%s", name, firstName, n, first)
			}
		}
	})

	t.Run("certificate", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertWrongName})
		rep := runTest(connFor(t, srv, "implicit"), &emailconn.TestOptions{Restricted: true})
		checkFailure(t, rep, emailconn.StageTLS, "The server's certificate is not valid for 127.0.0.1")
		leaks(t, rep, smtptest.WrongName, "smtptest CA")
		if ci := rep.Certificate; ci == nil || ci.Verified || ci.NotAfter.IsZero() || ci.Subject != "" {
			t.Errorf("certificate = %+v", ci)
		}
		ok := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS})
		rep = runTest(connFor(t, ok, "starttls"), &emailconn.TestOptions{Restricted: true})
		if !rep.OK || rep.Certificate == nil || !rep.Certificate.Verified || rep.Server.TLSVersion == "" {
			t.Errorf("verified certificate: %s", reportJSON(rep))
		}
		leaks(t, rep, "smtptest CA", "mail.test")
	})

	t.Run("token endpoint", func(t *testing.T) {
		down := smtptest.RefusedAddr(t)
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}})
		c := connFor(t, srv, "starttls")
		c.AuthType, c.Username, c.OAuth2Config = "oauth2", "robot@contoso.com", "down"
		oc := &emailconn.OAuth2Config{Name: "down", GrantType: "client_credentials", TokenURL: "http://" + down + "/token", ClientID: "app", ClientSecret: "x-secret", Scopes: []string{"s"}}
		rep := runTest(c, &emailconn.TestOptions{OAuth2Config: oc, Restricted: true})
		leaks(t, rep, "dial tcp", "Post ")
		if !strings.Contains(rep.Sentence, "stopped at the OAuth2 token: connection refused.") {
			t.Errorf("sentence = %q", rep.Sentence)
		}
	})

	t.Run("registry names", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		c := connFor(t, srv, "none")
		c.Name = "billing-eu"
		r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}}, allowCA(c, nil))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if rep := r.TestConnection(context.Background(), "billing-e", nil); !strings.Contains(rep.Sentence, "billing-eu") {
			t.Errorf("full: %q, want the suggestion", rep.Sentence)
		}
		rep := r.TestConnection(context.Background(), "billing-e", &emailconn.TestOptions{Restricted: true})
		if strings.Contains(string(reportJSON(rep)), "billing-eu") || rep.OK || !errors.Is(rep.Err, emailconn.ErrNotFound) {
			t.Errorf("restricted: %s", reportJSON(rep))
		}
		if rep := r.TestConnection(context.Background(), "billing-eu", &emailconn.TestOptions{Restricted: true}); !rep.OK {
			t.Errorf("restricted test of an existing connection: %s", reportJSON(rep))
		}
	})
}
