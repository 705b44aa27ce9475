package emailconn_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// passwordForms returns the password and its base64 forms at every
// alignment, as they could appear inside a SASL response.
func passwordForms(pw string) []string {
	forms := []string{pw}
	for k := range 3 {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x00", k) + pw))
		if k > 0 {
			enc = enc[4:] // the group holding the prefix
		}
		forms = append(forms, strings.TrimRight(enc[:len(enc)-4], "="))
	}
	return forms
}

// TestIssue11_6_DebugLogPipelinedLogin sends through the real sender to a
// server that answers AUTH LOGIN ahead ("334 VXNlcm5hbWU6\r\n334
// UGFzc3dvcmQ6\r\n235 …" in one write): the debug transcript must not hold
// the password in any form.
func TestIssue11_6_DebugLogPipelinedLogin(t *testing.T) {
	t.Parallel()
	const pw = "canaryPW-7d41c0e2-pipelined"
	for _, tc := range []struct {
		name  string
		srv   smtptest.Options
		mode  string
		mechs string
	}{
		{"issue11-6/starttls", smtptest.Options{TLS: smtptest.StartTLS}, "starttls", "LOGIN"},
		{"issue11-6/implicit", smtptest.Options{TLS: smtptest.Implicit}, "implicit", "LOGIN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.srv
			opts.Users = map[string]string{"alice": pw}
			opts.Mechanisms = []string{tc.mechs}
			opts.PipelinedLogin = true
			opts.RequireAuth = true
			srv := smtptest.NewServer(t, opts)
			c := connFor(t, srv, tc.mode)
			c.Username, c.Password = "alice", pw
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			s := mustSender(t, c, &emailconn.Options{Logger: logger, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			if _, err := s.Send(context.Background(), basicMessage()); err != nil {
				t.Fatalf("Send = %v", err)
			}
			s.Close()
			srv.Close()
			if m := srv.Messages(); len(m) != 1 || m[0].AuthUser != "alice" || m[0].Mechanism != "LOGIN" {
				t.Fatalf("the server got %+v; want one message after LOGIN", m)
			}
			out := logs.String()
			if !strings.Contains(out, "334 UGFzc3dvcmQ6") || !strings.Contains(out, "[redacted]") {
				t.Fatalf("the debug log has no AUTH exchange:\n%s", out)
			}
			for _, f := range passwordForms(pw) {
				if strings.Contains(out, f) {
					t.Errorf("the debug log holds the password as %q:\n%s", f, out)
				}
			}
		})
	}
}
