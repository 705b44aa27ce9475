package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// Env is what every benchmark sends to: a plaintext sink, a STARTTLS+AUTH
// sink, the CA that signed the latter's certificate (also as a file, for
// emailconn's CAFile) and an OAuth2 token endpoint.
type Env struct {
	PKI    *pki
	CAFile string
	Plain  *Sink // no TLS, no AUTH
	TLS    *Sink // STARTTLS, AUTH PLAIN and XOAUTH2

	TokenURL      string
	Token         string
	TokenRequests atomic.Int64

	dir   string
	token *httptest.Server
}

var (
	envOnce sync.Once
	envVal  *Env
	envErr  error
)

// Setup starts the shared fixtures once per process. It points
// SSL_CERT_FILE at the bench CA, so that net/smtp.SendMail, which cannot be
// given roots, verifies the STARTTLS sink like any public server; it must
// run before anything in the process loads the system roots.
func Setup() (*Env, error) {
	envOnce.Do(func() { envVal, envErr = setup() })
	return envVal, envErr
}

func setup() (*Env, error) {
	p := newPKI()
	dir, err := os.MkdirTemp("", "emailconn-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{PKI: p, dir: dir, CAFile: filepath.Join(dir, "ca.pem")}
	if err := os.WriteFile(e.CAFile, p.caPEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.Setenv("SSL_CERT_FILE", e.CAFile); err != nil {
		return nil, err
	}
	// A JWT-sized access token (Microsoft's are 1.5–2.5 KB): its XOAUTH2
	// initial response does not fit a 512-octet AUTH line.
	e.Token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + strings.Repeat("QmVuY2hUb2tlbg", 100)
	e.token = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.TokenRequests.Add(1)
		if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "client_credentials" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, e.Token)
	}))
	e.TokenURL = e.token.URL + "/token"
	if e.Plain, err = startSink(nil, e.Token); err != nil {
		return nil, err
	}
	if e.TLS, err = startSink(p, e.Token); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops the servers and removes the CA file.
func (e *Env) Close() {
	e.Plain.Close()
	e.TLS.Close()
	e.token.Close()
	if latencyProxy != nil {
		latencyProxy.Close()
	}
	os.RemoveAll(e.dir)
}

// sink returns the sink of a variant.
func (e *Env) sink(secure bool) *Sink {
	if secure {
		return e.TLS
	}
	return e.Plain
}
