// Command quickstart shows emailconn end to end, offline: it starts a local
// SMTP server (go-smtp's, with STARTTLS and AUTH, on loopback), loads a
// configuration with two Email Connections and grid settings, resolves two
// processes, sends a workunit-failure notification whose approve link is
// rewritten with the connection's Email Actions Base URL, and prints what
// the server received.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
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

	// 2. The engine's configuration: two connections and the grid settings.
	// The password is a reference to an environment variable, as it would
	// be in production.
	os.Setenv("ALERTS_SMTP_PASSWORD", "correct horse battery staple")
	cfg, err := emailconn.LoadConfig(strings.NewReader(fmt.Sprintf(`{
  "connections": [
    {"name": "workunit-alerts", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
     "smtpConnectionTimeout": 10, "smtpTimeout": 30,
     "userName": "alerts@example.com", "password": "env:ALERTS_SMTP_PASSWORD",
     "from": "Workunit Alerts <alerts@example.com>",
     "emailActionsBaseURL": "https://approvals.example.com"},
    {"name": "hr", "mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
     "from": "hr@example.com", "to": ["hr-team@example.com"]}
  ],
  "grid": {"mailServer": %[1]q, "enableTLS": true, "caFile": %[2]q,
           "from": "engine@example.com", "to": ["ops@example.com"]},
  "processes": {"PayrollApproval": "workunit-alerts", "Onboarding": "hr"}
}`, addr, caFile)))
	if err != nil {
		log.Fatal(err)
	}

	// 3. The registry resolves each process to its route. The engine
	// generates action links with its own origin; ActionOrigin tells the
	// library which links those are.
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
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

	// 5. What the server received.
	srv.wait(1)
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

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alerts@example.com" || pass != "correct horse battery staple" {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
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

// newCertificate makes a throwaway CA and a certificate for 127.0.0.1
// signed by it.
func newCertificate() (caPEM []byte, leaf tls.Certificate) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "quickstart CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
