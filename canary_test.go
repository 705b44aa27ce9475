package emailconn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestCanaryNeverLeaks runs a password through every success and failure
// path of the sender with debug logging on, and scans everything a user
// could see: log lines, errors, receipts, formatted values.
func TestCanaryNeverLeaks(t *testing.T) {
	t.Parallel()
	const user, pw = "alice", "canary-Pw-7d1f0e2b"
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen bytes.Buffer

	type path struct {
		name  string
		srv   smtptest.Options
		mode  string
		patch func(*emailconn.Connection)
	}
	good := map[string]string{user: pw}
	wrong := map[string]string{user: "something-else"}
	paths := []path{
		{"plain success", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Mechanisms: []string{"PLAIN"}}, "starttls", nil},
		{"login success", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Mechanisms: []string{"LOGIN"}}, "starttls", nil},
		{"implicit success", smtptest.Options{TLS: smtptest.Implicit, Users: good}, "implicit", nil},
		{"plain rejected", smtptest.Options{TLS: smtptest.StartTLS, Users: wrong, Mechanisms: []string{"PLAIN"}}, "starttls", nil},
		{"login rejected", smtptest.Options{TLS: smtptest.StartTLS, Users: wrong, Mechanisms: []string{"LOGIN"}}, "starttls", nil},
		{"5.7.139", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Faults: []smtptest.Fault{{At: smtptest.AuthResult, Reply: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled"}}}, "starttls", nil},
		{"auth silent", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Faults: []smtptest.Fault{{At: "AUTH", Action: smtptest.Silent}}}, "starttls", nil},
		{"auth drop", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Faults: []smtptest.Fault{{At: smtptest.AuthResult, Action: smtptest.Drop}}}, "starttls", nil},
		{"insecure refused", smtptest.Options{Users: good}, "none", func(c *emailconn.Connection) { c.Name = "fake-remote" }},
		{"no mechanism", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Mechanisms: []string{"CRAM-MD5"}}, "starttls", nil},
		{"tls failure", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Cert: smtptest.CertWrongName}, "starttls", nil},
		{"refused after auth", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "554 5.7.1 no"}}}, "starttls", nil},
		{"unknown delivery", smtptest.Options{TLS: smtptest.StartTLS, Users: good, Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop}}}, "starttls", nil},
	}
	for _, p := range paths {
		srv := smtptest.NewServer(t, p.srv)
		c := connFor(t, srv, p.mode)
		c.Username, c.Password = user, pw
		// Only the silent server needs the send timeout to fire, and how
		// soon does not matter to what is checked: every path must reach
		// its own outcome, which a machine loaded enough to take 300 ms
		// over a TLS handshake under -race turned into a timeout before
		// AUTH (and then nothing of AUTH was checked). connFor's 5 s, and
		// 1 s for the silent server: 3 times the slowest handshake seen.
		if p.name == "auth silent" {
			c.SendTimeout = time.Second
		}
		if p.patch != nil {
			p.patch(&c)
		}
		opts := &emailconn.Options{Logger: logger, Retry: emailconn.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}}
		if c.Name == "fake-remote" { // the server looks like it is not on loopback
			emailconn.WithDial(opts, func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return fakeRemote{conn}, nil
			})
		}
		s, err := emailconn.NewSender(c, allowCA(c, opts))
		if err != nil {
			t.Fatalf("%s: NewSender: %v", p.name, err)
		}
		rc, err := s.Send(context.Background(), basicMessage())
		fmt.Fprintf(&seen, "%s: %v %+v %#v %q\n", p.name, err, err, rc, fmt.Sprint(err))
		if err != nil {
			fmt.Fprintf(&seen, "%s\n", err.Error())
		}
		b, _ := json.Marshal(rc)
		seen.Write(b)
		fmt.Fprintf(&seen, "%v %+v %#v %s\n", c, c, c, s)
		s.Close()
		t.Logf("%s: %v", p.name, err)
		var e *emailconn.Error
		switch {
		case strings.HasSuffix(p.name, " success") && err != nil:
			t.Errorf("%s: Send = %v, want success", p.name, err)
		case p.name == "auth silent" && (!errors.As(err, &e) || e.Stage != emailconn.StageAuth):
			t.Errorf("%s: Send = %v, want a failure at the auth stage", p.name, err)
		}
	}
	out := logs.String() + seen.String()
	if !strings.Contains(logs.String(), `"line":"AUTH PLAIN [redacted]"`) || !strings.Contains(logs.String(), `"line":"[redacted]"`) {
		t.Errorf("the debug transcript does not show redacted AUTH lines; it is:\n%s", logs.String())
	}
	for _, f := range (canaries{pw}).forms(user) {
		if strings.Contains(out, f) {
			t.Errorf("output contains the secret (or its encoding %q)", f)
		}
	}
}
