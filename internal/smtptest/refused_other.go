//go:build !unix

package smtptest

import "net"

// refusedAddr returns the port of a listener closed at once: the port
// may be given to another listener before the test dials it.
func refusedAddr() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, func() {}, nil
}
