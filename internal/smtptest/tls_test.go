package smtptest

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func TestStartTLS(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{TLS: StartTLS, RequireTLSForAuth: true, Users: map[string]string{"alice": "pw"}})
	if s.CAPEM() == nil || s.CAPool() == nil {
		t.Fatal("no CA in StartTLS mode")
	}

	// Before TLS: STARTTLS offered, AUTH hidden and refused.
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	ehlo := r.cmd("EHLO x", "250 ")
	if !slices.Contains(ehlo, "250-STARTTLS") || strings.Contains(strings.Join(ehlo, "\n"), "AUTH") {
		t.Errorf("plaintext EHLO = %q", ehlo)
	}
	r.cmd("AUTH PLAIN "+b64("\x00alice\x00pw"), "538 5.7.11")
	r.cmd("STARTTLS now", "501 ")

	c := dialStartTLS(t, s)
	state, ok := c.TLSConnectionState()
	if !ok || !state.HandshakeComplete || state.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state = %+v, %v", state, ok)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Errorf("STARTTLS advertised after TLS")
	}
	if !c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") {
		t.Errorf("AUTH PLAIN LOGIN not advertised after TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", "alice", "pw")); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := send(c, "alice@x", []string{"b@x"}, "hi\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Quit()

	m := s.Messages()[0]
	if !m.TLS || m.AuthUser != "alice" || m.Mechanism != "PLAIN" {
		t.Errorf("Message = %+v", m)
	}
	want := []string{
		"EHLO localhost",
		"STARTTLS",
		"EHLO localhost",
		"AUTH PLAIN " + b64("\x00alice\x00pw"),
		"MAIL FROM:<alice@x> BODY=8BITMIME",
		"RCPT TO:<b@x>",
		"DATA",
		"<DATA 4 bytes>",
		"QUIT",
	}
	if got := s.SessionTranscript(2); !slices.Equal(got, want) {
		t.Errorf("SessionTranscript(2) = %q, want %q", got, want)
	}
	r.cmd("STARTTLS", "220 ") // the raw session can still upgrade
}

func TestStartTLSForgetsState(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{TLS: StartTLS})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.cmd("MAIL FROM:<a@x>", "250 ")
	// Pipelined plaintext after STARTTLS must be discarded, not executed.
	r.send("STARTTLS\r\nRCPT TO:<injected@x>")
	r.expect("220 ")
	tc := tls.Client(r.conn, s.ClientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	r2 := &raw{t: t, conn: tc, r: bufio.NewReader(tc)}
	r2.cmd("RCPT TO:<b@x>", "503 5.5.1") // no MAIL, no EHLO after TLS
	r2.cmd("MAIL FROM:<a@x>", "503 5.5.1")
	r2.cmd("EHLO x", "250 ")
	r2.cmd("STARTTLS", "503 5.5.1")
	if got := s.Transcript(); slices.Contains(got, "RCPT TO:<injected@x>") {
		t.Errorf("injected plaintext was read as a command: %q", got)
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{TLS: Implicit})
	c, err := dialTLS(t, s, s.ClientTLSConfig())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Errorf("implicit server advertises STARTTLS")
	}
	if err := send(c, "a@x", []string{"b@x"}, "hi\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	c.Quit()
	if m := s.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("Messages() = %+v", m)
	}
	// A plaintext client sees nothing (no greeting) until it gives up.
	r := dialRaw(t, s.Addr())
	r.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := r.reply(); !isTimeout(err) {
		t.Errorf("plaintext client on implicit port: %v, want timeout", err)
	}
}

