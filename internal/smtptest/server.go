package smtptest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mode is how a Server offers TLS.
type Mode int

const (
	// Plain is SMTP without TLS: STARTTLS is neither advertised nor accepted.
	// It is the zero value.
	Plain Mode = iota
	// StartTLS advertises STARTTLS (RFC 3207) on a plaintext connection.
	StartTLS
	// Implicit speaks TLS from the first byte (RFC 8314, "SMTPS", port 465).
	Implicit
)

// String returns the constant's name.
func (m Mode) String() string {
	switch m {
	case Plain:
		return "Plain"
	case StartTLS:
		return "StartTLS"
	case Implicit:
		return "Implicit"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Options configures a Server. The zero value is a plaintext server without
// AUTH that accepts every message.
type Options struct {
	// TLS is how TLS is offered. The zero value is Plain.
	TLS Mode

	// Cert is the leaf the server presents in StartTLS and Implicit modes.
	// The zero value is CertGood.
	Cert CertKind

	// MaxTLSVersion caps the TLS version (tls.VersionTLS10 …). Below TLS 1.2
	// the minimum is lowered to TLS 1.0, so tls.VersionTLS11 makes a
	// TLS-1.1-only server (which Go clients refuse by default). Zero means Go's
	// defaults (TLS 1.2 and 1.3).
	MaxTLSVersion uint16

	// RequireTLSForAuth hides AUTH from the EHLO reply until TLS is up and
	// answers AUTH on a plaintext connection with
	// "538 5.7.11 Encryption required for requested authentication mechanism".
	// False allows AUTH over plaintext (go-smtp's AllowInsecureAuth).
	RequireTLSForAuth bool

	// RequireAuth answers MAIL with "530 5.7.0 Authentication required" until
	// the session has authenticated. False accepts mail without AUTH.
	RequireAuth bool

	// Users maps user names to the passwords PLAIN and LOGIN accept.
	// Nil accepts no password.
	Users map[string]string

	// Mechanisms lists the AUTH mechanisms to advertise and accept, for
	// example {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}. PLAIN, LOGIN,
	// XOAUTH2 and OAUTHBEARER are implemented; any other listed name is
	// advertised and answered with "504 5.7.4". Empty means PLAIN and LOGIN
	// when Users is set, plus XOAUTH2 and OAUTHBEARER when ValidateToken is
	// set, and no AUTH at all when neither is.
	Mechanisms []string

	// LoginPrompts are the two LOGIN challenges before base64 encoding. An
	// empty element means "Username:" or "Password:" respectively.
	LoginPrompts [2]string

	// PipelinedLogin makes LOGIN answer ahead, as some servers do: right
	// after the AUTH line it writes the challenges still due and
	// "235 2.7.0 Authentication successful" in one write
	// ("334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 …"), and only then
	// reads the user name and password. Right credentials authenticate the
	// session; wrong ones close the connection once read (the 235 is already
	// sent). An AuthResult fault does not apply. False sends each challenge
	// after the previous response.
	PipelinedLogin bool

	// ValidateToken decides whether XOAUTH2 and OAUTHBEARER accept a bearer
	// token for a user. Nil rejects every token.
	//
	// A rejected XOAUTH2 token gets Google's failure flow:
	// 334 base64({"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}),
	// then, after the client's (empty) response, "535 5.7.8 Username and
	// Password not accepted". A rejected OAUTHBEARER token gets RFC 7628's:
	// 334 base64({"status":"invalid_token","schemes":"bearer","scope":"https://mail.google.com/"}),
	// then 535 5.7.8 after the client's "\x01" (or 501 after "*").
	ValidateToken func(user, token string) bool

	// MaxMessageBytes is advertised as "SIZE n"; MAIL with a larger SIZE= gets
	// 552 5.3.4 and so does a larger body, after the dot. Zero means no limit
	// (plain "SIZE" is advertised).
	MaxMessageBytes int64

	// EnableSMTPUTF8 advertises SMTPUTF8 and accepts the SMTPUTF8 parameter.
	// Without it, non-ASCII envelope addresses get 553 5.6.7.
	EnableSMTPUTF8 bool

	// EnableDSN advertises DSN (RFC 3461) and accepts RET, ENVID, NOTIFY and
	// ORCPT. Without it those parameters get 555 5.5.4.
	EnableDSN bool

	// EnableCHUNKING advertises CHUNKING (RFC 3030) and accepts BDAT: each
	// chunk is read whatever its reply; a chunk before MAIL gets 503, one
	// after every recipient was refused "554 5.5.1 no valid recipients",
	// and one past MaxMessageBytes 552 (later chunks of that message get
	// 503 until RSET). Without it BDAT gets 502 and the connection is in
	// no state to go on, as with a server that knows no BDAT.
	EnableCHUNKING bool

	// BrokenCHUNKING advertises CHUNKING and then answers BDAT as a server
	// that does not know it: 502, and the chunk that follows is read as
	// commands (the kind of server a client's switch to turn CHUNKING off
	// is for). EnableCHUNKING is then ignored.
	BrokenCHUNKING bool

	// NoPipelining leaves PIPELINING out of the EHLO reply (the server
	// still reads pipelined commands, as any server does).
	NoPipelining bool

	// MaxLineLength is the longest command line, in octets including CRLF,
	// that the server accepts; a longer one gets
	// "500 5.4.0 Too long line, closing connection" and the connection is
	// closed (as go-smtp's server does). A SASL response line after a 334
	// may be up to 12288 octets (RFC 4954 §4) or MaxLineLength, whichever is
	// larger. DATA body lines are not limited. Zero means 2000, go-smtp's
	// default; RFC 5321's command line limit is 512.
	MaxLineLength int

	// Domain is the server's name in the greeting and the EHLO reply. Empty
	// means "mail.test".
	Domain string

	// ReadBuffer, when positive, is the receive buffer (SO_RCVBUF) of every
	// accepted connection, so that a client writing to a server that stopped
	// reading (Stall) blocks after a few KiB rather than a few MiB. Zero
	// leaves the system's default, which Linux grows to several MiB.
	ReadBuffer int

	// Faults are injected misbehaviours; see Fault. Nil means none.
	Faults []Fault

	// ConnectHook, when set, is called for each accepted connection before
	// the greeting with the number of connections open, this one
	// included; a non-nil result is sent instead of the 220 greeting and
	// the connection is closed (as Microsoft 365 answers a connection
	// beyond its limit with "432 4.3.2 Concurrent connections limit
	// exceeded"). Nil greets every connection.
	ConnectHook func(open int) *smtp.SMTPError

	// MailHook, when set, is called for each syntactically valid MAIL; a
	// non-nil result is sent as the reply instead of 250. Nil accepts every
	// sender.
	MailHook func(from string) *smtp.SMTPError

	// RcptHook, when set, is called for each syntactically valid RCPT; a
	// non-nil result is sent as the reply and the recipient is not added.
	// Nil accepts every recipient.
	RcptHook func(to string) *smtp.SMTPError

	// DataHook, when set, is called with the envelope and body after the
	// final dot; a non-nil result is sent as the reply and the message is not
	// recorded. Nil accepts every message.
	DataHook func(from string, to []string, data []byte) *smtp.SMTPError

	// Logf, when set, receives one line per command and reply (t.Logf fits).
	// AUTH initial responses and SASL responses are replaced by "<redacted>"
	// and message bodies are not logged. Nil means silent.
	Logf func(format string, args ...any)
}

// Message is a message the server accepted (a 2xx reply to the final dot).
type Message struct {
	// From is the reverse path of MAIL FROM, without angle brackets.
	From string
	// To are the accepted recipients, in RCPT order.
	To []string
	// RcptOptions are the RCPT parameters, parallel to To.
	RcptOptions []smtp.RcptOptions
	// Data is the body as received: dot-unstuffed, CRLF line ends, without
	// the terminating ".\r\n".
	Data []byte
	// MailOptions are the MAIL FROM parameters (SIZE, BODY, SMTPUTF8, RET,
	// ENVID, AUTH).
	MailOptions smtp.MailOptions
	// TLS reports whether the session was under TLS (STARTTLS or implicit).
	TLS bool
	// AuthUser is the authenticated user name, empty without AUTH.
	AuthUser string
	// Mechanism is the SASL mechanism used to authenticate, empty without
	// AUTH.
	Mechanism string
	// Helo is the name the client gave in EHLO or HELO.
	Helo string
	// Session is the 1-based number of the connection that carried it.
	Session int
	// Chunks is the number of BDAT chunks the message came in; zero when
	// it came after DATA. Data is then the chunks as sent (BDAT has no
	// dot-stuffing).
	Chunks int
}

// Server is a loopback SMTP server for tests, in the manner of
// httptest.Server. All methods are safe for concurrent use.
type Server struct {
	t         testing.TB
	opts      Options
	mechs     []string
	tlsConfig *tls.Config
	ln        net.Listener
	addr      *net.TCPAddr

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	conns      map[net.Conn]struct{}
	sessions   int
	hits       []int
	messages   []Message
	transcript []line
	ended      map[int]bool // sessions whose server side is closed
	waiters    []waiter     // channels of Fired and SessionClosed
}

type line struct {
	session int
	text    string
}

// NewServer starts a server on 127.0.0.1 at a system-chosen port. When t is
// not nil, it registers t.Cleanup(s.Close) and reports setup errors (such as
// an invalid Fault) with t.Fatalf; when t is nil it panics on them instead and
// the caller must call Close.
func NewServer(t testing.TB, opts Options) *Server {
	if t != nil {
		t.Helper()
	}
	s, err := newServer(t, opts)
	if err != nil {
		if t != nil {
			t.Fatalf("smtptest: %v", err)
		}
		panic("smtptest: " + err.Error())
	}
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

func newServer(t testing.TB, opts Options) (*Server, error) {
	// Copy what the caller could change under us.
	opts.Users = maps.Clone(opts.Users)
	opts.Mechanisms = slices.Clone(opts.Mechanisms)
	opts.Faults = slices.Clone(opts.Faults)

	var errs []error
	for i := range opts.Faults {
		if err := opts.Faults[i].validate(); err != nil {
			errs = append(errs, fmt.Errorf("Faults[%d]: %w", i, err))
		}
	}
	if opts.TLS < Plain || opts.TLS > Implicit {
		errs = append(errs, fmt.Errorf("unknown %v", opts.TLS))
	}
	if opts.Cert < CertGood || opts.Cert > CertExpiresSoon {
		errs = append(errs, fmt.Errorf("unknown %v", opts.Cert))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s := &Server{
		t:     t,
		opts:  opts,
		hits:  make([]int, len(opts.Faults)),
		done:  make(chan struct{}),
		conns: map[net.Conn]struct{}{},
		ended: map[int]bool{},
	}
	s.mechs = s.mechanisms()
	if opts.TLS != Plain {
		cfg := &tls.Config{Certificates: []tls.Certificate{Cert(opts.Cert)}}
		if v := opts.MaxTLSVersion; v != 0 {
			cfg.MaxVersion = v
			if v < tls.VersionTLS12 {
				cfg.MinVersion = tls.VersionTLS10
			}
		}
		s.tlsConfig = cfg
	}

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.ln = ln
	s.addr = ln.Addr().(*net.TCPAddr)
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *Server) mechanisms() []string {
	if len(s.opts.Mechanisms) > 0 {
		var m []string
		for _, name := range s.opts.Mechanisms {
			name = strings.ToUpper(strings.TrimSpace(name))
			if name != "" && !slices.Contains(m, name) {
				m = append(m, name)
			}
		}
		return m
	}
	var m []string
	if s.opts.Users != nil {
		m = append(m, "PLAIN", "LOGIN")
	}
	if s.opts.ValidateToken != nil {
		m = append(m, "XOAUTH2", "OAUTHBEARER")
	}
	return m
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary trouble such as EMFILE: back off and retry.
			s.logf("smtptest: accept: %v", err)
			if !s.sleep(10 * time.Millisecond) {
				return
			}
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		if tc, ok := c.(*net.TCPConn); ok && s.opts.ReadBuffer > 0 {
			tc.SetReadBuffer(s.opts.ReadBuffer)
		}
		s.sessions++
		id := s.sessions
		s.conns[c] = struct{}{}
		open := len(s.conns)
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			sess := newSession(s, id, c)
			if h := s.opts.ConnectHook; h != nil {
				if e := callHook(sess, func() *smtp.SMTPError { return h(open) }); e != nil {
					sess.replyError(e)
					sess.finish()
					return
				}
			}
			sess.serve()
		}()
	}
}

// Close closes the listener and every open connection, then waits for all of
// the server's goroutines to end. It is idempotent. It must not be called
// from a hook (it would wait for itself).
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.done)
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
}

