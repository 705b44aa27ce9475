package emailconn_test

import (
	"os"
	"path/filepath"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// exampleServer starts a local test server for an example and writes its
// certificate authority to a file for Connection.CAFile. done stops both.
func exampleServer(opts smtptest.Options) (srv *smtptest.Server, caFile string, done func()) {
	srv = smtptest.NewServer(nil, opts)
	dir, err := os.MkdirTemp("", "emailconn-example")
	if err != nil {
		panic(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, smtptest.SharedCA().PEM(), 0o600); err != nil {
		panic(err)
	}
	return srv, caFile, func() {
		srv.Close()
		os.RemoveAll(dir)
	}
}
