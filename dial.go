package emailconn

import (
	"context"
	"errors"
	"net"
)

// hookDialer wraps Options.DialContext: the connection it returns reports
// the address it was asked for as its remote address, which is all the
// Sender can know of the peer behind a proxy or a socket. That address is
// not a *net.TCPAddr, so it never counts as loopback for credentials.
func hookDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		switch {
		case err != nil:
			if c != nil {
				_ = c.Close()
			}
			return nil, err
		case c == nil:
			return nil, errors.New("Options.DialContext returned neither a connection nor an error")
		}
		return &hookConn{Conn: c, remote: hookAddr{network: network, addr: addr}}, nil
	}
}

// hookConn is a connection opened by Options.DialContext.
type hookConn struct {
	net.Conn
	remote hookAddr
}

func (c *hookConn) RemoteAddr() net.Addr { return c.remote }

// hookAddr is the address a connection opened by Options.DialContext was
// asked to reach.
type hookAddr struct{ network, addr string }

func (a hookAddr) Network() string { return a.network }
func (a hookAddr) String() string  { return a.addr }
