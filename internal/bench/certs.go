package bench

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/emailconn/emailconn/internal/testcert"
)

// pki is a throwaway certificate authority and a server certificate it
// signed for 127.0.0.1 and localhost, from the repository's one generator
// (internal/testcert). ECDSA P-256 keeps handshakes cheap and the same for
// every client under test.
type pki struct {
	caPEM []byte
	roots *x509.CertPool
	leaf  tls.Certificate
}

func newPKI() *pki {
	ca := testcert.NewCA("emailconn bench CA")
	now := time.Now()
	leaf := ca.Leaf([]string{"127.0.0.1", "localhost"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	// The sink sends the CA after the leaf, as it always has, so that every
	// run's handshakes carry the same bytes.
	leaf.Certificate = append(leaf.Certificate, ca.Certificate().Raw)
	return &pki{caPEM: ca.PEM(), roots: ca.Pool(), leaf: leaf}
}

// clientTLS returns the TLS configuration every go-smtp based client under
// test uses: the CA as the only root, TLS 1.2 or newer, as emailconn does.
func (p *pki) clientTLS() *tls.Config {
	return &tls.Config{ServerName: "127.0.0.1", RootCAs: p.roots, MinVersion: tls.VersionTLS12}
}
