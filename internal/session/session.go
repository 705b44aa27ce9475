// Package session opens and secures one SMTP session: it dials under the
// dial policy, starts implicit TLS or STARTTLS (refusing bytes injected
// before the handshake, and forcing the handshake before anything else is
// sent), says EHLO and reads the extensions once, and runs AUTH with a SASL
// client it is given. It is built on go-smtp's client: go-smtp reads the
// greeting, says EHLO, authenticates and runs lockstep transactions; the
// session adds what go-smtp cannot do: STARTTLS on a session it already
// greeted, and pipelined commands (RFC 2920) and BDAT chunks (RFC 3030),
// written and read on the same connection (Flight, Reply, Chunks).
//
// The session knows nothing of reports or of emailconn's error kinds: it
// tells Hooks what happens, and returns every failure as an *Error naming
// the stage and the typed cause, which the caller classifies.
package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"net/textproto"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/smtpconn"
	"github.com/emailconn/emailconn/internal/transcript"
)

// The stages of a session, named as emailconn.Stage names them.
const (
	StageResolve  = "resolve"
	StageConnect  = "connect"
	StageTLS      = "tls"
	StageGreeting = "greeting"
	StageEHLO     = "ehlo"
	StageSTARTTLS = "starttls"
	StageToken    = "oauth2 token"
	StageAuth     = "auth"
)

// Mode is how a session is secured.
type Mode int

// The modes.
const (
	ModeNone          Mode = iota // plaintext
	ModeImplicit                  // TLS from the first byte
	ModeStartTLS                  // STARTTLS, required
	ModeOpportunistic             // STARTTLS when offered and accepted, else plaintext
)

// Causes of a failure that has no error of its own.
var (
	// ErrNoSTARTTLS: STARTTLS is required and the server does not offer it.
	ErrNoSTARTTLS = errors.New("server does not offer STARTTLS")
	// ErrInjection: bytes arrived that were not asked for before TLS
	// started.
	ErrInjection = errors.New("server sent data after its reply to STARTTLS (possible command injection); not starting TLS on this session")
	// ErrPhaseTimeout: the connect timeout expired while resolving or
	// connecting.
	ErrPhaseTimeout = errors.New("connect timeout expired")
)

// An Error is a failure at one stage of a session.
type Error struct {
	Stage  string
	Err    error  // the cause
	Remote string // the address connected to; "" before the connection
	// Usable reports that the client refused to go on: the session itself
	// is in a known state and may be ended with QUIT.
	Usable bool
	// Ended reports that the connection had been closed because the
	// context bound to it ended.
	Ended bool
}

func (e *Error) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Config says how sessions are opened. Open does not modify it; one Config
// serves every session of a sender, concurrently.
type Config struct {
	Host      string
	Port      int
	Mode      Mode
	TLS       *tls.Config
	LocalName string
	// ConnectTimeout bounds resolving, connecting, TLS and EHLO; zero means
	// none. SendTimeout bounds each reply; zero means none.
	ConnectTimeout, SendTimeout time.Duration
	// Lookup resolves Host; nil means net.DefaultResolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial opens a connection to one "ip:port".
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Guard, when not nil, is asked about every address before it is
	// dialled; OnBlocked hears of each refusal.
	Guard     *dialguard.Policy
	OnBlocked func(ctx context.Context, addr netip.AddrPort, reason string)
	// Transcript, when not nil, returns the function that receives every
	// line of the session (credentials redacted), or nil for none.
	Transcript func(ctx context.Context, remote string) func(fromClient bool, line string)
	// Auth, when not nil, runs AUTH once the session is secured.
	Auth func(ctx context.Context, s *Session) error
	// Hooks hear of every stage; nil means none.
	Hooks *Hooks
}

// QuitTimeout bounds the polite QUIT that ends a session: the send
// timeout, at most 5 seconds.
func (cfg *Config) QuitTimeout() time.Duration {
	if cfg.SendTimeout > 0 && cfg.SendTimeout < 5*time.Second {
		return cfg.SendTimeout
	}
	return 5 * time.Second
}

// Session is one SMTP session, established, secured and authenticated.
// It is used by one goroutine at a time.
type Session struct {
	Client    *smtp.Client
	Conn      *smtpconn.Conn
	TLS       *tls.ConnectionState // nil for plaintext
	Remote    string               // the address connected to
	Mechanism string               // the SASL mechanism used; "" without AUTH
	Opened    time.Time

	cfg     *Config
	hooks   *Hooks
	tap     *smtpconn.Tap
	ext     map[string]string // the extensions of the last EHLO, upper-case keywords
	lines   []string          // the same, as the server wrote them
	capture *capture          // reads the greeting and EHLO replies; nil once established
	rec     *transcript.Recorder
	secrets []string // what AUTH sent, in every form a server may echo
	counted bool     // reported open to Hooks.Opened, not yet closed

	// Pipelining and chunking (pipeline.go), on the current Tap.
	flight Flight
	br     *bufio.Reader
	tr     *textproto.Reader
	bw     *bufio.Writer
	chunk  []byte
}

