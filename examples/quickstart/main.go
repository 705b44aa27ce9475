// Command quickstart shows emailconn end to end, offline: it starts a local
// SMTP server (go-smtp's, with STARTTLS and AUTH, on loopback) and a local
// OAuth2 token endpoint, loads a configuration with two Email Connections —
// one with Basic auth, one with OAuth2 — and grid settings, resolves three
// processes, sends a workunit-failure notification whose approve link is
// rewritten with the connection's Email Actions Base URL, sends an
// onboarding notice through the OAuth2 connection, and prints what the
// server received.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/testcert"
)

func main() {
	log.SetFlags(0)
	dir, err := os.MkdirTemp("", "emailconn-quickstart")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// 1. A local mail server: STARTTLS with a certificate from a throwaway
	// CA, AUTH PLAIN for alerts@example.com.
	caPEM, cert := newCertificate()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		log.Fatal(err)
	}
	srv, addr := startServer(cert)
	defer srv.Close()
	idp := startTokenEndpoint()
	defer idp.Close()

	// 2. The engine's configuration: two connections and the grid settings.
	// The password is a reference to an environment variable, as it would
	// be in production.
	os.Setenv("ALERTS_SMTP_PASSWORD", "correct horse battery staple")
	os.Setenv("IDP_CLIENT_SECRET", "engine-client-secret")
	cfg, err := emailconn.LoadConfig(strings.NewReader(fmt.Sprintf(`{
  "connections": [
    {"name": "workunit-alerts", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
     "smtpConnectionTimeout": 10, "smtpTimeout": 30,
     "userName": "alerts@example.com", "password": "env:ALERTS_SMTP_PASSWORD",
     "from": "Workunit Alerts <alerts@example.com>",
     "emailActionsBaseURL": "https://approvals.example.com"},
    {"name": "hr", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
     "authType": "oauth2", "userName": "hr@example.com", "oauth2Configuration": "local-idp",
     "from": "hr@example.com", "to": ["hr-team@example.com"]}
  ],
  "oauth2Configurations": [
    {"name": "local-idp", "grantType": "client_credentials", "tokenURL": %[3]q,
     "clientID": "engine", "clientSecret": "env:IDP_CLIENT_SECRET", "scopes": ["smtp.send"]}
  ],
  "grid": {"mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
           "from": "engine@example.com", "to": ["ops@example.com"]},
  "processes": {"PayrollApproval": "workunit-alerts", "Onboarding": "hr"}
}`, addr, caFile, idp.URL+"/token")))
	if err != nil {
		log.Fatal(err)
	}

	// 3. The registry resolves each process to its route. The engine
	// generates action links with its own origin; ActionOrigin tells the
	// library which links those are. This is the engine's own file, so it
	// may refer to the engine's variables and files: References lists which
	// (configuration entered by users gets none).
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{
		ActionOrigin: "http://engine.internal:8080",
		References:   emailconn.References{Env: []string{"ALERTS_SMTP_PASSWORD", "IDP_CLIENT_SECRET"}, Dirs: []string{dir}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	for _, p := range []string{"PayrollApproval", "Onboarding", "NightlyBatch"} {
		rt, err := reg.Resolve(p)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(rt)
	}

	// 4. A workunit failed: notify the approver named on the User Action
	// node, with an approve link.
	rt, err := reg.Resolve("PayrollApproval", "approver@example.com")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	approve := "http://engine.internal:8080/actions/approve?wu=4711&sig=Zm9v"
	receipt, err := rt.Send(ctx, &emailconn.Message{
		Subject: "Workunit 4711 failed: approval needed",
		Text:    "Workunit 4711 (PayrollApproval) failed at step Calculate.\nApprove the retry: " + approve + "\n",
		HTML:    `<p>Workunit 4711 (PayrollApproval) failed at step <b>Calculate</b>.</p><p><a href="` + approve + `">Approve the retry</a></p>`,
		Headers: map[string]string{"X-Workunit": "4711"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("\nsent %s over %s with %s: %s\n", receipt.MessageID, receipt.TLSVersion, receipt.Mechanism, receipt.Reply)

	// 5. Onboarding goes through the OAuth2 connection: the token comes from
	// the token endpoint, is cached, and is sent with XOAUTH2.
	rt, err = reg.Resolve("Onboarding")
	if err != nil {
		log.Fatal(err)
	}
	receipt, err = rt.Send(ctx, &emailconn.Message{Subject: "New hire starts Monday", Text: "Prepare a laptop for J. Doe."})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sent %s over %s with %s (token requests so far: %d)\n", receipt.MessageID, receipt.TLSVersion, receipt.Mechanism, idp.requests())

	// 6. What the server received.
	srv.wait(2)
	m := srv.messages()[0]
	fmt.Printf("\nserver received from %s for %v (TLS %v, AUTH as %s):\n", m.from, m.to, m.tls, m.user)
	mr, err := mail.CreateReader(strings.NewReader(m.data))
	if err != nil {
		log.Fatal(err)
	}
	subject, _ := mr.Header.Subject()
	from, _ := mr.Header.AddressList("From")
	fmt.Printf("  From: %v\n  Subject: %s\n", from, subject)
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if h, ok := p.Header.(*mail.InlineHeader); ok {
			if ct, _, _ := h.ContentType(); ct == "text/plain" {
				body, _ := io.ReadAll(p.Body)
				fmt.Printf("  text/plain:\n    %s\n", strings.ReplaceAll(strings.TrimSpace(string(body)), "\n", "\n    "))
			}
		}
	}
}

// server is a minimal go-smtp backend that keeps what it receives.
type server struct {
	*smtp.Server
	mu   sync.Mutex
	msgs []received
	got  chan struct{}
}

type received struct {
	from, user string
	to         []string
	data       string
	tls        bool
}

func startServer(cert tls.Certificate) (*server, string) {
	s := &server{got: make(chan struct{}, 16)}
	s.Server = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, tls: isTLS}, nil
	}))
	s.Domain = "localhost"
	s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			log.Print(err)
		}
	}()
	return s, l.Addr().String()
}

