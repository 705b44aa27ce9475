//go:build unix

package emailconn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue11_05_FIFONeverBlocks checks that a file: secret or a CAFile
// naming a FIFO is refused at once by every entry point that reads it.
func TestIssue11_05_FIFONeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	refs := References{Dirs: []string{dir}}
	srv := smtptest.NewServer(t, smtptest.Options{})
	pw := Connection{MailServer: srv.Addr(), Username: "u", Password: Secret("file:" + fifo)}
	ca := Connection{MailServer: srv.Addr(), CAFile: fifo}
	calls := map[string]func() error{
		"Reveal":             func() error { _, err := Secret("file:" + fifo).Reveal(refs); return err },
		"NewSender password": func() error { _, err := NewSender(pw, &Options{References: refs}); return err },
		"NewSender CAFile":   func() error { _, err := NewSender(ca, &Options{References: refs}); return err },
		"TestConnection": func() error {
			return TestConnection(context.Background(), ca, &TestOptions{Options: &Options{References: refs}}).Err
		},
		"NewRegistry": func() error {
			pw.Name = "p"
			_, err := NewRegistry(Config{Connections: []Connection{pw}}, &Options{References: refs})
			return err
		},
	}
	// LoadConfig and Validate do no I/O: they return at once.
	if _, err := LoadConfig(strings.NewReader(`{"connections":[{"name":"c","mailServer":"m.example","caFile":` + jsonQuote(fifo) + `}]}`)); err != nil {
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
