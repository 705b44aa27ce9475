package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestTestconn(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alerts": "pw"}})
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, srv.CAPEM(), 0o600)
	cfg := filepath.Join(dir, "engine.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{
  "connections": [
    {"name": "good", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q, "smtpConnectionTimeout": 5, "smtpTimeout": 5,
     "userName": "alerts", "password": "pw", "from": "alerts@example.com", "emailActionsBaseURL": "https://approvals.example.com"},
    {"name": "wrong-password", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q, "smtpConnectionTimeout": 5, "smtpTimeout": 5,
     "userName": "alerts", "password": "nope"}
  ]
}`, srv.Addr(), ca)), 0o600)

	var out, errOut bytes.Buffer
	if code := run([]string{"-config", cfg, "-allow-dir", dir, "-connection", "good", "-probe-to", "ops@example.com"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	for _, want := range []string{"✓ starttls", "✓ rcpt", "– oauth2 token", "Action links become: https://approvals.example.com/actions/approve", "Connected to " + srv.Addr()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if code := run([]string{"-config", cfg, "-allow-dir", dir, "-connection", "wrong-password", "-json"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var rep map[string]any
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep["ok"] != false || !strings.Contains(rep["sentence"].(string), "stopped at authentication") {
		t.Errorf("JSON report %v (%v)", rep, err)
	}

	// -restricted: the address dialled and the certificate's names are
	// left out.
	out.Reset()
	if code := run([]string{"-config", cfg, "-allow-dir", dir, "-connection", "good", "-json", "-restricted"}, &out, &errOut); code != 0 {
		t.Fatalf("restricted: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	rep = nil
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep["ok"] != true || strings.Contains(out.String(), "mail.test") || strings.Contains(out.String(), `"address"`) {
		t.Errorf("restricted JSON report %s (%v)", out.String(), err)
	}

	for _, args := range [][]string{{}, {"-config", cfg}, {"-config", cfg, "-allow-dir", dir, "-connection", "nope"}, {"-config", "/nonexistent", "-connection", "x"}} {
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}

// TestIssue11_01_CAFileNeedsAllowDir checks that the configuration's caFile
// is only read from a directory -allow-dir lists, and that the refusal
// names the flag.
func TestIssue11_01_CAFileNeedsAllowDir(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "engine.json")
	os.WriteFile(cfg, []byte(`{"connections": [{"name": "c", "mailServer": "127.0.0.1:1", "caFile": "/etc/passwd"}]}`), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"-config", cfg, "-allow-dir", dir, "-connection", "c"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, errOut.String())
	}
	for _, want := range []string{"connections[0].caFile", "is not allowed", "-allow-dir"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut.String())
		}
	}
}