func (s *server) wait(n int) {
	for range n {
		<-s.got
	}
}

func (s *server) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type session struct {
	srv  *server
	msg  received
	tls  bool
	user string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, "XOAUTH2"} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech == "XOAUTH2" {
		return &xoauth2Server{session: s}, nil
	}
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts@example.com" || pass != "correct horse battery staple" {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}

// xoauth2Server accepts "user=…\x01auth=Bearer <token>\x01\x01" with a token
// the local token endpoint issued. (go-sasl has no XOAUTH2 server.)
type xoauth2Server struct{ session *session }

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if response == nil {
		return []byte{}, false, nil // ask for the initial response
	}
	var user, token string
	for _, f := range strings.Split(string(response), "\x01") {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			token = v
		}
	}
	if !strings.HasPrefix(token, "local-access-token-") {
		return nil, true, errors.New("invalid token")
	}
	x.session.user = user
	return nil, true, nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.msg = received{from: from, tls: s.tls, user: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = string(b)
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, s.msg)
	s.srv.mu.Unlock()
	s.srv.got <- struct{}{}
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// tokenEndpoint is a local OAuth2 token endpoint (client credentials).
type tokenEndpoint struct {
	*http.Server
	URL string
	n   atomic.Int32
}

func (t *tokenEndpoint) requests() int32 { return t.n.Load() }

func startTokenEndpoint() *tokenEndpoint {
	t := &tokenEndpoint{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	t.URL = "http://" + l.Addr().String()
	t.Server = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, secret, _ := r.BasicAuth()
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" || secret != "engine-client-secret" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		n := t.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"local-access-token-%d","token_type":"Bearer","expires_in":3600}`, n)
	})}
	go t.Serve(l)
	return t
}

// newCertificate makes a throwaway CA and a certificate for 127.0.0.1 and
// localhost signed by it, valid for a day, with the repository's test
// certificate generator. A real deployment has its mail server's
// certificate from a real CA, or its private CA's file as caFile.
func newCertificate() (caPEM []byte, leaf tls.Certificate) {
	ca := testcert.NewCA("quickstart CA")
	now := time.Now()
	return ca.PEM(), ca.Leaf([]string{"127.0.0.1", "localhost"}, now.Add(-time.Hour), now.Add(24*time.Hour))
}
