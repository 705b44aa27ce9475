package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The example programs are built once per test binary, from the repository
// root, and run as a user would run them, so that their exit status is
// their own ("go run" exits 1 for any failure).
var (
	examplesMu    sync.Mutex
	examplesBuilt = map[string]string{} // name → binary
	examplesDir   string
)

// repoRoot returns the library's repository root: this module's ../..
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module github.com/emailconn/emailconn\n")) {
		t.Fatalf("%s is not the emailconn repository root (go.mod: %v)", root, err)
	}
	return root
}

// example returns the binary of examples/<name>, building it on first use.
// It skips the test when the program does not exist (yet).
func example(t *testing.T, name string) string {
	t.Helper()
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "examples", name)); err != nil {
		t.Skipf("examples/%s does not exist: %v", name, err)
	}
	examplesMu.Lock()
	defer examplesMu.Unlock()
	if bin, ok := examplesBuilt[name]; ok {
		return bin
	}
	if examplesDir == "" {
		dir, err := os.MkdirTemp("", "emailconn-interop-examples-")
		if err != nil {
			t.Fatal(err)
		}
		examplesDir = dir
	}
	bin := filepath.Join(examplesDir, name)
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./examples/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/%s: %v\n%s", name, err, out)
	}
	examplesBuilt[name] = bin
	return bin
}

// TestMain removes the built example programs.
func TestMain(m *testing.M) {
	code := m.Run()
	if examplesDir != "" {
		_ = os.RemoveAll(examplesDir)
	}
	os.Exit(code)
}

// exampleRun is the outcome of running an example program.
type exampleRun struct {
	code           int
	stdout, stderr string
}

