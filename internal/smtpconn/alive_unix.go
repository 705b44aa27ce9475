//go:build unix

package smtpconn

import (
	"errors"
	"syscall"
)

// Idle reports whether the peer has neither closed the connection nor sent
// anything since the last reply, without blocking: a pooled session whose
// server timed it out (FIN, or a 421 before closing) is not idle. It peeks
// at the socket, so nothing is consumed.
func (c *Conn) Idle() bool {
	sc, ok := c.raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	idle := false
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		idle = n < 0 && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true
	})
	return err == nil && idle
}