// Addr returns the listening address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr.String() }

// Host returns the listening host, "127.0.0.1".
func (s *Server) Host() string { return s.addr.IP.String() }

// Port returns the listening port.
func (s *Server) Port() int { return s.addr.Port }

// CAPEM returns the PEM of the test CA that signs the server's CertGood
// certificate (SharedCA), or nil in Plain mode.
func (s *Server) CAPEM() []byte {
	if s.tlsConfig == nil {
		return nil
	}
	return SharedCA().PEM()
}

// CAPool returns a new pool holding the test CA (see CAPEM), or nil in Plain
// mode.
func (s *Server) CAPool() *x509.CertPool {
	if s.tlsConfig == nil {
		return nil
	}
	return SharedCA().Pool()
}

// ClientTLSConfig returns a client configuration that trusts the test CA and
// verifies the name Host(), or nil in Plain mode.
func (s *Server) ClientTLSConfig() *tls.Config {
	if s.tlsConfig == nil {
		return nil
	}
	return &tls.Config{RootCAs: s.CAPool(), ServerName: s.Host()}
}

// Messages returns a copy of every message the server accepted, in order.
// A message is recorded before the 2xx reply to its final dot is written.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.To = slices.Clone(m.To)
		m.RcptOptions = slices.Clone(m.RcptOptions)
		m.Data = slices.Clone(m.Data)
		out[i] = m
	}
	return out
}

