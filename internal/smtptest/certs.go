package smtptest

import (
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/emailconn/emailconn/internal/testcert"
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

// CA is a throwaway certificate authority (ECDSA P-256) for tests: the
// repository's one generator, internal/testcert. A CA is safe for
// concurrent use.
type CA = testcert.CA

// NewCA generates a fresh CA named "smtptest CA". Key generation takes a
// moment: tests that only need "a CA the server's good certificate chains
// to" should use SharedCA. NewCA panics if the system's random source fails.
func NewCA() *CA { return testcert.NewCA("smtptest CA") }

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

// SelfSigned returns a server certificate signed by its own key (not a CA),
// valid for names from notBefore to notAfter. Names are handled as in
// CA.Leaf.
func SelfSigned(names []string, notBefore, notAfter time.Time) tls.Certificate {
	return testcert.SelfSigned(names, notBefore, notAfter)
}
