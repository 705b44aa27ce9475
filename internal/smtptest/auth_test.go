package smtptest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var users = map[string]string{"alice": "right"}

func TestPlain(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Users: users})
	for _, tc := range []struct {
		name string
		a    sasl.Client
		ok   bool
		line string
	}{
		{"ir ok", sasl.NewPlainClient("", "alice", "right"), true, "AUTH PLAIN " + b64("\x00alice\x00right")},
		{"ir wrong", sasl.NewPlainClient("", "alice", "wrong"), false, "AUTH PLAIN " + b64("\x00alice\x00wrong")},
		{"ir authzid", sasl.NewPlainClient("bob", "alice", "right"), false, "AUTH PLAIN " + b64("bob\x00alice\x00right")},
		{"no ir ok", &plainNoIR{"alice", "right"}, true, "AUTH PLAIN"},
		{"no ir wrong", &plainNoIR{"bob", "right"}, false, "AUTH PLAIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Reset()
			c := dial(t, s)
			if !c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") || c.SupportsAuth("XOAUTH2") {
				t.Errorf("mechanisms wrong: %v", s.mechs)
			}
			err := c.Auth(tc.a)
			if tc.ok != (err == nil) {
				t.Fatalf("Auth = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok && smtpCode(err) != 535 {
				t.Errorf("Auth = %v, want 535", err)
			}
			if got := s.Transcript(); len(got) < 2 || got[1] != tc.line {
				t.Errorf("Transcript() = %q, want AUTH line %q", got, tc.line)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	for _, prompts := range [][2]string{{}, {"username:", "password:"}, {"Benutzername", "Passwort"}} {
		for _, ir := range []bool{false, true} {
			for _, pass := range []string{"right", "wrong"} {
				s := NewServer(t, Options{Users: users, LoginPrompts: prompts})
				c := dial(t, s)
				err := c.Auth(&login{user: "alice", pass: pass, ir: ir})
				if (pass == "right") != (err == nil) || (err != nil && smtpCode(err) != 535) {
					t.Errorf("prompts %q ir=%v pass=%s: Auth = %v", prompts, ir, pass, err)
				}
				want := []string{"EHLO localhost", "AUTH LOGIN", b64("alice"), b64(pass)}
				if ir {
					want = []string{"EHLO localhost", "AUTH LOGIN " + b64("alice"), b64(pass)}
				}
				if got := s.Transcript(); len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
					t.Errorf("Transcript() = %q, want prefix %q", got, want)
				}
			}
		}
	}

	// The exact challenges.
	s := NewServer(t, Options{Users: users, LoginPrompts: [2]string{"username:", ""}})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.cmd("AUTH LOGIN", "334 "+b64("username:"))
	r.cmd(b64("alice"), "334 "+b64("Password:"))
	r.cmd(b64("right"), "235 2.7.0")
	r.cmd("AUTH LOGIN", "503 5.5.1") // already authenticated
	r.cmd("MAIL FROM:<a@x>", "250 ")

	// go-sasl's strict LOGIN client fails on lower-case prompts.
	s = NewServer(t, Options{Users: users, LoginPrompts: [2]string{"username:", "password:"}})
	c := dial(t, s)
	if err := c.Auth(sasl.NewLoginClient("alice", "right")); err == nil {
		t.Errorf("go-sasl LOGIN client accepted a lower-case prompt")
	}
}

func TestXOAUTH2(t *testing.T) {
	t.Parallel()
	validate := func(user, tok string) bool { return user == "alice" && tok == "good-token" }
	s := NewServer(t, Options{ValidateToken: validate})
	c := dial(t, s)
	if !c.SupportsAuth("XOAUTH2") || !c.SupportsAuth("OAUTHBEARER") || c.SupportsAuth("PLAIN") {
		t.Errorf("mechanisms = %v", s.mechs)
	}
	payload := "user=alice\x01auth=Bearer good-token\x01\x01"

	for _, noIR := range []bool{false, true} {
		s.Reset()
		c := dial(t, s)
		if err := c.Auth(&xoauth2{user: "alice", token: "good-token", noIR: noIR}); err != nil {
			t.Fatalf("noIR=%v: Auth = %v", noIR, err)
		}
		if err := send(c, "alice@x", []string{"b@x"}, "x\r\n"); err != nil {
			t.Fatal(err)
		}
		want := []string{"EHLO localhost", "AUTH XOAUTH2 " + b64(payload)}
		if noIR {
			want = []string{"EHLO localhost", "AUTH XOAUTH2", b64(payload)}
		}
		if got := s.Transcript(); !slices.Equal(got[:len(want)], want) {
			t.Errorf("Transcript() = %q, want prefix %q", got, want)
		}
		if m := s.Messages()[0]; m.AuthUser != "alice" || m.Mechanism != "XOAUTH2" {
			t.Errorf("Message auth = %q %q", m.AuthUser, m.Mechanism)
		}
	}

	// Rejected token: Google's flow, byte for byte.
	bad := "user=alice\x01auth=Bearer stale\x01\x01"
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.send("AUTH XOAUTH2 " + b64(bad))
	if l := r.expect("334 "); l[0] != "334 "+b64(XOAUTH2FailureJSON) {
		t.Errorf("challenge = %q", l)
	}
	if l := r.cmd("", "535 "); l[0] != "535 5.7.8 Username and Password not accepted" {
		t.Errorf("final = %q", l)
	}
	// Without an initial response: empty 334, payload, then the same flow.
	r.cmd("AUTH XOAUTH2", "334 ")
	r.cmd(b64(bad), "334 "+b64(XOAUTH2FailureJSON))
	r.cmd("", "535 5.7.8")
	r.cmd("AUTH XOAUTH2 "+b64("garbage"), "334 "+b64(`{"status":"400","schemes":"bearer","scope":"https://mail.google.com/"}`))
	r.cmd("*", "501 5.0.0")

	// And what go-smtp's client does with it: empty line, then its stray '*'.
	s.Reset()
	c = dial(t, s)
	err := c.Auth(&xoauth2{user: "alice", token: "stale"})
	if smtpCode(err) != 535 {
		t.Fatalf("Auth = %v, want 535", err)
	}
	c.Noop()
	want := []string{"EHLO localhost", "AUTH XOAUTH2 " + b64(bad), "", "*", "NOOP"}
	if got := s.Transcript(); !slices.Equal(got, want) {
		t.Errorf("Transcript() = %q, want %q", got, want)
	}
}

func TestOAuthBearer(t *testing.T) {
	t.Parallel()
	validate := func(user, tok string) bool { return user == "alice" && tok == "good-token" }
	s := NewServer(t, Options{ValidateToken: validate, Mechanisms: []string{"oauthbearer"}})
	good := &sasl.OAuthBearerOptions{Username: "alice", Token: "good-token", Host: "127.0.0.1", Port: s.Port()}
	c := dial(t, s)
	if c.SupportsAuth("XOAUTH2") || !c.SupportsAuth("OAUTHBEARER") {
		t.Errorf("mechanisms = %v", s.mechs)
	}
	if err := c.Auth(sasl.NewOAuthBearerClient(good)); err != nil {
		t.Fatalf("Auth = %v", err)
	}

	// go-sasl's client answers the error challenge with '*'.
	s.Reset()
	c = dial(t, s)
	err := c.Auth(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "alice", Token: "stale"}))
	var oe *sasl.OAuthBearerError
	if !errors.As(err, &oe) || oe.Status != "invalid_token" || oe.Scope != "https://mail.google.com/" {
		t.Fatalf("Auth = %#v, want *sasl.OAuthBearerError invalid_token", err)
	}
	if got := s.Transcript(); len(got) != 3 || got[2] != "*" {
		t.Errorf("Transcript() = %q", got)
	}

	// RFC 7628 flow with \x01, and without an initial response.
	ir := "n,a=alice,\x01auth=Bearer stale\x01\x01"
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.cmd("AUTH OAUTHBEARER "+b64(ir), "334 "+b64(OAuthBearerFailureJSON))
	r.cmd("AQ==", "535 5.7.8")
	r.cmd("AUTH OAUTHBEARER", "334 ")
	r.cmd(b64(ir), "334 "+b64(OAuthBearerFailureJSON))
	r.cmd("*", "501 5.0.0")
	r.cmd("AUTH OAUTHBEARER "+b64("nonsense"), "334 ")
	r.cmd("", "535 5.7.8") // an empty response must not crash go-sasl's parser
	r.cmd("AUTH OAUTHBEARER "+b64("n,a=alice,\x01auth=Bearer good-token\x01\x01"), "235 ")
	r.cmd("AUTH XOAUTH2 x", "503 5.5.1")
}

