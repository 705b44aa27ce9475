package emailconntest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// Options configures a Server. The zero value, and a nil *Options, give a
// plaintext server without AUTH that accepts every message.
type Options struct {
	// TLS is how the server offers TLS: "starttls" advertises
	// STARTTLS, "implicit" speaks TLS from the first byte. Either
	// way the server presents a certificate for 127.0.0.1 signed by a CA
	// made when the first server of the process starts, and AUTH is only
	// offered under TLS. Zero (or "none") means plaintext;
	// "opportunistic" is not a server mode and makes NewServer
	// panic.
	TLS string

	// Username and Password are the only credentials AUTH PLAIN and LOGIN
	// accept. When Username is set, the server refuses MAIL until the
	// session has authenticated (530 5.7.0), so a connection that forgot
	// its credentials fails the test. Zero means no AUTH PLAIN or LOGIN.
	Username, Password string

	// ValidateToken, when set, makes the server offer AUTH XOAUTH2 and
	// OAUTHBEARER and accept a bearer token when it returns true for the
	// user name the client gave and the token. A rejected token gets the
	// failure challenge of Google and Microsoft 365 and then 535 5.7.8.
	// MAIL then also requires AUTH. It is called from the server's
	// goroutines: it must be safe for concurrent use. Nil means no
	// XOAUTH2 or OAUTHBEARER.
	ValidateToken func(username, token string) bool

	// RejectRecipients are addresses the server refuses at RCPT TO with
	// "550 5.1.1 Recipient address rejected", compared without regard to
	// case, so that an engine can test its handling of a refused
	// recipient. Zero means every recipient is accepted (unless Refuse
	// says otherwise).
	RejectRecipients []string

	// Refuse, when set, is asked before the server accepts a command:
	// "MAIL" with the reverse path, "RCPT" with the recipient, and "DATA"
	// (with arg "") when the whole message has arrived, before the reply
	// to its final dot. A non-empty result refuses the command with that
	// reply, as the server would send it, for example "451 4.3.0 Try again
	// later" or "552 5.3.4 Message too big"; a refused message is not
	// recorded. A result that is not a 4xx or 5xx reply becomes
	// "451 4.3.5" naming the mistake. Refuse is called from the server's
	// goroutines: it must be safe for concurrent use (a counter that
	// refuses the first attempt and accepts the next needs a mutex or an
	// atomic). A panic in Refuse becomes "451 4.3.5" with the panic's
	// value. Nil means no command is refused.
	Refuse func(command, arg string) string
}

// A Server is an SMTP server on a loopback address for the unit tests of
// an engine that sends through emailconn, as httptest.Server is for HTTP
// clients: start it with NewServer, send through Connection, look at
// Messages, and Close it. A Server is safe for concurrent use.
type Server struct {
	srv  *smtptest.Server
	opts Options

	mu      sync.Mutex
	msgs    []Message
	changed chan struct{} // closed and replaced when a message arrives
	closed  chan struct{}
	once    sync.Once
}

// NewServer starts a server on 127.0.0.1 at a port the system chooses. opts
// may be nil. The caller must call Close. NewServer panics when opts are
// contradictory or the server cannot listen, as httptest.NewServer does:
// a test cannot go on without its server.
func NewServer(opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
		o.RejectRecipients = slices.Clone(o.RejectRecipients)
	}
	so := smtptest.Options{Domain: "emailconntest.localhost"}
	switch o.TLS {
	case "", "none":
	case "starttls":
		so.TLS = smtptest.StartTLS
	case "implicit":
		so.TLS = smtptest.Implicit
	default:
		panic(fmt.Sprintf("emailconntest: Options.TLS %q is not a server mode (use %q, %q or none)", o.TLS, "starttls", "implicit"))
	}
	so.RequireTLSForAuth = so.TLS != smtptest.Plain
	if o.Username != "" {
		so.Users = map[string]string{o.Username: o.Password}
	}
	so.ValidateToken = o.ValidateToken
	so.RequireAuth = o.Username != "" || o.ValidateToken != nil
	s := &Server{opts: o, changed: make(chan struct{}), closed: make(chan struct{})}
	so.MailHook = func(from string) *smtp.SMTPError { return s.refuse("MAIL", from) }
	so.RcptHook = func(to string) *smtp.SMTPError {
		for _, r := range s.opts.RejectRecipients {
			if strings.EqualFold(r, to) {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "Recipient address rejected: " + to}
			}
		}
		return s.refuse("RCPT", to)
	}
	so.DataHook = func(from string, to []string, data []byte) *smtp.SMTPError {
		if e := s.refuse("DATA", ""); e != nil {
			return e
		}
		s.deliver(decode(from, to, data))
		return nil
	}
	s.srv = smtptest.NewServer(nil, so)
	return s
}

