package emailconn

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func outcomes(rep *TestReport) map[Stage]Outcome {
	m := map[Stage]Outcome{}
	for _, s := range rep.Stages {
		m[s.Stage] = s.Outcome
	}
	return m
}

func TestTestConnectionPasses(t *testing.T) {
	tests := []struct {
		name  string
		srv   smtptest.Options
		mode  TLSMode
		auth  bool
		probe string
		want  map[Stage]Outcome
		say   string
	}{
		{"starttls with auth and probe", smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}}, TLSStartTLS, true, "ops@example.com",
			map[Stage]Outcome{StageResolve: Skipped, StageConnect: Passed, StageTLS: Skipped, StageGreeting: Passed, StageEHLO: Passed, StageSTARTTLS: Passed,
				StageToken: Skipped, StageAuth: Passed, StageMail: Passed, StageRcpt: Passed, StageReset: Passed, StageQuit: Passed},
			"STARTTLS (TLS 1.3), authenticated as alice with PLAIN, and the server accepts mail from engine@example.com to the probe recipient in"},
		{"implicit without probe", smtptest.Options{TLS: smtptest.Implicit, Users: map[string]string{"alice": "s3cret"}}, TLSImplicit, true, "",
			map[Stage]Outcome{StageTLS: Passed, StageGreeting: Passed, StageEHLO: Passed, StageSTARTTLS: Skipped, StageAuth: Passed, StageMail: Skipped, StageQuit: Passed},
			"implicit TLS (TLS 1.3), authenticated as alice with PLAIN in"},
		{"plaintext without auth", smtptest.Options{}, TLSNone, false, "",
			map[Stage]Outcome{StageTLS: Skipped, StageSTARTTLS: Skipped, StageAuth: Skipped, StageQuit: Passed},
			", without TLS in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tt.srv)
			c := connFor(t, srv, tt.mode)
			if tt.auth {
				c.Username, c.Password = "alice", "s3cret"
			}
			rep := TestConnection(context.Background(), c, &TestOptions{ProbeRecipient: tt.probe})
			if !rep.OK || rep.Err != nil {
				t.Fatalf("report not OK: %s", rep.JSON())
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
			if len(rep.Stages) != len(ladder) {
				t.Errorf("%d stages, want %d", len(rep.Stages), len(ladder))
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
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}, MaxMessageBytes: 10 << 20, Mechanisms: []string{"PLAIN", "LOGIN", "CRAM-MD5"}})
	c := connFor(t, srv, TLSStartTLS)
	c.Username, c.Password, c.ActionsBaseURL = "alice", "s3cret", "https://approvals.example.com"
	rep := TestConnection(context.Background(), c, &TestOptions{Options: &Options{ActionOrigin: "http://engine.internal:8080"}})
	if !rep.OK {
		t.Fatalf("%s", rep.JSON())
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
	if err := json.Unmarshal(rep.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"connection", "ok", "sentence", "stages", "server", "certificate", "hints", "warnings", "notProven", "actionLinkPreview", "durationMs"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if strings.Contains(string(rep.JSON()), "s3cret") {
		t.Error("the report contains the password")
	}
}

func TestTestConnectionWarnings(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertExpiresSoon})
	c := connFor(t, srv, TLSImplicit)
	c.ConnectTimeout, c.SendTimeout = 0, 0
	rep := TestConnection(context.Background(), c, nil)
	if !rep.OK {
		t.Fatalf("%s", rep.JSON())
	}
	want := []string{"No timeouts are configured", "Implicit TLS on port", "certificate expires on"}
	if len(rep.Warnings) != len(want) {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	for i, w := range want {
		if i < len(rep.Warnings) && !strings.Contains(rep.Warnings[i], w) {
			t.Errorf("warning %d = %q, want %q", i, rep.Warnings[i], w)
		}
	}

	plain := smtptest.NewServer(t, smtptest.Options{})
	rep = TestConnection(context.Background(), connFor(t, plain, TLSNone), nil)
	if !rep.OK || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "messages travel in plaintext") {
		t.Errorf("plaintext warnings = %q", rep.Warnings)
	}

	// STARTTLS on 465: a warning even though nothing listens there.
	c = Connection{Name: "x", MailServer: "127.0.0.1:465", TLSMode: TLSStartTLS, EnableTLS: true, ConnectTimeout: time.Second, SendTimeout: time.Second}
	rep = TestConnection(context.Background(), c, nil)
	if rep.OK || !strings.Contains(strings.Join(rep.Warnings, " "), "STARTTLS on port 465") {
		t.Errorf("465 warnings = %q", rep.Warnings)
	}
}