func TestAuthMisc(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Users: users, Mechanisms: []string{"PLAIN", "CRAM-MD5"}, RequireAuth: true})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("AUTH PLAIN", "503 5.5.1") // before EHLO
	if l := r.cmd("EHLO x", "250 "); !slices.Contains(l, "250-AUTH PLAIN CRAM-MD5") {
		t.Errorf("EHLO = %q", l)
	}
	r.cmd("MAIL FROM:<a@x>", "530 5.7.0 Authentication required")
	r.cmd("AUTH", "501 5.5.4")
	r.cmd("AUTH LOGIN", "504 5.7.4")
	r.cmd("AUTH CRAM-MD5", "504 5.7.4")
	r.cmd("AUTH PLAIN !!!", "501 5.5.2")
	r.cmd("AUTH PLAIN =", "535 5.7.8")
	r.cmd("AUTH PLAIN", "334 ")
	r.cmd("%%%", "501 5.5.2")
	r.cmd("AUTH PLAIN", "334 ")
	r.cmd("*", "501 5.0.0")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00right"), "235 ")
	r.cmd("MAIL FROM:<a@x>", "250 ")
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00right"), "503 5.5.1")
}

// TestLongAuthLine is the 512-octet rule: the initial response does not fit
// on a 512-octet command line, but it fits as a SASL response.
func TestLongAuthLine(t *testing.T) {
	t.Parallel()
	token := strings.Repeat("t", 700)
	s := NewServer(t, Options{MaxLineLength: 512, ValidateToken: func(u, tok string) bool { return tok == token }})
	c := dial(t, s)
	if err := c.Auth(&xoauth2{user: "alice", token: token, noIR: true}); err != nil {
		t.Fatalf("Auth without initial response = %v", err)
	}
	c = dial(t, s)
	if err := c.Auth(&xoauth2{user: "alice", token: token}); smtpCode(err) != 500 {
		t.Fatalf("Auth with a 1 KB initial response = %v, want 500", err)
	}
}

