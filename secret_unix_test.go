//go:build unix

package emailconn_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue11_05_FIFONeverBlocks checks that a file: secret or a CAFile
// naming a FIFO is refused at once by every entry point that reads it.
func TestIssue11_05_FIFONeverBlocks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	refs := emailconn.References{Dirs: []string{dir}}
	srv := smtptest.NewServer(t, smtptest.Options{})
	pw := emailconn.Connection{MailServer: srv.Addr(), Username: "u", Password: emailconn.Secret("file:" + fifo)}
	ca := emailconn.Connection{MailServer: srv.Addr(), CAFile: fifo}
	calls := map[string]func() error{
		"Reveal":             func() error { _, err := emailconn.Secret("file:" + fifo).Reveal(refs); return err },
		"NewSender password": func() error { _, err := emailconn.NewSender(pw, &emailconn.Options{References: refs}); return err },
		"NewSender CAFile":   func() error { _, err := emailconn.NewSender(ca, &emailconn.Options{References: refs}); return err },
		"TestConnection": func() error {
			return ca.Test(context.Background(), &emailconn.TestOptions{Options: &emailconn.Options{References: refs}}).Err
		},
		"NewRegistry": func() error {
			pw.Name = "p"
			_, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{pw}}, &emailconn.Options{References: refs})
			return err
		},
	}
	// LoadConfig and Validate do no I/O: they return at once.
	if _, err := emailconn.LoadConfig(strings.NewReader(`{"connections":[{"name":"c","mailServer":"m.example","caFile":` + emailconn.JSONQuote(fifo) + `}]}`)); err != nil {
		t.Errorf("LoadConfig = %v", err)
	}
	if err := ca.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	for name, call := range calls {
		t.Run("issue11-5/"+name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("error = %v, want the FIFO refused as not a regular file", err)
				}
			case <-time.After(10 * time.Second):
				// Unblock the reader so that the goroutine ends.
				if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
					f.Close()
				}
				<-done
				t.Fatal("blocked on the FIFO")
			}
		})
	}
}
