//go:build linux

package smtpconn

import (
	"syscall"
	"unsafe"
)

// unsent returns the bytes written to the socket that the peer has not
// acknowledged yet (SIOCOUTQ), or -1 when that cannot be known.
func unsent(c any) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	_ = rc.Control(func(fd uintptr) {
		var v int32
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v))); errno == 0 {
			n = int(v)
		}
	})
	return n
}
