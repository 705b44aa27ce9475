// Command gencert writes a throwaway certificate authority and a server
// certificate signed by it, for the interoperability suite's TLS servers.
//
// Usage:
//
//	gencert DIR
//
// It writes DIR/ca.pem (the CA certificate, to trust), DIR/server.pem and
// DIR/server-key.pem (the server's certificate and PKCS #8 key). The server
// certificate names localhost, 127.0.0.1 and ::1 and is valid for 30 days,
// so that Test Connection never warns of its expiry during a run. The CA's
// key is never written: nothing else can ever be signed by it. The
// certificates come from the repository's one generator, internal/testcert.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/emailconn/emailconn/internal/testcert"
)

// validity is how long the server certificate lives: well beyond the
// 14 days under which Test Connection warns that a certificate expires.
const validity = 30 * 24 * time.Hour

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gencert DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gencert:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	ca := testcert.NewCA("emailconn interop throwaway CA")
	now := time.Now()
	leaf := ca.Leaf([]string{"localhost", "127.0.0.1", "::1"}, now.Add(-time.Hour), now.Add(validity))
	key, err := testcert.KeyPEM(leaf)
	if err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", ca.PEM(), 0o644},
		{"server.pem", testcert.CertPEM(leaf), 0o644},
		{"server-key.pem", key, 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}