func TestCertKinds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind  CertKind
		check func(error) bool
	}{
		{CertGood, func(err error) bool { return err == nil }},
		{CertExpiresSoon, func(err error) bool { return err == nil }},
		{CertWrongName, func(err error) bool {
			var e x509.HostnameError
			return errors.As(err, &e)
		}},
		{CertExpired, func(err error) bool {
			var e x509.CertificateInvalidError
			return errors.As(err, &e) && e.Reason == x509.Expired
		}},
		{CertSelfSigned, func(err error) bool {
			var e x509.UnknownAuthorityError
			return errors.As(err, &e)
		}},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			for _, mode := range []Mode{StartTLS, Implicit} {
				s := NewServer(t, Options{TLS: mode, Cert: tc.kind})
				for _, name := range []string{"127.0.0.1", "localhost", "mail.test"} {
					cfg := &tls.Config{RootCAs: s.CAPool(), ServerName: name}
					var err error
					if mode == Implicit {
						_, err = dialTLS(t, s, cfg)
					} else {
						conn, derr := net.Dial("tcp", s.Addr())
						if derr != nil {
							t.Fatal(derr)
						}
						var c *smtp.Client
						c, err = smtp.NewClientStartTLS(conn, cfg)
						if err == nil {
							err = c.Noop() // the handshake is lazy
							c.Close()
						} else {
							conn.Close()
						}
					}
					var verr *tls.CertificateVerificationError
					if tc.kind != CertGood && tc.kind != CertExpiresSoon && !errors.As(err, &verr) {
						t.Errorf("%v %v %s: err = %v, want *tls.CertificateVerificationError", mode, tc.kind, name, err)
					}
					if !tc.check(err) {
						t.Errorf("%v %v %s: err = %v", mode, tc.kind, name, err)
					}
				}
			}
		})
	}
	if na := Cert(CertExpiresSoon).Leaf.NotAfter; time.Until(na) > 4*24*time.Hour || time.Until(na) < 2*24*time.Hour {
		t.Errorf("CertExpiresSoon NotAfter = %v", na)
	}
	if leaf := Cert(CertWrongName).Leaf; !slices.Equal(leaf.DNSNames, []string{WrongName}) || len(leaf.IPAddresses) != 0 {
		t.Errorf("CertWrongName SANs = %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
}

func TestCertGoodValidForIPv6AndLocalhost(t *testing.T) {
	t.Parallel()
	leaf := Cert(CertGood).Leaf
	for _, name := range []string{"127.0.0.1", "::1", "localhost", "mail.test"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: SharedCA().Pool()}); err != nil {
			t.Errorf("good cert for %q: %v", name, err)
		}
	}
}

func TestMaxTLSVersion(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{TLS: Implicit, MaxTLSVersion: tls.VersionTLS11})
	// Go clients refuse TLS 1.1 by default.
	if _, err := dialTLS(t, s, s.ClientTLSConfig()); err == nil {
		t.Fatalf("default client accepted a TLS 1.1 server")
	}
	cfg := s.ClientTLSConfig()
	cfg.MinVersion = tls.VersionTLS10
	c, err := dialTLS(t, s, cfg)
	if err != nil {
		t.Skipf("this Go cannot do TLS 1.1 even when asked: %v", err)
	}
	if st, _ := c.TLSConnectionState(); st.Version != tls.VersionTLS11 {
		t.Errorf("negotiated %x, want TLS 1.1", st.Version)
	}
}

func TestCAHelpers(t *testing.T) {
	t.Parallel()
	ca := NewCA()
	if ca == SharedCA() || SharedCA() != SharedCA() {
		t.Fatal("NewCA must be fresh and SharedCA stable")
	}
	block, _ := pem.Decode(ca.PEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("PEM() = %q", ca.PEM())
	}
	if !ca.Certificate().IsCA {
		t.Errorf("CA certificate is not a CA")
	}
	now := time.Now()
	leaf := ca.Leaf([]string{"smtp.example", "10.1.2.3"}, now.Add(-time.Minute), now.Add(time.Hour))
	for _, name := range []string{"smtp.example", "10.1.2.3"} {
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("Leaf for %q: %v", name, err)
		}
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "smtp.example", Roots: SharedCA().Pool()}); err == nil {
		t.Errorf("leaf of a fresh CA verified against SharedCA")
	}
	ss := SelfSigned([]string{"localhost"}, now.Add(-time.Minute), now.Add(time.Hour))
	if _, err := ss.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: ca.Pool()}); err == nil {
		t.Errorf("self-signed verified")
	}
	if _, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]}), mustKeyPEM(t, leaf)); err != nil {
		t.Errorf("leaf is not a usable key pair: %v", err)
	}
	if Cert(CertGood).Leaf != Cert(CertGood).Leaf {
		t.Errorf("Cert is not cached")
	}
}

func mustKeyPEM(t *testing.T, c tls.Certificate) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