// hintCase is a Test Connection that fails with a recognisable cause.
type hintCase struct {
	name  string
	srv   smtptest.Options
	mode  TLSMode
	patch func(*Connection, *TestOptions)
	stage Stage
	hint  string // substring of the first hint
}

func TestTestConnectionHints(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": "s3cret"}
	authReply := func(reply string) smtptest.Options {
		return smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: smtptest.AuthResult, Reply: reply}}}
	}
	probe := func(c *Connection, o *TestOptions) { o.ProbeRecipient = "someone@elsewhere.example" }
	tests := []hintCase{
		{"plaintext to implicit TLS port", smtptest.Options{TLS: smtptest.Implicit}, TLSNone, nil, StageGreeting, "expects implicit TLS"},
		{"TLS to a plaintext port", smtptest.Options{}, TLSImplicit, nil, StageTLS, "does not speak TLS on port"},
		{"STARTTLS not offered", smtptest.Options{}, TLSStartTLS, nil, StageSTARTTLS, "does not offer STARTTLS on port"},
		{"certificate name mismatch", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertWrongName}, TLSStartTLS, nil, StageSTARTTLS, "The certificate is for wrong.example, not 127.0.0.1"},
		{"unknown authority", smtptest.Options{TLS: smtptest.Implicit, Cert: smtptest.CertSelfSigned}, TLSImplicit, nil, StageTLS, "set caFile"},
		{"expired certificate", smtptest.Options{TLS: smtptest.StartTLS, Cert: smtptest.CertExpired}, TLSStartTLS, nil, StageSTARTTLS, "certificate has expired"},
		{"AUTH not offered", smtptest.Options{TLS: smtptest.StartTLS}, TLSStartTLS, func(c *Connection, _ *TestOptions) { c.Username, c.Password = "alice", "s3cret" }, StageAuth, "offers no AUTH"},
		{"mechanism not offered", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Mechanisms: []string{"CRAM-MD5", "GSSAPI"}}, TLSStartTLS, nil, StageAuth, "offers CRAM-MD5 GSSAPI but not PLAIN or LOGIN"},
		{"535 5.7.139", authReply("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully"), TLSStartTLS, nil, StageAuth, "Basic authentication) is disabled for this Microsoft 365 tenant"},
		{"535 5.7.3", authReply("535 5.7.3 Authentication unsuccessful"), TLSStartTLS, nil, StageAuth, "SMTP.SendAsApp"},
		{"534 5.7.9", authReply("534-5.7.9 Application-specific password required.\n534 5.7.9 Learn more at https://support.google.com/mail"), TLSStartTLS, nil, StageAuth, "app password or OAuth2"},
		{"530 5.7.0", smtptest.Options{Users: users, Faults: []smtptest.Fault{{At: "AUTH", Reply: "530 5.7.0 Must issue a STARTTLS command first"}}}, TLSNone, nil, StageAuth, "requires STARTTLS before this command"},
		{"550 5.7.30", authReply("550 5.7.30 Basic authentication is not supported for Client Submission"), TLSStartTLS, nil, StageAuth, "Basic authentication is retired"},
		{"504 5.7.4", authReply("504 5.7.4 Unrecognized authentication type"), TLSStartTLS, nil, StageAuth, "Microsoft 365 accepts only LOGIN and XOAUTH2"},
		{"wrong password", smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "other"}}, TLSStartTLS, nil, StageAuth, "rejected the credentials of alice"},
		{"550 5.7.1 relay denied", smtptest.Options{TLS: smtptest.StartTLS, Users: users, RcptHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Unable to relay"}
		}}, TLSStartTLS, probe, StageRcpt, "refuses to relay"},
		{"550 5.7.60 send-as denied", smtptest.Options{TLS: smtptest.StartTLS, Users: users, MailHook: func(string) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: "Client does not have permissions to send as this sender"}
		}}, TLSStartTLS, probe, StageMail, "may not send as engine@example.com"},
		{"non-SMTP service", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "HTTP/1.1 400 Bad Request\r\n", Close: true}}}, TLSNone, nil, StageGreeting, "does not speak SMTP"},
		{"421 greeting", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Reply: "421 4.3.2 Too many connections", Close: true}}}, TLSNone, nil, StageGreeting, "closed the session (421)"},
		{"greeting timeout", smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}}, TLSNone, nil, StageGreeting, "sent no greeting"},
		{"EHLO timeout", smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "EHLO", Action: smtptest.Silent}}}, TLSStartTLS, nil, StageEHLO, "sent no greeting"},
		{"STARTTLS timeout", smtptest.Options{TLS: smtptest.StartTLS, Faults: []smtptest.Fault{{At: "STARTTLS", Action: smtptest.Silent}}}, TLSStartTLS, nil, StageSTARTTLS, "did not reply in time"},
		{"AUTH timeout", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "AUTH", Action: smtptest.Silent}}}, TLSStartTLS, nil, StageAuth, "did not reply in time"},
		{"MAIL timeout", smtptest.Options{TLS: smtptest.StartTLS, Users: users, Faults: []smtptest.Fault{{At: "MAIL", Action: smtptest.Silent}}}, TLSStartTLS, probe, StageMail, "did not reply in time"},
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
				case StageAuth, StageMail, StageRcpt:
					c.SendTimeout = time.Second
				default:
					c.ConnectTimeout = time.Second
				}
			}
			if tc.srv.Users != nil {
				c.Username, c.Password = "alice", "s3cret"
			}
			opts := &TestOptions{}
			if tc.patch != nil {
				tc.patch(&c, opts)
			}
			checkFailure(t, TestConnection(context.Background(), c, opts), tc.stage, tc.hint)
		})
	}
}