// runExample runs examples/<name> with args from the repository root, with
// the test's environment plus env ("KEY=value", which override), and
// returns its exit status and output.
func runExample(t *testing.T, name string, env []string, args ...string) exampleRun {
	t.Helper()
	bin := example(t, name)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if len(args) > 0 && args[0] == "-config" {
		// The suite's configurations refer to its password variable and
		// CA file, which the engine (here, the operator) allows.
		args = append([]string{"-allow-env", envPassword, "-allow-dir", filepath.Dir(os.Getenv(envCAFile))}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running examples/%s: %v", name, err)
	}
	return exampleRun{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// jsonConn is one connection (or the grid settings) of a configuration
// file, in the JSON form the example programs read.
type jsonConn map[string]any

// connJSON returns the configuration-file form of a connection to an
// instance. Its password is a reference to EMAILCONN_INTEROP_PASSWORD, so
// the file holds no secret and a test can run a program with a wrong
// password by overriding the variable.
func (s *suite) connJSON(name, inst, tlsMode string) jsonConn {
	c := jsonConn{
		"mailServer":            smtpAddr(inst),
		"tlsMode":               tlsMode,
		"smtpConnectionTimeout": 10,
		"smtpTimeout":           30,
		"userName":              s.user,
		"password":              "env:" + envPassword,
		"from":                  "Workflow Engine <engine@example.com>",
		"to":                    []string{"ops@example.com"},
	}
	if name != "" {
		c["name"] = name
	}
	if tlsMode == "starttls" || tlsMode == "implicit" {
		c["caFile"] = s.caFile
	}
	return c
}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "engine.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile writes a file in the test's temporary directory.
func writeFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var messageIDLine = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>$`)

// TestSendmailExample runs examples/sendmail as a user would, against
// Mailpit: by connection over STARTTLS (with -v: the transcript must not
// show the password), over implicit TLS, by process through the grid
// settings, with a wrong password, and with TLS required of a server that
// does not offer it; exit status, output and Mailpit's mailbox are checked.
func TestSendmailExample(t *testing.T) {
	s := setup(t)
	cfg := writeConfig(t, map[string]any{
		"connections": []jsonConn{
			func() jsonConn {
				c := s.connJSON("alerts", instSTARTTLS, "starttls")
				c["emailActionsBaseURL"] = "https://approvals.example.com"
				return c
			}(),
			s.connJSON("smtps", instTLS, "implicit"),
			func() jsonConn {
				c := s.connJSON("no-starttls", instPlain, "")
				delete(c, "tlsMode")
				c["enableTLS"] = true
				return c
			}(),
		},
		"grid":      s.connJSON("", instPlain, "none"),
		"processes": map[string]string{"PayrollApproval": "alerts"},
	})
	text := writeFile(t, "body.txt", []byte("Workunit 42 failed.\nGenehmigen: http://engine.internal:8080/actions/approve?wu=42&sig=abc\n"))
	report := make([]byte, 300<<10)
	fillRandom(report, 3)
	attach := writeFile(t, "report.bin", report)
	origin := "http://engine.internal:8080"

	cases := []struct {
		name    string
		inst    string
		env     []string
		args    []string
		code    int
		out     []string // in stdout when code is 0, else in stderr
		stored  bool
		checkFn func(t *testing.T, mp *mailpit, got *message)
	}{
		{
			name: "connection over STARTTLS, verbose", inst: instSTARTTLS,
			args: []string{"-connection", "alerts", "-action-origin", origin, "-to", "Jürgen Groß <juergen@example.com>",
				"-subject", "Workunit 42 failed: Überstunden", "-text", text, "-attach", attach, "-v"},
			out: []string{"accepted by 127.0.0.1:", "TLS: TLS 1.", "AUTH: PLAIN"}, stored: true,
			checkFn: func(t *testing.T, mp *mailpit, got *message) {
				if got.Subject != "Workunit 42 failed: Überstunden" {
					t.Errorf("Mailpit: Subject = %q", got.Subject)
				}
				if want := "Workunit 42 failed.\r\nGenehmigen: https://approvals.example.com/actions/approve?wu=42&sig=abc\r\n"; got.Text != want {
					t.Errorf("Mailpit: Text = %q, want %q", got.Text, want)
				}
				checkAddrs(t, "Mailpit: To", got.To, address{"Jürgen Groß", "juergen@example.com"})
				if len(got.Attachments) != 1 || got.Attachments[0].FileName != "report.bin" {
					t.Fatalf("Mailpit: attachments %+v, want report.bin", got.Attachments)
				}
				if b := mp.part(t, got.ID, got.Attachments[0].PartID); !bytes.Equal(b, report) {
					t.Errorf("Mailpit: report.bin has %d bytes (SHA-256 %s), want the file's %d (%s)", len(b), sha256Hex(b), len(report), sha256Hex(report))
				}
			},
		},
		{
			name: "connection over implicit TLS", inst: instTLS,
			args: []string{"-connection", "smtps", "-action-origin", origin, "-subject", "implicit", "-text", text},
			out:  []string{"TLS: TLS 1.", "AUTH: PLAIN"}, stored: true,
		},
		{
			name: "process without connection uses the grid", inst: instPlain,
			args: []string{"-process", "Unassigned", "-action-origin", origin, "-subject", "grid", "-text", text},
			out:  []string{"grid settings", "accepted by", "AUTH: PLAIN"}, stored: true,
			checkFn: func(t *testing.T, _ *mailpit, got *message) {
				checkAddrs(t, "Mailpit: To", got.To, address{"", "ops@example.com"})
			},
		},
		{
			name: "wrong password", inst: instSTARTTLS, env: []string{envPassword + "=wrong-password-for-sendmail"},
			args: []string{"-connection", "alerts", "-action-origin", origin, "-subject", "x", "-text", text, "-v"},
			code: 1, out: []string{"auth", "535"},
		},
		{
			name: "TLS required, STARTTLS not offered", inst: instPlain,
			args: []string{"-connection", "no-starttls", "-action-origin", origin, "-subject", "x", "-text", text},
			code: 1, out: []string{"STARTTLS"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(tc.inst).reset(t)
			r := runExample(t, "sendmail", tc.env, append([]string{"-config", cfg}, tc.args...)...)
			if r.code != tc.code {
				t.Fatalf("sendmail exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			out := r.stdout
			if tc.code != 0 {
				out = r.stderr
			}
			for _, want := range tc.out {
				if !strings.Contains(out, want) {
					t.Errorf("sendmail output does not contain %q:\n%s", want, out)
				}
			}
			secrets := s.secrets(s.password)
			for _, e := range tc.env {
				if v, ok := strings.CutPrefix(e, envPassword+"="); ok {
					secrets = s.secrets(v)
				}
			}
			for _, sec := range secrets {
				if strings.Contains(r.stdout+r.stderr, sec) {
					t.Errorf("sendmail's output contains the password (or its base64 form)")
				}
			}
			if slices.Contains(tc.args, "-v") && !strings.Contains(r.stderr, "EHLO") {
				t.Errorf("sendmail -v printed no SMTP transcript:\n%s", r.stderr)
			}
			if !tc.stored {
				mp.mustBeEmpty(t)
				return
			}
			m := messageIDLine.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("sendmail printed no Message-ID line:\n%s", r.stdout)
			}
			found := findByMessageID(mp.list(t), m[1])
			if len(found) != 1 {
				t.Fatalf("Mailpit holds %d messages with the Message-ID sendmail printed (%s), want 1", len(found), m[1])
			}
			if tc.checkFn != nil {
				tc.checkFn(t, mp, mp.message(t, found[0].ID))
			}
		})
	}
}
