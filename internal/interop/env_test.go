package interop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// The environment run.sh sets.
const (
	envCAFile   = "EMAILCONN_INTEROP_CA_FILE"
	envUser     = "EMAILCONN_INTEROP_USER"
	envPassword = "EMAILCONN_INTEROP_PASSWORD"
)

// instance names; each has EMAILCONN_INTEROP_<NAME>_SMTP ("127.0.0.1:port")
// and EMAILCONN_INTEROP_<NAME>_HTTP ("http://127.0.0.1:port").
const (
	// plain SMTP, AUTH PLAIN and LOGIN allowed without TLS
	// (--smtp-auth-file --smtp-auth-allow-insecure).
	instPlain = "PLAIN"
	// STARTTLS offered and required before MAIL and AUTH
	// (--smtp-tls-cert/-key --smtp-require-starttls --smtp-auth-file).
	instSTARTTLS = "STARTTLS"
	// implicit TLS only (--smtp-require-tls --smtp-auth-file).
	instTLS = "TLS"
	// the faulty one: like plain, with --enable-chaos (triggers are set
	// through the API), --max-message-size 1 (MiB) and
	// --smtp-allowed-recipients '@example\.com$' (others get 550).
	instChaos = "CHAOS"
)

// suite is the environment of one run of run.sh.
type suite struct {
	caFile   string
	user     string
	password string
}

// setup returns the suite's environment, or skips the test when run.sh did
// not set it.
func setup(t *testing.T) *suite {
	t.Helper()
	s := &suite{caFile: os.Getenv(envCAFile), user: os.Getenv(envUser), password: os.Getenv(envPassword)}
	vars := []string{envCAFile, envUser, envPassword}
	for _, inst := range []string{instPlain, instSTARTTLS, instTLS, instChaos} {
		vars = append(vars, "EMAILCONN_INTEROP_"+inst+"_SMTP", "EMAILCONN_INTEROP_"+inst+"_HTTP")
	}
	var missing []string
	for _, k := range vars {
		if os.Getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	switch {
	case len(missing) == len(vars):
		t.Skip("skipping the Mailpit interop test: EMAILCONN_INTEROP_* are not set; run internal/interop/run.sh, which starts Mailpit and sets them")
	case len(missing) > 0:
		t.Skipf("skipping the Mailpit interop test: %s not set; run internal/interop/run.sh, which starts Mailpit and sets them", strings.Join(missing, ", "))
	}
	return s
}

// smtpAddr returns the SMTP address of an instance.
func smtpAddr(inst string) string { return os.Getenv("EMAILCONN_INTEROP_" + inst + "_SMTP") }

// mailpitOf returns the API client of an instance.
func mailpitOf(inst string) *mailpit {
	return newMailpit(inst, os.Getenv("EMAILCONN_INTEROP_"+inst+"_HTTP"))
}

// conn returns a connection to an instance with the suite's credentials
// and CA, in TLS mode mode.
func (s *suite) conn(inst string, mode string) emailconn.Connection {
	return emailconn.Connection{
		Name:           "interop-" + strings.ToLower(inst),
		MailServer:     smtpAddr(inst),
		TLSMode:        mode,
		ConnectTimeout: 10 * time.Second,
		SendTimeout:    30 * time.Second,
		Username:       s.user,
		Password:       emailconn.Secret(s.password),
		CAFile:         s.caFile,
		From:           "Workflow Engine <engine@example.com>",
		To:             []string{"ops@example.com"},
	}
}

// allowCA returns opts (nil for the defaults) with the directory of c's
// CAFile allowed in Options.References, as an engine lists where its own
// configuration's files are.
func allowCA(c emailconn.Connection, opts *emailconn.Options) *emailconn.Options {
	var o emailconn.Options
	if opts != nil {
		o = *opts
	}
	if c.CAFile != "" {
		o.References.Dirs = append(append([]string(nil), o.References.Dirs...), filepath.Dir(c.CAFile))
	}
	return &o
}

// sender returns a Sender closed when the test ends.
func newSender(t *testing.T, c emailconn.Connection, opts *emailconn.Options) *emailconn.Sender {
	t.Helper()
	s, err := emailconn.NewSender(c, allowCA(c, opts))
	if err != nil {
		t.Fatalf("NewSender(%v): %v", c, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
