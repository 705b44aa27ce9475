package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestIssue12_TestCertGenerator checks what the four former copies of the
// generator relied on: the CA's PEM, pool and constraints; a leaf's names
// (IPs as IP SANs, in order, the first as common name), validity, key pair
// and chain; a self-signed leaf that chains to nothing; PEM files a server
// such as Mailpit loads.
func TestIssue12_TestCertGenerator(t *testing.T) {
	ca := NewCA("test CA")
	c := ca.Certificate()
	if !c.IsCA || !c.MaxPathLenZero || c.Subject.CommonName != "test CA" || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate: IsCA %v, MaxPathLenZero %v, CN %q, KeyUsage %v", c.IsCA, c.MaxPathLenZero, c.Subject.CommonName, c.KeyUsage)
	}
	if time.Until(c.NotAfter) < 365*24*time.Hour || time.Since(c.NotBefore) <= 0 {
		t.Errorf("CA validity %v – %v", c.NotBefore, c.NotAfter)
	}
	block, rest := pem.Decode(ca.PEM())
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 || !slices.Equal(block.Bytes, c.Raw) {
		t.Errorf("PEM() = %q", ca.PEM())
	}
	if NewCA("test CA").Certificate().Equal(c) {
		t.Errorf("NewCA returned the same CA twice")
	}

	now := time.Now().Truncate(time.Second)
	notBefore, notAfter := now.Add(-time.Minute), now.Add(30*24*time.Hour)
	leaf := ca.Leaf([]string{"localhost", "127.0.0.1", "::1", "mail.test"}, notBefore, notAfter)
	l := leaf.Leaf
	if l == nil || len(leaf.Certificate) != 1 || !slices.Equal(leaf.Certificate[0], l.Raw) {
		t.Fatalf("Leaf: chain of %d, parsed leaf %v", len(leaf.Certificate), l != nil)
	}
	if l.Subject.CommonName != "localhost" || !slices.Equal(l.DNSNames, []string{"localhost", "mail.test"}) ||
		len(l.IPAddresses) != 2 || l.IPAddresses[0].String() != "127.0.0.1" || l.IPAddresses[1].String() != "::1" {
		t.Errorf("Leaf names: CN %q, DNS %q, IPs %v", l.Subject.CommonName, l.DNSNames, l.IPAddresses)
	}
	if !l.NotBefore.Equal(notBefore) || !l.NotAfter.Equal(notAfter) {
		t.Errorf("Leaf validity %v – %v, want %v – %v", l.NotBefore, l.NotAfter, notBefore, notAfter)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "mail.test"} {
		if _, err := l.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("Leaf for %q: %v", name, err)
		}
	}
	if _, err := l.Verify(x509.VerifyOptions{DNSName: "other.test", Roots: ca.Pool()}); err == nil {
		t.Errorf("Leaf verified for a name it does not carry")
	}
	if _, err := l.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: ca.Pool(), CurrentTime: notAfter.Add(time.Second)}); err == nil {
		t.Errorf("Leaf verified after its NotAfter")
	}
	if _, err := l.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: NewCA("other").Pool()}); err == nil {
		t.Errorf("Leaf verified against another CA")
	}

	ss := SelfSigned([]string{"localhost"}, notBefore, notAfter)
	if _, err := ss.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: ca.Pool()}); err == nil {
		t.Errorf("self-signed leaf verified against the CA")
	}
	if ss.Leaf.IsCA || ss.Leaf.Subject.CommonName != "localhost" {
		t.Errorf("self-signed leaf: IsCA %v, CN %q", ss.Leaf.IsCA, ss.Leaf.Subject.CommonName)
	}

	keyPEM, err := KeyPEM(leaf)
	if err != nil {
		t.Fatalf("KeyPEM: %v", err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		t.Errorf("KeyPEM = %q", keyPEM)
	}
	pair, err := tls.X509KeyPair(CertPEM(leaf), keyPEM)
	if err != nil {
		t.Fatalf("CertPEM and KeyPEM are not a key pair: %v", err)
	}
	if !slices.Equal(pair.Certificate[0], l.Raw) {
		t.Errorf("key pair's certificate is not the leaf")
	}
	if _, err := KeyPEM(tls.Certificate{}); err == nil {
		t.Errorf("KeyPEM without a key: no error")
	}
	chained := leaf
	chained.Certificate = [][]byte{l.Raw, c.Raw}
	if rest := CertPEM(chained); len(rest) == 0 {
		t.Errorf("CertPEM of a chain is empty")
	} else if b, rest := pem.Decode(rest); b == nil || !slices.Equal(b.Bytes, l.Raw) {
		t.Errorf("CertPEM of a chain does not start with the leaf")
	} else if b, _ := pem.Decode(rest); b == nil || !slices.Equal(b.Bytes, c.Raw) {
		t.Errorf("CertPEM of a chain does not go on with the CA")
	}
}