// Open establishes a session under cfg: resolve, connect, TLS, greeting,
// EHLO, STARTTLS and the EHLO after it — all within ConnectTimeout — then
// cfg.Auth. A failure is an *Error; the connection is then closed, after a
// QUIT when the session was still in a known state.
func Open(ctx context.Context, cfg *Config) (*Session, error) {
	start := time.Now()
	phaseCtx, deadline := ctx, time.Time{}
	if cfg.ConnectTimeout > 0 {
		deadline = start.Add(cfg.ConnectTimeout)
		var cancel context.CancelFunc
		phaseCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	raw, err := cfg.reach(ctx, phaseCtx)
	if err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, hooks: cfg.Hooks, Opened: start, Remote: raw.RemoteAddr().String(), capture: &capture{}}
	s.hooks.connected(ctx, s.Remote)
	s.Conn = smtpconn.New(raw, smtpconn.Options{SendTimeout: cfg.SendTimeout})
	s.Conn.SetPhaseDeadline(deadline)
	release := s.Conn.Bind(ctx)
	defer release()
	if cfg.Transcript != nil {
		if emit := cfg.Transcript(ctx, s.Remote); emit != nil {
			s.rec = &transcript.Recorder{Emit: func(fromClient bool, line string) {
				if !fromClient {
					line = s.Scrub(line)
				}
				emit(fromClient, line)
			}}
		}
	}
	err = s.establish(ctx)
	if err == nil {
		s.Conn.SetPhaseDeadline(time.Time{})
		s.capture = nil
		if cfg.Auth != nil {
			err = cfg.Auth(ctx, s)
		}
	}
	if err != nil {
		s.End(err)
		return nil, err
	}
	s.hooks.opened(ctx, s)
	return s, nil
}

// Fail returns err, an error of stage, as an *Error, with the session's
// credentials redacted from a server reply (a *smtp.SMTPError).
func (s *Session) Fail(stage string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	// A reply as go-smtp returned it; the caller's own errors (which may
	// hold replies, already their own) are left as they are.
	if se, ok := err.(*smtp.SMTPError); ok && len(s.secrets) > 0 {
		err = &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: s.Scrub(se.Message)}
	}
	return &Error{Stage: stage, Err: err, Remote: s.Remote, Ended: s.Conn.Err() != nil}
}

// failStage reports err as the failure of stage, begun at start.
func (s *Session) failStage(ctx context.Context, stage string, start time.Time, err error) error {
	e := s.Fail(stage, err)
	s.hooks.stage(ctx, stage, start, time.Now(), e)
	return e
}

// Has reports whether the server offered the extension (upper case).
func (s *Session) Has(ext string) bool {
	_, ok := s.ext[ext]
	return ok
}

// Extension returns the parameters of an offered extension.
func (s *Session) Extension(ext string) (string, bool) {
	v, ok := s.ext[ext]
	return v, ok
}

// Extensions returns the EHLO lines after the first, as the server wrote
// them. The caller must not modify them.
func (s *Session) Extensions() []string { return s.lines }

// Quit says QUIT within the quit timeout and closes the session.
func (s *Session) Quit() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.QuitTimeout())
	defer cancel()
	release := s.Conn.Bind(ctx)
	_ = s.Client.Quit()
	release()
	s.Close()
}

// Close closes the connection.
func (s *Session) Close() {
	_ = s.Conn.Close()
	if s.hooks != nil {
		s.hooks.closed(s)
	}
}

// End ends a session after err. When the session is still in a known
// state — the server's last word was a reply other than 421, or the client
// refused to go on before anything failed — it says QUIT first (bounded by
// the quit timeout), so that the server sees a polite end rather than a
// lost connection. The session must not be bound to a context other than
// the one it is bound to now.
func (s *Session) End(err error) {
	var e *Error
	usable := (errors.As(err, &e) && e.Usable) || KeepAfterReply(err)
	if usable && s.Client != nil && s.Conn.Err() == nil {
		s.Conn.SetPhaseDeadline(time.Now().Add(s.cfg.QuitTimeout()))
		_ = s.Client.Quit()
	}
	s.Close()
}

// KeepAfterReply reports whether a session is still usable after err: the
// server replied with something other than 421.
func KeepAfterReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code != 421
}
