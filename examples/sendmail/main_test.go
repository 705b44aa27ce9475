package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSendmail(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alerts": "pw"},
		RcptHook: func(to string) *smtp.SMTPError {
			if strings.HasPrefix(to, "nouser@") {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			}
			return nil
		}})
	ca := writeFile(t, "ca.pem", string(srv.CAPEM()))
	cfg := writeFile(t, "engine.json", fmt.Sprintf(`{
  "connections": [{"name": "alerts", "mailServer": %q, "enableTLS": true, "caFile": %q,
    "userName": "alerts", "password": "pw", "from": "alerts@example.com",
    "emailActionsBaseURL": "https://approvals.example.com"}],
  "grid": {"mailServer": %q, "enableTLS": true, "caFile": %q, "from": "engine@example.com", "to": ["ops@example.com"]},
  "processes": {"Payroll": "alerts"}
}`, srv.Addr(), ca, srv.Addr(), ca))
	text := writeFile(t, "body.txt", "Approve: http://engine:8080/approve?wu=1\n")
	attach := writeFile(t, "report.csv", "a,b\n1,2\n")

	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout (0) or stderr (else)
	}{
		{"by connection", []string{"-config", cfg, "-connection", "alerts", "-action-origin", "http://engine:8080", "-to", "ops@example.com", "-subject", "Workunit 1 failed", "-text", text, "-attach", attach}, 0, "accepted by"},
		{"by process to the grid", []string{"-config", cfg, "-process", "Unassigned", "-action-origin", "http://engine:8080", "-subject", "x", "-text", text}, 0, "grid settings"},
		{"missing config", []string{"-connection", "alerts"}, 2, "-config is required"},
		{"both targets", []string{"-config", cfg, "-connection", "a", "-process", "b"}, 2, "exactly one"},
		{"unknown connection", []string{"-config", cfg, "-connection", "alrets", "-action-origin", "http://engine:8080", "-to", "a@example.com"}, 2, `did you mean "alerts"`},
		{"bad recipient", []string{"-config", cfg, "-connection", "alerts", "-action-origin", "http://engine:8080", "-to", "a@example.com> RET=FULL"}, 2, "To[0]"},
		{"no action origin", []string{"-config", cfg, "-connection", "alerts", "-to", "a@example.com", "-text", text}, 2, "set -action-origin"},
		{"issue10-7/grid needs no action origin", []string{"-config", cfg, "-allow-dir", filepath.Dir(ca), "-process", "Unassigned", "-subject", "x", "-text", text}, 0, "grid settings"},
		{"issue11-1/caFile needs -allow-dir", []string{"-config", cfg, "-connection", "alerts", "-to", "a@example.com"}, 2, "-allow-dir"},
		{"refused", []string{"-config", cfg, "-connection", "alerts", "-action-origin", "http://engine:8080", "-to", "nouser@example.com"}, 1, "550"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := tt.args
			if len(args) > 2 && !strings.HasPrefix(tt.name, "issue11-1") { // the engine allows its CA file
				args = append([]string{"-allow-dir", filepath.Dir(ca)}, args...)
			}
			code := run(args, &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout.String(), stderr.String())
			}
			got := stdout.String()
			if tt.code != 0 {
				got = stderr.String()
			}
			if !strings.Contains(got, tt.out) {
				t.Errorf("output %q does not contain %q", got, tt.out)
			}
		})
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("server got %d messages, want 3", len(msgs))
	}
	if !strings.Contains(string(msgs[0].Data), "https://approvals.example.com/approve?wu=3D1") || !strings.Contains(string(msgs[0].Data), "report.csv") {
		t.Errorf("message 1 lacks the rewritten link or the attachment:\n%s", msgs[0].Data)
	}
}
