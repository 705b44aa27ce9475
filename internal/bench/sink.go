package bench

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"sync/atomic"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Credentials the STARTTLS sink accepts.
const (
	User     = "bench@example.com"
	Password = "bench-password"
	From     = "engine@example.com"
	To       = "ops@example.com"
)

// A Sink is go-smtp's own server on 127.0.0.1 whose Data discards the
// message: the same receiving end for every client under test. A TLS sink
// offers STARTTLS and AUTH PLAIN and XOAUTH2; a plain one offers neither.
type Sink struct {
	Addr  string   // 127.0.0.1:port, the first of Addrs
	Addrs []string // every port the server listens on

	next atomic.Uint32

	srv   *smtp.Server
	token string // the XOAUTH2 bearer token it accepts

	Sessions atomic.Int64 // sessions opened
	Auths    atomic.Int64 // successful AUTH exchanges
	Messages atomic.Int64 // messages received
	Bytes    atomic.Int64 // message bytes received (after dot-unstuffing)
}

func startSink(p *pki, token string) (*Sink, error) {
	s := &Sink{token: token}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		s.Sessions.Add(1)
		return &sinkSession{s: s}, nil
	}))
	srv.Domain = "sink.localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if p != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{p.leaf}}
	}
	s.srv = srv
	for range sinkPorts {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			srv.Close()
			return nil, err
		}
		s.Addrs = append(s.Addrs, l.Addr().String())
		go func() { _ = srv.Serve(l) }()
	}
	s.Addr = s.Addrs[0]
	return s, nil
}

// sinkPorts is the number of ports a sink listens on. A client that dials
// per message at thousands of messages a second leaves as many loopback
// connections in TIME_WAIT for a minute; on one port they exhaust the
// 28,000 ephemeral ports within seconds and connects start to stall (SYN
// retransmits), which would make those rows measure the kernel's port
// allocator, not the library. Rotating over several ports multiplies the
// connection tuples available.
const sinkPorts = 8

// DialAddr returns the sink's ports in turn, for the clients that open a
// session per message.
func (s *Sink) DialAddr() string {
	return s.Addrs[int(s.next.Add(1))%len(s.Addrs)]
}

// Close stops the server.
func (s *Sink) Close() error { return s.srv.Close() }

type sinkSession struct {
	s *Sink
}

func (ss *sinkSession) Reset()                               {}
func (ss *sinkSession) Logout() error                        { return nil }
func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) AuthMechanisms() []string             { return []string{sasl.Plain, "XOAUTH2"} }
func (ss *sinkSession) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	ss.s.Messages.Add(1)
	ss.s.Bytes.Add(n)
	return err
}

func (ss *sinkSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error {
			if user != User || pass != Password {
				return errors.New("invalid credentials")
			}
			ss.s.Auths.Add(1)
			return nil
		}), nil
	case "XOAUTH2":
		return &xoauth2Server{s: ss.s}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// xoauth2Server is the server side of XOAUTH2 (Google's and Microsoft's
// bearer-token mechanism), which go-sasl does not have: the client sends
// "user=U^Aauth=Bearer T^A^A", inline or after an empty challenge.
type xoauth2Server struct {
	s     *Sink
	asked bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if len(resp) == 0 && !x.asked {
		x.asked = true
		return nil, false, nil // empty challenge: send the initial response
	}
	want := []byte("user=" + User + "\x01auth=Bearer " + x.s.token + "\x01\x01")
	if !bytes.Equal(resp, want) {
		return nil, false, errors.New("invalid token")
	}
	x.s.Auths.Add(1)
	return nil, true, nil
}
