package emailconn_test

// Helpers shared by the black-box test files of package emailconn_test:
// certificates and connections to internal/smtptest servers, senders,
// messages, canaries, OAuth2 token endpoints and Test Connection runs.
// Helpers used by one file stay in that file.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// caFile writes the test CA to a file for Connection.CAFile.
func caFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, smtptest.SharedCA().PEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// connFor returns a connection to srv in the given TLS mode.
func connFor(t testing.TB, srv *smtptest.Server, mode string) emailconn.Connection {
	return emailconn.Connection{
		Name: "test", MailServer: srv.Addr(), TLSMode: mode,
		EnableTLS: mode == "starttls" || mode == "implicit",
		CAFile:    caFile(t), From: "engine@example.com",
		ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second,
	}
}

// allowCA returns opts (nil for the defaults) with the directory of c's
// CAFile added to Options.References, as an engine lists where its own
// configuration's files are.
func allowCA(c emailconn.Connection, opts *emailconn.Options) *emailconn.Options {
	var o emailconn.Options
	if opts != nil {
		o = *opts
	}
	if c.CAFile != "" {
		o.References.Dirs = append(slices.Clone(o.References.Dirs), filepath.Dir(c.CAFile))
	}
	return &o
}

func mustSender(t testing.TB, c emailconn.Connection, opts *emailconn.Options) *emailconn.Sender {
	t.Helper()
	s, err := emailconn.NewSender(c, allowCA(c, opts))
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Short timeouts for the fault tests: every bound is asserted with slack.
const (
	ftC     = 400 * time.Millisecond // ConnectTimeout
	ftS     = 400 * time.Millisecond // SendTimeout
	ftSlack = time.Second            // generous: the race detector and a loaded machine slow everything
)

func basicMessage() *emailconn.Message {
	return &emailconn.Message{To: []string{"ops@example.com"}, Subject: "Workunit 42 failed", Text: "The workunit failed."}
}

// bigMessage returns a message with an attachment of n bytes, seekable so
// that it can be retried.
func bigMessage(n int) func() *emailconn.Message {
	return func() *emailconn.Message {
		m := basicMessage()
		m.Attachments = []emailconn.Attachment{{Filename: "report.bin", Content: bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), n/16))}}
		return m
	}
}

// fakeRemote makes a loopback connection look like one to 10.0.0.25, to
// test the refusal to send credentials to a non-loopback server.
type fakeRemote struct{ net.Conn }

func (fakeRemote) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.ParseIP("10.0.0.25"), Port: 25} }

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// canaries are secrets that must never appear in any output.
type canaries []string

