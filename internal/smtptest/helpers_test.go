package smtptest

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"
)

// testParallel is the number of parallel tests run at once unless
// -test.parallel is given: these tests wait on delays and timeouts, not
// the CPU, so they run more at once than the default GOMAXPROCS.
const testParallel = 8

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" || f.Name == "test.fuzz" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(testParallel)); err != nil {
			fmt.Fprintln(os.Stderr, "smtptest: TestMain:", err)
			os.Exit(2)
		}
	}
	goleak.VerifyTestMain(m)
}

// timeout bounds every wait in these tests so that a bug fails, not hangs.
const timeout = 15 * time.Second

// dial connects a go-smtp client to a plaintext (or StartTLS) server without
// starting TLS.
func dial(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), timeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	t.Cleanup(func() { c.Close() })
	return c
}

// dialStartTLS connects and runs STARTTLS with the server's client config,
// forcing the handshake with EHLO.
func dialStartTLS(t *testing.T, s *Server) *smtp.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), timeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c, err := smtp.NewClientStartTLS(conn, s.ClientTLSConfig())
	if err != nil {
		conn.Close()
		t.Fatalf("NewClientStartTLS: %v", err)
	}
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("localhost"); err != nil {
		t.Fatalf("Hello after STARTTLS: %v", err)
	}
	return c
}

// dialTLS connects to an Implicit server.
func dialTLS(t *testing.T, s *Server, cfg *tls.Config) (*smtp.Client, error) {
	t.Helper()
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: cfg}
	conn, err := d.Dial("tcp", s.Addr())
	if err != nil {
		return nil, err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout = timeout
	c.SubmissionTimeout = timeout
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// send sends one message over c.
func send(c *smtp.Client, from string, to []string, body string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func smtpCode(err error) int {
	var e *smtp.SMTPError
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// raw is a byte-level client.
type raw struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(timeout))
	return &raw{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (r *raw) send(line string) {
	r.t.Helper()
	if _, err := io.WriteString(r.conn, line+"\r\n"); err != nil {
		r.t.Fatalf("send %q: %v", line, err)
	}
}

// reply reads one (possibly multi-line) reply and returns its lines with
// CRLF stripped.
func (r *raw) reply() ([]string, error) {
	var lines []string
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return lines, nil
		}
	}
}

// expect reads a reply and fails unless its last line starts with prefix.
func (r *raw) expect(prefix string) []string {
	r.t.Helper()
	lines, err := r.reply()
	if err != nil {
		r.t.Fatalf("reading reply (want %q): %v (got %q)", prefix, err, lines)
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, prefix) {
		r.t.Fatalf("reply = %q, want prefix %q", lines, prefix)
	}
	return lines
}

// cmd sends a line and expects a reply starting with prefix.
func (r *raw) cmd(line, prefix string) []string {
	r.t.Helper()
	r.send(line)
	return r.expect(prefix)
}

// expectEOF fails unless the server closes the connection cleanly, with a
// FIN and not a reset (after any remaining replies, which are returned).
func (r *raw) expectEOF() string {
	r.t.Helper()
	rest, err := io.ReadAll(r.r)
	if err != nil {
		r.t.Fatalf("waiting for close: %v (read %q)", err, rest)
	}
	return string(rest)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// xoauth2 is a minimal XOAUTH2 client: it answers any challenge with the
// payload (when there was no initial response) or an empty response.
type xoauth2 struct {
	user, token string
	noIR        bool
	sent        bool
}

func (a *xoauth2) payload() []byte {
	return []byte("user=" + a.user + "\x01auth=Bearer " + a.token + "\x01\x01")
}

func (a *xoauth2) Start() (string, []byte, error) {
	if a.noIR {
		return "XOAUTH2", nil, nil
	}
	a.sent = true
	return "XOAUTH2", a.payload(), nil
}

func (a *xoauth2) Next(challenge []byte) ([]byte, error) {
	if !a.sent {
		a.sent = true
		return a.payload(), nil
	}
	return []byte{}, nil
}

// login is a LOGIN client that ignores the prompts' wording: it answers
// the first challenge with the user name (unless it sent it as the initial
// response) and the next with the password.
type login struct {
	user, pass string
	ir         bool
	sentUser   bool
}

func (a *login) Start() (string, []byte, error) {
	if a.ir {
		a.sentUser = true
		return "LOGIN", []byte(a.user), nil
	}
	return "LOGIN", nil, nil
}

func (a *login) Next([]byte) ([]byte, error) {
	if !a.sentUser {
		a.sentUser = true
		return []byte(a.user), nil
	}
	return []byte(a.pass), nil
}

// plainNoIR is PLAIN without an initial response.
type plainNoIR struct{ user, pass string }

func (a *plainNoIR) Start() (string, []byte, error) { return "PLAIN", nil, nil }
func (a *plainNoIR) Next([]byte) ([]byte, error) {
	return []byte("\x00" + a.user + "\x00" + a.pass), nil
}

var (
	_ sasl.Client = (*xoauth2)(nil)
	_ sasl.Client = (*login)(nil)
	_ sasl.Client = (*plainNoIR)(nil)
)

func itoa(n int) string { return strconv.Itoa(n) }