func TestAuthResultFaults(t *testing.T) {
	t.Parallel()
	for _, reply := range []string{
		"535 5.7.139 Authentication unsuccessful, basic authentication is disabled",
		"535 5.7.3 Authentication unsuccessful",
		"534 5.7.9 Please log in with your web browser",
		"550 5.7.30 Basic authentication is not supported for Client Submission",
		"504 5.7.4 Unrecognized authentication type",
		"454 4.7.0 Temporary authentication failure",
	} {
		s := NewServer(t, Options{Users: users, Faults: []Fault{{At: AuthResult, Reply: reply}}})
		c := dial(t, s)
		err := c.Auth(sasl.NewPlainClient("", "alice", "right"))
		var e *smtp.SMTPError
		if !errors.As(err, &e) || !strings.HasPrefix(reply, fmt.Sprintf("%d %d.%d.%d ", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])) {
			t.Errorf("reply %q: Auth = %#v", reply, err)
		}
		// LOGIN sees the fault only after both challenges.
		c = dial(t, s)
		c.Auth(&login{user: "alice", pass: "right"})
		if got := s.SessionTranscript(2); len(got) < 4 || got[3] != b64("right") {
			t.Errorf("LOGIN transcript = %q", got)
		}
	}

	// A fault at the AUTH command answers before any challenge; Times lets
	// the second attempt through.
	s := NewServer(t, Options{Users: users, Faults: []Fault{{At: "AUTH", Reply: "454 4.7.0 Try later", Times: 1}}})
	c := dial(t, s)
	if err := c.Auth(&login{user: "alice", pass: "right"}); smtpCode(err) != 454 {
		t.Errorf("first Auth = %v, want 454", err)
	}
	c = dial(t, s)
	if err := c.Auth(&login{user: "alice", pass: "right"}); err != nil {
		t.Errorf("second Auth = %v", err)
	}

	// A 2xx fault reply authenticates even wrong credentials.
	s = NewServer(t, Options{Users: users, RequireAuth: true, Faults: []Fault{{At: AuthResult, Reply: "235 2.7.0 OK"}}})
	c = dial(t, s)
	if err := c.Auth(sasl.NewPlainClient("", "alice", "wrong")); err != nil {
		t.Fatalf("Auth = %v", err)
	}
	if err := send(c, "a@x", []string{"b@x"}, "x\r\n"); err != nil {
		t.Fatalf("send after 2xx AuthResult fault: %v", err)
	}
}
