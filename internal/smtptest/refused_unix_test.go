//go:build unix

package smtptest

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestRefusedAddr: a dial to RefusedAddr's address is refused, and while
// the test runs no listener can take its port.
func TestRefusedAddr(t *testing.T) {
	t.Parallel()
	addr := RefusedAddr(t)
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("dial %s succeeded, want connection refused", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s = %v, want ECONNREFUSED", addr, err)
		}
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
		t.Fatalf("Listen(%s) succeeded while RefusedAddr holds the port", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("Listen(%s) = %v, want EADDRINUSE", addr, err)
	}
}