func checkFailure(t *testing.T, rep *TestReport, stage Stage, hint string) {
	t.Helper()
	if rep.OK || rep.Err == nil {
		t.Fatalf("report OK, want a failure at %s: %s", stage, rep.JSON())
	}
	got := outcomes(rep)
	if got[stage] != Failed {
		t.Errorf("stage %s = %s, want failed\n%s", stage, got[stage], rep.JSON())
	}
	after := false
	for _, s := range rep.Stages {
		if after && s.Outcome != NotRun {
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
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	checkFailure(t, TestConnection(context.Background(), Connection{Name: "x", MailServer: addr, ConnectTimeout: time.Second}, nil), StageConnect, "Nothing accepts connections")

	// Host not found, through the resolver seam.
	notFound := &Options{lookup: func(context.Context, string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: "smtp.example.invalid", IsNotFound: true}
	}}
	checkFailure(t, TestConnection(context.Background(), Connection{Name: "x", MailServer: "smtp.example.invalid", ConnectTimeout: time.Second},
		&TestOptions{Options: notFound}), StageResolve, "does not resolve")

	// Connect timeout, through the dialer seam.
	blocking := &Options{dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	start := time.Now()
	checkFailure(t, TestConnection(context.Background(), Connection{Name: "x", MailServer: "127.0.0.1:25", ConnectTimeout: 300 * time.Millisecond},
		&TestOptions{Options: blocking}), StageConnect, "No answer from 127.0.0.1 port 25")
	if d := time.Since(start); d > 300*time.Millisecond+ftSlack {
		t.Errorf("connect timeout reported after %v", d)
	}
}

// TestTestConnectionBoundedWithoutTimeouts: a silent server and a
// connection without timeouts are still reported within the default cap.
func TestTestConnectionBoundedWithoutTimeouts(t *testing.T) {
	defer func(d time.Duration) { defaultTestTimeout = d }(defaultTestTimeout)
	const limit = 300 * time.Millisecond // the cap, shortened for the test
	defaultTestTimeout = limit
	srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.Greeting, Action: smtptest.Silent}}})
	c := connFor(t, srv, TLSNone)
	c.ConnectTimeout, c.SendTimeout = 0, 0
	start := time.Now()
	rep := TestConnection(context.Background(), c, nil)
	if d := time.Since(start); d < limit || d > limit+ftSlack {
		t.Errorf("the test returned after %v, want about the %v cap", d, limit)
	}
	checkFailure(t, rep, StageGreeting, "reached its time limit")
	if !strings.Contains(strings.Join(rep.Warnings, " "), "No timeouts are configured") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
}