// forms returns each canary with its encodings as they travel in SASL:
// plain, base64 of the PLAIN triplet, base64 of the bare value (LOGIN).
func (c canaries) forms(user string) []string {
	var out []string
	for _, s := range c {
		out = append(out, s,
			base64.StdEncoding.EncodeToString([]byte(s)),
			base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+s)),
			base64.StdEncoding.EncodeToString([]byte("user="+user+"\x01auth=Bearer "+s+"\x01\x01")),
			base64.StdEncoding.EncodeToString([]byte("n,a="+user+",\x01auth=Bearer "+s+"\x01\x01")),
		)
		// A canary may also appear base64-encoded at any offset: check
		// the three alignments of its middle part.
		for off := range 3 {
			enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", off) + s))
			if len(enc) > 12 {
				out = append(out, enc[4+off*2:len(enc)-4])
			}
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of loggers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tokenEndpoint is an OAuth2 token endpoint for tests: it counts requests,
// issues "tok-N" access tokens, rotates refresh tokens on request, and can
// fail or hang.
type tokenEndpoint struct {
	*httptest.Server
	requests atomic.Int32
	mu       sync.Mutex
	rotate   bool
	expires  int    // expires_in; 0 = 3600
	fail     string // "", "500", "invalid_client", "invalid_grant", "hang"
	refresh  string // the valid refresh token
	secret   string
	prefix   string        // access token prefix
	padding  int           // extra length of access tokens
	hung     chan struct{} // receives when a request starts to hang
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	te := &tokenEndpoint{refresh: "rt-0", secret: "client-secret-canary-Qx9", prefix: "tok-", hung: make(chan struct{}, 1)}
	hang := make(chan struct{})
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := te.requests.Add(1)
		te.mu.Lock()
		fail, rotate := te.fail, te.rotate
		te.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		oauthErr := func(status int, code string) {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS7000215: details for %s"}`, code, code)
		}
		switch fail {
		case "hang":
			select {
			case te.hung <- struct{}{}:
			default:
			}
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		case "500":
			w.WriteHeader(500)
			fmt.Fprint(w, "internal error with body "+te.secret)
			return
		case "invalid_client", "invalid_grant":
			oauthErr(400, fail)
			return
		}
		if err := r.ParseForm(); err != nil {
			oauthErr(400, "invalid_request")
			return
		}
		_, pw, _ := r.BasicAuth()
		if pw == "" {
			pw = r.PostForm.Get("client_secret")
		}
		if pw != te.secret {
			oauthErr(401, "invalid_client")
			return
		}
		resp := map[string]any{"token_type": "Bearer", "access_token": te.prefix + fmt.Sprint(n) + strings.Repeat("x", te.padding), "scope": r.PostForm.Get("scope")}
		te.mu.Lock()
		if te.expires > 0 {
			resp["expires_in"] = te.expires
		} else {
			resp["expires_in"] = 3600
		}
		if r.PostForm.Get("grant_type") == "refresh_token" {
			if r.PostForm.Get("refresh_token") != te.refresh {
				te.mu.Unlock()
				oauthErr(400, "invalid_grant")
				return
			}
			if rotate {
				te.refresh = fmt.Sprintf("rt-%d", n)
				resp["refresh_token"] = te.refresh
			}
		}
		te.mu.Unlock()
		json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(func() {
		close(hang)
		te.Close()
	})
	return te
}

func (te *tokenEndpoint) set(f func(te *tokenEndpoint)) {
	te.mu.Lock()
	defer te.mu.Unlock()
	f(te)
}

// oauthRegistry builds a registry with one OAuth2 connection to srv.
func oauthRegistry(t *testing.T, srv *smtptest.Server, te *tokenEndpoint, grant string, opts *emailconn.Options) *emailconn.Registry {
	t.Helper()
	oc := emailconn.OAuth2Config{Name: "contoso", GrantType: grant, TokenURL: te.URL + "/token", ClientID: "app", ClientSecret: emailconn.Secret(te.secret), Scopes: []string{"https://outlook.office365.com/.default"}}
	if grant == "refresh_token" {
		oc.RefreshToken = "rt-0"
	}
	c := connFor(t, srv, "starttls")
	c.Name, c.AuthType, c.Username, c.OAuth2Config = "m365", "oauth2", "robot@contoso.com", "contoso"
	if opts == nil {
		opts = &emailconn.Options{}
	}
	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}, OAuth2Configs: []emailconn.OAuth2Config{oc}, Processes: map[string]string{"P": "m365"}}, allowCA(c, opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func sendVia(t *testing.T, r *emailconn.Registry) (*emailconn.Receipt, error) {
	t.Helper()
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	return rt.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "s", Text: "t"})
}

// fakeClock is the clock of the token caches of a test: it moves only when
// told. Install it with useTokenClock before building the registry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// useTokenClock makes the token caches built during the test use a fake
// clock. Tests using it must not be parallel.
func useTokenClock(t *testing.T) *fakeClock {
	c := &fakeClock{now: time.Now()}
	emailconn.SetTokenClock(t, c.Now)
	return c
}

// shortTokenTimeout shortens the request timeout of the HTTP clients the
// registry makes for token requests. Tests using it must not be parallel.
func shortTokenTimeout(t *testing.T, d time.Duration) {
	emailconn.SetTokenRequestTimeout(t, d)
}

// oauthRegistryAt builds a registry with one client-credentials OAuth2
// connection to srv, whose token endpoint is tokenURL.
func oauthRegistryAt(t *testing.T, srv *smtptest.Server, tokenURL string, opts *emailconn.Options) *emailconn.Registry {
	t.Helper()
	c := connFor(t, srv, "starttls")
	c.Name, c.AuthType, c.Username, c.OAuth2Config = "m365", "oauth2", "robot@contoso.com", "down"
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections:   []emailconn.Connection{c},
		OAuth2Configs: []emailconn.OAuth2Config{{Name: "down", GrantType: "client_credentials", TokenURL: tokenURL, ClientID: "app", ClientSecret: "s3cret-value"}},
		Processes:     map[string]string{"P": "m365"},
	}, allowCA(c, opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func xoauth2Server(t *testing.T) *smtptest.Server {
	return smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: func(string, string) bool { return true }})
}

// hungEndpoint is a token endpoint that never answers; it counts requests.
func hungEndpoint(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	done := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(func() {
		close(done)
		s.Close()
	})
	return s, &n
}

// runTest runs the package's TestConnection with the directory of c's
// CAFile allowed (see allowCA).
func runTest(c emailconn.Connection, to *emailconn.TestOptions) *emailconn.TestReport {
	var o emailconn.TestOptions
	if to != nil {
		o = *to
	}
	o.Options = allowCA(c, o.Options)
	return c.Test(context.Background(), &o)
}

// reportJSON is the report's JSON, indented, as an engine's UI gets it.
func reportJSON(rep *emailconn.TestReport) []byte {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}
