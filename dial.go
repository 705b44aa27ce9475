package emailconn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"

	"github.com/emailconn/emailconn/internal/session"
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

// opener opens the sessions of a Sender: the session layer's
// configuration, built once from the connection and the options, with the
// hooks of one Trace. A Sender has one for its sends; Test Connection makes
// its own with the hooks that build its report.
type opener struct {
	s     *Sender
	trace *Trace
	cfg   session.Config
}

// newOpener returns the opener of s that reports to t.
func (s *Sender) newOpener(t *Trace) *opener {
	o := &opener{s: s, trace: t}
	guard := s.opts.guard()
	dial := s.opts.dial
	switch {
	case dial != nil:
	case s.opts.DialContext != nil:
		dial = hookDialer(s.opts.DialContext)
	case guard != nil:
		dial = guard.DialContext(&net.Dialer{})
	default:
		dial = (&net.Dialer{}).DialContext
	}
	o.cfg = session.Config{
		Host: s.ep.host, Port: s.ep.port, Mode: sessionMode(s.ep.mode), TLS: s.tlsCfg,
		LocalName: s.conn.localName(), ConnectTimeout: s.conn.ConnectTimeout, SendTimeout: s.conn.SendTimeout,
		Lookup: s.opts.lookup, Dial: dial, Guard: guard, Hooks: s.hooks(t),
	}
	if l := s.opts.Logger; l != nil {
		name := s.conn.Name
		o.cfg.OnBlocked = func(ctx context.Context, ap netip.AddrPort, reason string) {
			l.LogAttrs(ctx, slog.LevelWarn, "dial refused by policy",
				slog.String("connection", name), slog.String("address", ap.String()), slog.String("reason", reason))
		}
		o.cfg.Transcript = func(ctx context.Context, remote string) func(bool, string) {
			if !l.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			return func(fromClient bool, line string) {
				dir := "S"
				if fromClient {
					dir = "C"
				}
				l.Debug("smtp", "connection", name, "server", remote, "dir", dir, "line", line)
			}
		}
	}
	if s.conn.usesCredentials() {
		o.cfg.Auth = func(ctx context.Context, sess *session.Session) error { return o.authenticate(ctx, sess, false) }
	} else {
		o.cfg.Auth = func(ctx context.Context, sess *session.Session) error {
			sess.Skip(ctx, session.StageAuth, "the connection has no user name")
			return nil
		}
	}
	return o
}

func sessionMode(m string) session.Mode {
	switch m {
	case tlsImplicit:
		return session.ModeImplicit
	case tlsStartTLS:
		return session.ModeStartTLS
	case tlsOpportunistic:
		return session.ModeOpportunistic
	}
	return session.ModeNone
}

// open establishes an authenticated session. When the server rejects an
// OAuth2 access token, the token is dropped and the session is opened
// again with a fresh one — once.
func (o *opener) open(ctx context.Context) (*session.Session, error) {
	sess, err := session.Open(ctx, &o.cfg)
	var tre *tokenRejectedError
	if err != nil && o.s.tokens != nil && errors.As(err, &tre) {
		o.s.tokens.invalidate(tre.token)
		if l := o.s.opts.Logger; l != nil {
			l.LogAttrs(ctx, slog.LevelInfo, "oauth2 token rejected; retrying with a fresh one",
				slog.String("connection", o.s.conn.Name), slog.String("oauth2Configuration", o.s.conn.OAuth2Config))
		}
		again := o.cfg
		again.Auth = func(ctx context.Context, sess *session.Session) error { return o.authenticate(ctx, sess, true) }
		sess, err = session.Open(ctx, &again)
	}
	if err != nil {
		return nil, o.s.classify(ctx, err)
	}
	return sess, nil
}
