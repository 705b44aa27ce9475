package emailconntest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trustTest is added to the README's engine test: the connection trusts
// the server through RootCAs, and the test wrote no file.
const trustTest = `package engine_test

import (
	"os"
	"testing"

	"github.com/emailconn/emailconn/emailconntest"
)

func TestTrustFromCode(t *testing.T) {
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "implicit"})
	defer srv.Close()
	if c := srv.Connection("x"); c.CAFile != "" || c.RootCAs == nil {
		t.Errorf("CAFile %q, RootCAs set %v; want trust from code", c.CAFile, c.RootCAs != nil)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if entries, _ := os.ReadDir(os.TempDir()); len(entries) != 0 {
		println("files were written to", os.TempDir())
		code = 1
	}
	os.Exit(code)
}
`

// readmeEngineTest returns the Go code of README.md's "Testing your
// engine" section.
func readmeEngineTest(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Testing your engine\n")
	_, code, ok2 := strings.Cut(section, "```go\n")
	code, _, ok3 := strings.Cut(code, "\n```\n")
	if !ok || !ok2 || !ok3 || !strings.Contains(code, "emailconntest.NewServer") {
		t.Fatal("README.md has no Go code in a \"Testing your engine\" section")
	}
	return code + "\n"
}

// TestIssue13_6_ExternalModule builds a module outside this repository that
// imports emailconntest, as an engine does, and runs the engine test of
// README.md in it: a STARTTLS server with AUTH, a Registry with an Email
// Actions Base URL, and assertions on the decoded approve link, the
// recipients and an attachment. Its TMPDIR is an empty directory that must
// stay empty: no CA file.
func TestIssue13_6_ExternalModule(t *testing.T) {
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
		"engine_test.go": []byte(readmeEngineTest(t, root)),
		"trust_test.go":  []byte(trustTest),
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
	if !strings.Contains(string(out), "--- PASS: TestApprovalNotification") || !strings.Contains(string(out), "--- PASS: TestTrustFromCode") {
		t.Fatalf("the engine's test did not run:\n%s", out)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("files were written to the engine test's TMPDIR: %v", entries)
	}
}
