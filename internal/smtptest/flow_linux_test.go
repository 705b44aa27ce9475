//go:build linux

package smtptest

import (
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// waitFlowStopped waits until the bytes queued for reading on conn (which
// the test does not read) stop growing: the receive window is closed, so a
// server writing to it is blocked once its own send buffer is full.
func waitFlowStopped(t *testing.T, conn net.Conn) {
	t.Helper()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	queued := func() int {
		var v int32
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v)))
		})
		return int(v)
	}
	deadline := time.Now().Add(timeout)
	last, same := -1, 0
	for same < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the receive queue still grows after %v (%d bytes)", timeout, last)
		}
		time.Sleep(5 * time.Millisecond)
		n := queued()
		if n > 0 && n == last {
			same++
		} else {
			same = 0
		}
		last = n
	}
}
