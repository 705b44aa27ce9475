//go:build unix

package smtptest

import (
	"net"
	"strconv"
	"syscall"
)

// refusedAddr binds a TCP socket to 127.0.0.1 at a port the kernel
// chooses, without listen(2): a SYN to it is answered with a reset, and
// while the socket is bound no other socket binds the port (it does not
// set SO_REUSEADDR) and no dial takes it as its local port.
func refusedAddr() (string, func(), error) {
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return "", nil, err
	}
	release := func() { syscall.Close(fd) }
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		release()
		return "", nil, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		release()
		return "", nil, err
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || in4.Port == 0 {
		release()
		return "", nil, syscall.EAFNOSUPPORT
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(in4.Port)), release, nil
}
