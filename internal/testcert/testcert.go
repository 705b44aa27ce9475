// Package testcert makes throwaway certificates for this repository's
// tests, benchmarks and interoperability suite: a
// certificate authority that lives only in memory, server certificates it
// signs for given names and validity, and self-signed ones. Every key is
// ECDSA P-256, which keeps handshakes cheap and the same for every client.
//
// It is the one certificate generator of the repository: internal/smtptest
// (and through it emailconntest, the root tests and examples/quickstart),
// internal/bench and internal/interop's gencert command all use it.
// Nothing here is fit for production use.
//
// The functions panic if a certificate cannot be made, which happens only
// if the system's random source fails: callers are tests and tools that
// could not go on anyway.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// CA is a throwaway certificate authority. Its key exists only in memory,
// so nothing but this process can ever sign with it. A CA is safe for
// concurrent use; the zero value is not usable (use NewCA).
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA generates a fresh CA whose subject common name is name, valid from
// an hour ago for ten years. It may sign server certificates only (its path
// length is zero). Key generation takes a moment: callers that need one CA
// for many certificates keep it.
func NewCA(name string) *CA {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return &CA{cert: create(tmpl, tmpl, key, key).Leaf, key: key}
}

// Certificate returns the CA's certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM returns the CA certificate in PEM form, as a file to trust (a fresh
// copy on each call).
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// Pool returns a new certificate pool holding only this CA, suitable for
// tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Leaf issues a server certificate signed by the CA and valid from
// notBefore to notAfter. Each name that parses as an IP address becomes an
// IP SAN, every other name a DNS SAN, in the given order; the first name is
// also the subject common name. The result holds the leaf alone as its
// chain, its private key, and the parsed leaf in Leaf.
func (ca *CA) Leaf(names []string, notBefore, notAfter time.Time) tls.Certificate {
	return create(leafTemplate(names, notBefore, notAfter), ca.cert, newKey(), ca.key)
}

// SelfSigned returns a server certificate signed by its own key, not by any
// CA, so that chain verification fails. Names and validity are as in
// CA.Leaf.
func SelfSigned(names []string, notBefore, notAfter time.Time) tls.Certificate {
	tmpl := leafTemplate(names, notBefore, notAfter)
	key := newKey()
	return create(tmpl, tmpl, key, key)
}

// CertPEM returns c's certificate chain in PEM form, leaf first, as a
// server's certificate file.
func CertPEM(c tls.Certificate) []byte {
	var b []byte
	for _, der := range c.Certificate {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return b
}

// KeyPEM returns c's private key as a PKCS #8 "PRIVATE KEY" PEM block, as a
// server's key file. It returns an error if c has no private key of a type
// PKCS #8 can hold.
func KeyPEM(c tls.Certificate) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func leafTemplate(names []string, notBefore, notAfter time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(),
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if len(names) > 0 {
		tmpl.Subject.CommonName = names[0]
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	return tmpl
}

// create signs tmpl's certificate for key with parent and parentKey.
func create(tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) tls.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic("testcert: creating certificate: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("testcert: parsing certificate: " + err.Error())
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
}

func newKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("testcert: generating key: " + err.Error())
	}
	return key
}

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("testcert: generating serial: " + err.Error())
	}
	return n
}
