package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"time"
)

// CertKind selects the leaf certificate a TLS server presents.
type CertKind int

const (
	// CertGood is signed by the shared test CA and valid for 127.0.0.1, ::1,
	// "localhost" and "mail.test". It is the zero value.
	CertGood CertKind = iota
	// CertWrongName is signed by the shared test CA but valid only for
	// "wrong.example", so name verification fails.
	CertWrongName
	// CertExpired is signed by the shared test CA, valid for the good names,
	// and expired a day ago.
	CertExpired
	// CertSelfSigned is valid for the good names but signed by its own key,
	// not by the test CA, so chain verification fails.
	CertSelfSigned
	// CertExpiresSoon is signed by the shared test CA, valid for the good
	// names and verifies today, but expires in about three days.
	CertExpiresSoon
)

// String returns the constant's name.
func (k CertKind) String() string {
	switch k {
	case CertGood:
		return "CertGood"
	case CertWrongName:
		return "CertWrongName"
	case CertExpired:
		return "CertExpired"
	case CertSelfSigned:
		return "CertSelfSigned"
	case CertExpiresSoon:
		return "CertExpiresSoon"
	}
	return fmt.Sprintf("CertKind(%d)", int(k))
}

// goodNames are the names the CertGood, CertExpired, CertSelfSigned and
// CertExpiresSoon leaves are valid for. IP addresses become IP SANs.
var goodNames = []string{"127.0.0.1", "::1", "localhost", "mail.test"}

// WrongName is the only name the CertWrongName leaf is valid for.
const WrongName = "wrong.example"

// CA is a throwaway certificate authority (ECDSA P-256) for tests. A CA is
// safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA generates a fresh CA. Key generation takes a moment: tests that only
// need "a CA the server's good certificate chains to" should use SharedCA.
// NewCA panics if the system's random source fails.
func NewCA() *CA {
	key := newKey()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(),
		Subject:               pkix.Name{CommonName: "smtptest CA", Organization: []string{"emailconn smtptest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("smtptest: creating CA: " + err.Error())
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic("smtptest: parsing CA: " + err.Error())
	}
	return &CA{
		cert: cert,
		key:  key,
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

var (
	sharedOnce sync.Once
	sharedCA   *CA

	leafMu    sync.Mutex
	leafCache = map[CertKind]tls.Certificate{}
)

// SharedCA returns the process-wide test CA that signs the certificates of
// every Server (except CertSelfSigned). It is generated once per process.
func SharedCA() *CA {
	sharedOnce.Do(func() { sharedCA = NewCA() })
	return sharedCA
}

// Cert returns the leaf certificate of the given kind, as a Server with
// Options.Cert set to kind presents it. Leaves are generated once per process
// and shared; callers must not modify the result. Cert panics on an unknown
// kind.
func Cert(kind CertKind) tls.Certificate {
	leafMu.Lock()
	defer leafMu.Unlock()
	if c, ok := leafCache[kind]; ok {
		return c
	}
	now := time.Now()
	var c tls.Certificate
	switch kind {
	case CertGood:
		c = SharedCA().Leaf(goodNames, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	case CertWrongName:
		c = SharedCA().Leaf([]string{WrongName}, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	case CertExpired:
		c = SharedCA().Leaf(goodNames, now.Add(-30*24*time.Hour), now.Add(-24*time.Hour))
	case CertSelfSigned:
		c = SelfSigned(goodNames, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	case CertExpiresSoon:
		c = SharedCA().Leaf(goodNames, now.Add(-time.Hour), now.Add(3*24*time.Hour))
	default:
		panic(fmt.Sprintf("smtptest: unknown %v", kind))
	}
	leafCache[kind] = c
	return c
}

// Certificate returns the CA's certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// PEM returns the CA certificate in PEM form (a fresh copy on each call).
func (ca *CA) PEM() []byte { return append([]byte(nil), ca.pem...) }

// Pool returns a new certificate pool holding only this CA, suitable for
// tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Leaf issues a server certificate (ECDSA P-256) signed by the CA and valid
// from notBefore to notAfter. Each name that parses as an IP address becomes
// an IP SAN, every other name a DNS SAN; the first name is also the subject
// common name. Leaf panics if the system's random source fails.
func (ca *CA) Leaf(names []string, notBefore, notAfter time.Time) tls.Certificate {
	return issue(names, notBefore, notAfter, ca.cert, ca.key)
}

// SelfSigned returns a server certificate signed by its own key (not a CA),
// valid for names from notBefore to notAfter. Names are handled as in
// CA.Leaf.
func SelfSigned(names []string, notBefore, notAfter time.Time) tls.Certificate {
	return issue(names, notBefore, notAfter, nil, nil)
}

func issue(names []string, notBefore, notAfter time.Time, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
	key := newKey()
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
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		panic("smtptest: creating certificate: " + err.Error())
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic("smtptest: parsing certificate: " + err.Error())
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func newKey() *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("smtptest: generating key: " + err.Error())
	}
	return key
}

func newSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("smtptest: generating serial: " + err.Error())
	}
	return n
}