// refuse asks Options.Refuse about a command.
func (s *Server) refuse(command, arg string) *smtp.SMTPError {
	if s.opts.Refuse == nil {
		return nil
	}
	reply, panicked := func() (reply string, panicked any) {
		defer func() { panicked = recover() }()
		return s.opts.Refuse(command, arg), nil
	}()
	if panicked != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 5},
			Message: fmt.Sprintf("emailconntest: Refuse panicked: %v", panicked)}
	}
	if reply == "" {
		return nil
	}
	return parseReply(reply)
}

// parseReply turns "550 5.1.1 text" into the error go-smtp writes back
// exactly so; an unusable reply becomes a 451 that says what is wrong.
func parseReply(reply string) *smtp.SMTPError {
	code, text, _ := strings.Cut(reply, " ")
	n, err := strconv.Atoi(code)
	if err != nil || len(code) != 3 || n < 400 || n > 599 {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 5},
			Message: fmt.Sprintf("emailconntest: Refuse returned %q, which is not a 4xx or 5xx reply", reply)}
	}
	e := &smtp.SMTPError{Code: n, EnhancedCode: smtp.NoEnhancedCode, Message: text}
	if ec, rest, ok := strings.Cut(text, " "); ok || ec != "" {
		if parts := strings.Split(ec, "."); len(parts) == 3 {
			var c smtp.EnhancedCode
			good := true
			for i, p := range parts {
				v, err := strconv.Atoi(p)
				good = good && err == nil && v >= 0 && v < 1000
				c[i] = v
			}
			if good && c[0] == n/100 {
				e.EnhancedCode, e.Message = c, rest
			}
		}
	}
	return e
}

func (s *Server) deliver(m Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Close stops the server: it closes the listener and every session, and
// waits for the server's goroutines to end. Messages still returns what
// was received. Close may be called more than once.
func (s *Server) Close() {
	s.srv.Close()
	s.once.Do(func() { close(s.closed) })
}

// Addr returns the address the server listens on, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.srv.Addr() }

// Connection returns a connection named name that is ready to send through
// this server: MailServer is Addr; with TLS the mode is the server's and
// RootCAs trusts the server's CA (no file is written, and verification is
// not turned off); Username and Password are the server's; ConnectTimeout
// and SendTimeout are 10 seconds, so a test that goes wrong fails instead
// of hanging. When the server has ValidateToken and no Password, the
// connection has AuthType "oauth2" and the caller sets
// OAuth2Config to the name of an OAuth2 configuration of its Registry.
// From, To and ActionsBaseURL are left for the caller to set. (A server
// Password that starts with "env:" or "file:" would be read as a
// reference by the connection: choose another.)
func (s *Server) Connection(name string) emailconn.Connection {
	c := emailconn.Connection{
		Name: name, MailServer: s.srv.Addr(),
		ConnectTimeout: 10 * time.Second, SendTimeout: 10 * time.Second,
	}
	switch s.opts.TLS {
	case "starttls", "implicit":
		c.EnableTLS, c.TLSMode = true, s.opts.TLS
		c.RootCAs = smtptest.SharedCA().Pool()
	}
	if s.opts.Username != "" {
		c.Username = s.opts.Username
		if s.opts.Password == "" && s.opts.ValidateToken != nil {
			c.AuthType = "oauth2"
		} else {
			c.Password = emailconn.Secret(s.opts.Password)
		}
	}
	return c
}

// Messages returns the messages the server accepted, in the order their
// final dot was answered. A message is recorded before the server replies
// 250 to it, so it is there as soon as Send returns. The result is the
// caller's to change.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.clone()
	}
	return out
}

// WaitMessages waits until the server has accepted at least n messages and
// returns them all (as Messages does), for an engine that sends from a
// goroutine of its own. It returns an error when ctx ends first, matching
// ctx's error, or when the server is closed with fewer than n messages.
func (s *Server) WaitMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		got, changed := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			err := ctx.Err()
			if cause := context.Cause(ctx); cause != nil && cause != err {
				err = fmt.Errorf("%w: %w", err, cause)
			}
			return nil, fmt.Errorf("emailconntest: waiting for %d messages, got %d: %w", n, got, err)
		case <-s.closed:
			if m := s.Messages(); len(m) >= n {
				return m, nil
			}
			return nil, fmt.Errorf("emailconntest: waiting for %d messages, got %d: the server is closed", n, got)
		}
	}
}
