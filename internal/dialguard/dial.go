package dialguard

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"syscall"
)

// Control checks the address a [net.Dialer] is about to connect to; it has
// the signature of [net.Dialer].ControlContext. The dialer calls it for each
// resolved address after creating the socket and before connecting, so a
// refused address never receives a packet and a name cannot be rebound
// between check and use. It returns nil or ErrBlocked itself, which the
// dialer wraps in a [*net.OpError] naming the address. An address that is
// not an IP address and port (a Unix-domain socket path, for example) is
// refused. A refusal is logged to the Policy's Logger. The network is used
// only in the log; the raw connection is not used.
//
// Control is for dialers only: a listener's ControlContext receives the
// local address.
func (p *Policy) Control(ctx context.Context, network, address string, c syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		p.logRefused(ctx, network, address, "not an IP address and port")
		return ErrBlocked
	}
	if err := p.Check(ap); err != nil {
		p.logRefused(ctx, network, address, p.Reason(ap))
		return err
	}
	return nil
}

func (p *Policy) logRefused(ctx context.Context, network, address, reason string) {
	if p == nil || p.Logger == nil {
		return
	}
	p.Logger.LogAttrs(ctx, slog.LevelWarn, "outgoing connection refused by policy",
		slog.String("network", network),
		slog.String("address", address),
		slog.String("reason", reason))
}

// DialContext returns a dial function with the signature of
// [net.Dialer].DialContext and [net/http.Transport].DialContext that
// connects only to addresses the policy allows. It takes a copy of the
// Policy, so later changes to p do not affect it, and a copy of base (nil
// means the zero [net.Dialer]) with every setting kept (timeouts,
// keep-alive, resolver, local address), except that the policy's check runs
// first in ControlContext; base's own ControlContext, or else Control, runs
// after it for allowed addresses. base is not modified.
//
// When the policy refuses the address (or, for a name, the first address
// tried), the error is a [*net.OpError] with Op "dial", the network passed
// to the function, no address, and Err ErrBlocked: "dial tcp: destination
// not allowed", the same for every refused destination, so that it does not
// reveal what a name resolved to. The refused address and the reason go to
// the Policy's Logger. Other errors are the dialer's own.
//
// The function is safe for concurrent use. With a [net/http.Transport],
// leave Proxy nil (or the proxy's address is what gets checked) and
// DialTLSContext nil (or DialContext is not used).
func (p *Policy) DialContext(base *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	pol := p.clone()
	var d net.Dialer
	if base != nil {
		d = *base
	}
	next := d.ControlContext
	if next == nil && d.Control != nil {
		control := d.Control
		next = func(_ context.Context, network, address string, c syscall.RawConn) error {
			return control(network, address, c)
		}
	}
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := pol.Control(ctx, network, address, c); err != nil {
			return err
		}
		if next != nil {
			return next(ctx, network, address, c)
		}
		return nil
	}
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, address)
		if err != nil && errors.Is(err, ErrBlocked) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: ErrBlocked}
		}
		return conn, err
	}
}