// Transcript returns every line the client sent, across all sessions, in the
// order the server read them: decrypted after STARTTLS, CRLF stripped, AUTH
// lines and SASL responses verbatim (secrets included: never log it in
// production code). A DATA body is not included; instead the line
// "<DATA n bytes>" follows it, n being len(Message.Data), or
// "<DATA n bytes, incomplete>" when the body ended before its final dot.
// A command line longer than MaxLineLength appears as "<LINE TOO LONG>".
//
// A line is recorded when the server reads it, before it replies; a line the
// client sent just before closing may not be there yet until Close returns.
func (s *Server) Transcript() []string {
	return s.lines(0)
}

// SessionTranscript is Transcript restricted to the nth session (1-based, in
// accept order).
func (s *Server) SessionTranscript(n int) []string {
	if n <= 0 {
		return nil
	}
	return s.lines(n)
}

func (s *Server) lines(session int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for _, l := range s.transcript {
		if session == 0 || l.session == session {
			out = append(out, l.text)
		}
	}
	return out
}

// Sessions returns the number of TCP connections accepted so far. A client's
// dial can complete a moment before the server's accept; the count is exact
// once the server has replied on that connection.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Reset forgets the recorded messages and transcript. The session count and
// the Times counters of faults are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = nil
	s.transcript = nil
}

