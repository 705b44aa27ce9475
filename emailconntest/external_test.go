package emailconntest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// engineTest is the unit test of an engine in a module of its own: it can
// import emailconntest (and nothing under internal/), and needs no CA file.
// It is the test README.md's "Testing your engine" shows.
const engineTest = `package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

func TestApprovalNotification(t *testing.T) {
	srv := emailconntest.NewServer(&emailconntest.Options{
		TLS: emailconn.TLSStartTLS, Username: "alerts", Password: "s3cret",
	})
	defer srv.Close()

	conn := srv.Connection("workunit-alerts") // STARTTLS, trusts the server's CA, alerts / s3cret
	conn.From = "alerts@example.com"
	conn.ActionsBaseURL = "https://approvals.example.com"
	reg, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{conn},
		Processes:   map[string]string{"PayrollApproval": "workunit-alerts"},
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	// What the engine does when a workunit waits for approval.
	rt, err := reg.Resolve("PayrollApproval", "approver@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Send(context.Background(), &emailconn.Message{
		Subject:     "Workunit 42: approval needed",
		Text:        "Approve: http://engine.internal:8080/actions/approve?wu=42",
		HTML:        ` + "`" + `<a href="http://engine.internal:8080/actions/approve?wu=42">Approve</a>` + "`" + `,
		Attachments: []emailconn.Attachment{{Filename: "payroll.csv", Content: strings.NewReader("name,amount\nada,42\n")}},
	})
	if err != nil {
		t.Fatal(err)
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("the server received %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "approver@example.com" {
		t.Errorf("recipients %q, want the node's approver", m.To)
	}
	if m.Subject != "Workunit 42: approval needed" {
		t.Errorf("Subject = %q", m.Subject)
	}
	const link = "https://approvals.example.com/actions/approve?wu=42"
	if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, ` + "`" + `href="` + "`" + `+link) {
		t.Errorf("the approve link is not rewritten:\n%s\n%s", m.Text, m.HTML)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Filename != "payroll.csv" ||
		string(m.Attachments[0].Content) != "name,amount\nada,42\n" {
		t.Errorf("attachments %+v", m.Attachments)
	}

	// Trust came from code: no CA file.
	if conn.CAFile != "" || conn.RootCAs == nil {
		t.Errorf("CAFile %q, RootCAs set %v", conn.CAFile, conn.RootCAs != nil)
	}
	if entries, _ := os.ReadDir(os.TempDir()); len(entries) != 0 {
		t.Errorf("files were written to %s: %v", os.TempDir(), entries)
	}
}
`

// TestIssue13_ExternalModule builds a module outside this repository that
// imports emailconntest, as an engine does, and runs its test: a STARTTLS
// server with AUTH, a Registry with an Email Actions Base URL, and
// assertions on the decoded approve link, the recipients and an attachment.
// Its TMPDIR is an empty directory that must stay empty: no CA file.
func TestIssue13_ExternalModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module with the go command")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mod := "module example.com/engine\n\ngo 1.26.0\n\nrequire github.com/emailconn/emailconn v0.0.0\n\n" +
		"replace github.com/emailconn/emailconn => " + root + "\n"
	for name, data := range map[string][]byte{
		"go.mod":         []byte(mod),
		"go.sum":         sum,
		"engine.go":      []byte("// Package engine stands for a workflow engine that sends with emailconn.\npackage engine\n"),
		"engine_test.go": []byte(engineTest),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp, gotmp := t.TempDir(), t.TempDir()
	cmd := exec.Command(gobin, "test", "-count=1", "-v", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off",
		"TMPDIR="+tmp, "GOTMPDIR="+gotmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in a module outside the repository: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestApprovalNotification") {
		t.Fatalf("the engine's test did not run:\n%s", out)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("files were written to the engine test's TMPDIR: %v", entries)
	}
}