func TestTestConnectionInvalid(t *testing.T) {
	rep := TestConnection(context.Background(), Connection{Name: "x", MailServer: "smtp://bad", SendTimeout: -1}, nil)
	if rep.OK || !errors.Is(rep.Err, ErrInvalid) || !strings.Contains(rep.Sentence, "not valid") || !strings.Contains(rep.Sentence, "SendTimeout") {
		t.Errorf("report %s", rep.JSON())
	}
	for _, s := range rep.Stages {
		if s.Outcome != NotRun {
			t.Errorf("stage %s = %s for an invalid connection", s.Stage, s.Outcome)
		}
	}
}

// TestTestConnectionDialPolicy: every blocked class is refused before any
// connection is made, with one and the same error.
func TestTestConnectionDialPolicy(t *testing.T) {
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
		opts := &Options{DialPolicy: &DialPolicy{}, lookup: func(context.Context, string) ([]netip.Addr, error) { return []netip.Addr{ip}, nil }}
		c := Connection{Name: "tenant", MailServer: "mail.tenant.example:" + itoa(port), ConnectTimeout: time.Second}
		rep := TestConnection(context.Background(), c, &TestOptions{Options: opts})
		if !errors.Is(rep.Err, ErrBlocked) {
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
	opts := &Options{DialPolicy: &DialPolicy{AllowLoopback: true}}
	rep := TestConnection(context.Background(), Connection{Name: "x", MailServer: l.Addr().String(), ConnectTimeout: time.Second, SendTimeout: time.Second}, &TestOptions{Options: opts})
	if got := outcomes(rep)[StageConnect]; got != Passed {
		t.Errorf("with AllowLoopback, connect = %s: %v", got, rep.Err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestTestConnectionOAuth2(t *testing.T) {
	te := newTokenEndpoint(t)
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(_, tok string) bool { return tok != "tok-1" }})
	r := oauthRegistry(t, srv, te, GrantClientCredentials, nil)
	rep := r.TestConnection(context.Background(), "m365", nil)
	// The first token is rejected; like a send, the test drops it and
	// authenticates with a fresh one, and says so.
	if !rep.OK || rep.Server.Mechanism != "XOAUTH2" || !strings.Contains(rep.Sentence, "authenticated as robot@contoso.com with XOAUTH2") {
		t.Errorf("test: %s", rep.JSON())
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "rejected the cached OAuth2 access token (535 5.7.8 Username and Password not accepted (token rejected: status 401") {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	if outcomes(rep)[StageToken] != Passed {
		t.Errorf("token stage = %s", outcomes(rep)[StageToken])
	}
	// Every token rejected: the failure names the decoded challenge.
	srv2 := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return false }})
	r2 := oauthRegistry(t, srv2, te, GrantClientCredentials, nil)
	checkFailure(t, r2.TestConnection(context.Background(), "m365", nil), StageAuth, "rejected the OAuth2 access token for robot@contoso.com (status 401, scope https://mail.google.com/")
	if strings.Contains(string(rep.JSON()), "tok-") {
		t.Error("the report contains a token")
	}
	if rep := r.TestConnection(context.Background(), "nope", nil); rep.OK || !errors.Is(rep.Err, ErrInvalid) {
		t.Errorf("unknown connection: %s", rep.JSON())
	}
}

func TestTestConnection530Hints(t *testing.T) {
	// A server that requires AUTH, and a connection without credentials.
	srv := smtptest.NewServer(t, smtptest.Options{RequireAuth: true, Users: map[string]string{"alice": "s3cret"}})
	c := connFor(t, srv, TLSNone)
	checkFailure(t, TestConnection(context.Background(), c, &TestOptions{ProbeRecipient: "ops@example.com"}), StageMail, "requires authentication before sending")
}