func (s *Server) record(session int, text string) {
	s.mu.Lock()
	s.transcript = append(s.transcript, line{session, text})
	s.mu.Unlock()
}

func (s *Server) deliver(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
}

// sleep waits d or until the server is closed; it reports whether d elapsed.
func (s *Server) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

func (s *Server) domain() string {
	if s.opts.Domain != "" {
		return s.opts.Domain
	}
	return "mail.test"
}

func (s *Server) maxLine() int {
	if s.opts.MaxLineLength > 0 {
		return s.opts.MaxLineLength
	}
	return 2000
}

// formatError renders an SMTPError as reply bytes, as go-smtp's server does:
// EnhancedCodeNotSet becomes X.0.0 for 2xx, 4xx and 5xx.
func formatError(e *smtp.SMTPError) []byte {
	ec := e.EnhancedCode
	if ec == smtp.EnhancedCodeNotSet {
		switch c := e.Code / 100; c {
		case 2, 4, 5:
			ec = smtp.EnhancedCode{c, 0, 0}
		default:
			ec = smtp.NoEnhancedCode
		}
	}
	lines := strings.Split(e.Message, "\n")
	var b strings.Builder
	code := strconv.Itoa(e.Code)
	for i, l := range lines {
		b.WriteString(code)
		if i < len(lines)-1 {
			b.WriteByte('-')
		} else {
			b.WriteByte(' ')
		}
		if ec != smtp.NoEnhancedCode {
			fmt.Fprintf(&b, "%d.%d.%d ", ec[0], ec[1], ec[2])
		}
		b.WriteString(strings.TrimRight(l, "\r"))
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
