package emailconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn/internal/actionlink"
	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/throttle"
)

// Options configures a Sender, or every Sender of a Registry. The zero
// value, and a nil *Options, give the defaults documented on each field.
type Options struct {
	// Sending: what every Sender does with a message.

	// Logger receives what was sent where and how long it took (Info), failed
	// attempts (Warn), and at Debug level the SMTP transcript with every
	// credential replaced by "[redacted]" and message content left out.
	// Nil means silent.
	Logger *slog.Logger

	// Trace observes every session the Sender opens for a send and every
	// mail transaction (see Trace); Test Connection records the same
	// events into its report instead. Nil means none, at no cost.
	Trace *Trace

	// ActionOrigin is the engine's own origin of the action links it puts in
	// messages, as "scheme://host[:port]". Links under it are rewritten
	// with the connection's Email Actions Base URL. Zero means action links
	// in bodies are not recognised: a message with a body (Text or HTML)
	// sent through a connection with an Email Actions Base URL then fails
	// with ErrInvalid naming Options.ActionOrigin, since its links could not
	// be rewritten; every other connection and message is unaffected.
	ActionOrigin string

	// Retry is the policy for retrying a send that failed transiently where
	// the server cannot have accepted the message.
	Retry RetryPolicy

	// References says which "env:" and "file:" references in secrets, and
	// which CAFile paths, may be read: list only what everyone who may
	// enter a connection may use (see References and the README's
	// Security section). Zero means none: secrets must be literals and
	// CAFile must be empty, the safe rule for configuration from users.
	References References

	// DialPolicy limits which addresses may be dialled — mail servers and
	// OAuth2 token endpoints — for engines that let tenants type in a mail
	// server. It is enforced on the resolved address at connect time, so
	// DNS rebinding cannot bypass it. Each refusal is logged to Logger
	// (Warn) with its address and reason; tenants see only ErrBlocked.
	// Nil means any address.
	DialPolicy *DialPolicy

	// DialContext, when set, opens the connections to mail servers instead
	// of a net.Dialer, for engines behind a SOCKS5 or HTTP CONNECT proxy
	// (the DialContext method of golang.org/x/net/proxy's dialers fits) or
	// that reach a local relay over a Unix socket. The Sender still
	// resolves the mail server's name itself and passes one "ip:port" at a
	// time with network "tcp", so DialPolicy judges the address the proxy
	// is asked to reach before DialContext is called, and TLS is verified
	// against the mail server's name end to end. What the policy cannot
	// check through the hook: the address of the proxy itself (the hook's
	// own business), and whether the hook connects where it is told (a
	// Unix socket ignores the address). Because the Sender cannot see the
	// peer, the loopback exception for credentials does not apply:
	// credentials are sent only over verified TLS or with
	// Connection.AllowInsecureAuth. Receipts and Test Connection report the
	// address passed to the hook. OAuth2 token requests do not use it (give
	// an HTTPClient whose Transport does). Zero means a net.Dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Sessions: the pool of SMTP sessions each connection keeps.

	// MaxSessions bounds the SMTP sessions one connection holds open at
	// once; further sends wait for a free session. A connection's own
	// MaxSessions, or its provider's limit, wins. Zero means 4.
	MaxSessions int

	// IdleTimeout closes a session that was not used for this long. Zero
	// means 30 seconds; negative means sessions are closed after each send.
	IdleTimeout time.Duration

	// MaxSessionAge closes a session this long after it was opened. Zero
	// means 5 minutes.
	MaxSessionAge time.Duration

	// MaxMessagesPerSession closes a session after this many messages.
	// Zero means no limit other than MaxSessionAge (as Postfix reuses its
	// connections); a server that ends a session itself is handled.
	MaxMessagesPerSession int

	// OAuth2: token requests, for the Registry and TestOAuth2.

	// OnRefreshToken is called when the token endpoint of an OAuth2
	// configuration with "refresh_token" returns a new refresh token
	// (rotation), before the new access token is used: persist it, or the
	// next restart will present a revoked token. When the configuration's
	// RefreshToken is a literal, the Registry also keeps the new one in its
	// configuration (Config and Config.Save return it); when it is an
	// "env:" or "file:" reference, persisting it is the callback's job. An
	// error is logged and the new token is used anyway (the old one is
	// usually no longer valid); it stays in memory and is handed to the
	// callback again at the next refresh. A panic in the callback is
	// recovered and treated as an error: it cannot end the process.
	// Registry.TestOAuth2 reports a failure to save in its Hints. Zero
	// means rotated tokens are kept in memory, and in a literal
	// RefreshToken.
	OnRefreshToken func(ctx context.Context, oauth2Config, refreshToken string) error

	// HTTPClient makes OAuth2 token requests. Zero means a client that
	// times out after 30 seconds, does not follow redirects (a redirected
	// request would resend the client secret) and dials under DialPolicy;
	// a Registry makes one for all its OAuth2 configurations and closes its
	// keep-alive connections on Close.
	// A client given here is used as it is: DialPolicy does not apply to it.
	HTTPClient *http.Client

	// Store is the state shared by the nodes of one engine: OAuth2
	// tokens and their refresh lease, each connection's session slots
	// and message-rate window, and the delivery ledger (see Store and
	// NewSQLStore). When the store cannot decide, a send that needs it
	// fails its attempt with ErrStore (temporary, nothing sent) rather
	// than fall back to per-node limits or refresh a token without the
	// lease; a cached access token that is still valid is used without
	// it. Daily caps and the pause after a throttling reply stay per
	// node. Zero means state kept in this process only, right for an
	// engine with one node.
	Store Store

	// DeliveryRetention is how long the delivery ledger keeps the record
	// of a message with an IdempotencyKey after its last write: a retry
	// later than that is sent as a new message. Zero means 72 hours.
	DeliveryRetention time.Duration

	// local is the ledger's store when Store is nil: one per NewSender,
	// one per Registry for all its Senders.
	local *localStore

	// test seams: resolving and dialling.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)

	// test seams of the limits (issue 14): the clock of the rate, pause
	// and quotas (nil: the system clock), and the length of a provider's
	// minute and day (zero: a minute, 24 hours), so tests run in seconds.
	clock       throttle.Clock
	limitMinute time.Duration
	limitDay    time.Duration

	// Options.Store (sharedstate.go): the owner of this Sender's or
	// Registry's leases, set by its constructor, and the lease time
	// (zero: 30 s), a test seam.
	owner    string
	leaseTTL time.Duration

	// pollHook, when set, is called each time a send waiting for another
	// send of its IdempotencyKey has set its timer to read the record
	// again (issue 16), so that a test moves the fake clock only then.
	pollHook func()
}

// A DialPolicy limits the addresses a Sender, Test Connection and the
// OAuth2 token requests may connect to. Whatever it says, link-local and
// cloud-metadata addresses (169.254.0.0/16 including 169.254.169.254,
// fe80::/10, fd00:ec2::254, 100.100.100.200), unspecified, multicast and
// broadcast addresses are refused, also when embedded in IPv6 (IPv4-mapped,
// NAT64, 6to4, Teredo). Loopback, private (RFC 1918, fc00::/7) and CGNAT
// (100.64.0.0/10) addresses are refused unless allowed. Every refusal is the
// same error, ErrBlocked, whatever lies behind the address.
//
// The zero DialPolicy allows only public addresses on any port.
type DialPolicy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1.
	AllowLoopback bool
	// AllowPrivate allows 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 and
	// fc00::/7, for internal relays.
	AllowPrivate bool
	// AllowCGNAT allows 100.64.0.0/10.
	AllowCGNAT bool
	// Allow lists further prefixes to allow, such as one internal relay's
	// address. It never allows the always-refused addresses.
	Allow []netip.Prefix
	// Ports, when not empty, are the only ports that may be dialled, for
	// example 25, 465, 587 and 2525 (and 443 for token endpoints). Zero
	// means any port.
	Ports []int
}

// guard returns the dial policy as the dialler enforces it, logging each
// refusal with its address and reason to Options.Logger for the
// administrator (tenants see only ErrBlocked); nil without a policy.
func (o *Options) guard() *dialguard.Policy {
	p := o.DialPolicy
	if p == nil {
		return nil
	}
	return &dialguard.Policy{AllowLoopback: p.AllowLoopback, AllowPrivate: p.AllowPrivate, AllowCGNAT: p.AllowCGNAT,
		Allow: p.Allow, Ports: p.Ports, Logger: o.Logger}
}

func (o *Options) maxSessions() int {
	if o.MaxSessions <= 0 {
		return 4
	}
	return o.MaxSessions
}

func (o *Options) idleTimeout() time.Duration {
	if o.IdleTimeout == 0 {
		return 30 * time.Second
	}
	return o.IdleTimeout
}

func (o *Options) maxAge() time.Duration {
	if o.MaxSessionAge <= 0 {
		return 5 * time.Minute
	}
	return o.MaxSessionAge
}

func (o *Options) maxMessages() int {
	if o.MaxMessagesPerSession <= 0 {
		return math.MaxInt
	}
	return o.MaxMessagesPerSession
}

// A Sender sends messages through one Connection, keeping SMTP sessions
// open between sends and reusing them. It is safe for concurrent use by
// many goroutines. Close it when done. Make one with NewSender or get one
// from a Registry; the zero value returns an ErrInvalid error.
type Sender struct {
	conn   Connection
	ep     endpoint
	opts   Options
	tlsCfg *tls.Config
	base   *actionlink.Base   // nil: action links are left alone
	origin *actionlink.Origin // nil: no ActionOrigin
	tokens tokenSource        // OAuth2 connections: the configuration's token cache
	open   *opener            // opens the sessions of sends

	regClosed *atomic.Bool // the closed flag of the Registry that made it; nil for NewSender
	lim       *sendLimits  // the connection's limits and their state

	slots chan struct{} // one per session in use or being opened

	// With Options.Store: when demand last asked whether another node
	// wants a session slot, and its answer (sharedstate.go).
	demandAt atomic.Int64
	wanted   atomic.Bool

	mu      sync.Mutex
	idle    []*pconn
	state   senderState
	sweeper *time.Timer    // closes sessions idle for longer than IdleTimeout; nil when not armed
	sweeps  sync.WaitGroup // an armed sweeper and the closing it leads to
}

type senderState int

const (
	stateOpen     senderState = iota
	stateDraining             // still sends, keeps no sessions (replaced in a Registry)
	stateClosed
)

// NewSender returns a Sender for c, which must be valid; the error lists
// every problem. opts may be nil. The Sender keeps its own copy of c and
// opts.
func NewSender(c Connection, opts *Options) (*Sender, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	var p problems
	c.validate(&p, goNames)
	ca := c.checkRefs(&p, goNames, &o.References)
	if c.authType() == authOAuth2 {
		p.add("AuthType", "OAuth2 connections send through a Registry, which holds their OAuth2 configuration")
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return newSender(c, o, ca)
}

// newSender builds a Sender for a valid connection whose references were
// checked; ca holds the certificates of its CAFile, read by checkRefs.
func newSender(c Connection, o Options, ca *x509.CertPool) (*Sender, error) {
	if o.local == nil {
		o.local = new(localStore)
	}
	s := &Sender{conn: c, ep: c.endpoint(), opts: o}
	s.conn.To = slices.Clone(c.To)
	s.lim = newSendLimits(&s.conn, &o)
	maxSessions := o.maxSessions()
	if s.lim.l.MaxSessions > 0 {
		maxSessions = s.lim.l.MaxSessions
	}
	s.slots = make(chan struct{}, maxSessions)
	if o.Store != nil {
		s.shareState()
	}
	if it := s.lim.l.IdleTimeout; it > 0 && s.opts.idleTimeout() > 0 {
		// The provider closes idle sessions (SES: 10 s): close ours first.
		s.opts.IdleTimeout = max(min(s.opts.idleTimeout(), it-2*time.Second), time.Second)
	}
	s.tlsCfg = &tls.Config{ServerName: s.ep.host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		if ca == nil {
			return nil, &FieldError{Field: "CAFile", Problem: "was not read: its references were not checked"}
		}
		s.tlsCfg.RootCAs = ca
	}
	if c.RootCAs != nil {
		s.tlsCfg.RootCAs = c.RootCAs.Clone()
	}
	if c.ActionsBaseURL != "" {
		base, err := actionlink.ParseBase(c.ActionsBaseURL)
		if err != nil {
			return nil, &FieldError{Field: "ActionsBaseURL", Problem: err.Error()}
		}
		s.base = base
	}
	if o.ActionOrigin != "" {
		origin, err := actionlink.ParseOrigin(o.ActionOrigin)
		if err != nil {
			return nil, &FieldError{Field: "Options.ActionOrigin", Problem: err.Error()}
		}
		s.origin = origin
	}
	s.open = s.newOpener(o.Trace)
	return s, nil
}

// Close closes the idle sessions and makes later sends fail with ErrClosed.
// Sends in progress finish; their sessions are closed when they do.
func (s *Sender) Close() error {
	s.shutdown(stateClosed)
	return nil
}

// String describes the Sender by its connection, with every secret
// redacted. Format and LogValue print the same for every verb and
// handler, so a Sender printed by mistake reveals no secret.
func (s *Sender) String() string {
	if s == nil {
		return "emailconn.Sender(nil)"
	}
	return "emailconn.Sender{" + s.conn.String() + "}"
}

// Format writes String for every verb.
func (s *Sender) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, s.String()) }

// LogValue returns String as a slog value.
func (s *Sender) LogValue() slog.Value { return slog.StringValue(s.String()) }

// errZeroSender is returned by a Sender that was not made by NewSender or
// a Registry.
var errZeroSender = &FieldError{Field: "Sender", Problem: "was not created with NewSender or by a Registry"}

// describe names the Sender's connection in a problem.
func (s *Sender) describe() string {
	if s.conn.Name == "" {
		return "the connection"
	}
	return "connection " + strconv.Quote(s.conn.Name)
}

// Send sends msg and returns what the server said. It blocks until the
// server replied, the message failed, or ctx is done — whichever is first;
// a cancelled send closes its session and returns an error that matches
// ctx's error.
//
// Before any network I/O, the message and its addresses are checked: CR or
// LF in a header value or an address, a malformed address, an address that
// would smuggle SMTP parameters, or a structural header in Headers is
// refused with ErrInvalid.
//
// A message refused by the server returns ErrRefused or
// ErrRecipientRejected with the server's *SMTPError. When some recipients
// are refused and others accepted, the message is delivered to the
// accepted ones and Send returns both a Receipt listing them and an error
// matching ErrRecipientRejected — resend only to the refused, if at all.
// If the connection fails after the whole message was sent and before the
// server replied, Send returns ErrDeliveryUnknown and does not retry.
//
// A message with an IdempotencyKey is sent at most once per key: Send
// first reads or writes the key's record in the delivery ledger, and
// records the outcome before it returns (see Message.IdempotencyKey).
func (s *Sender) Send(ctx context.Context, msg *Message) (*Receipt, error) {
	return s.send(ctx, msg, "", nil)
}

// SendRaw sends a message that is already in RFC 5322 form, read from r,
// from the envelope sender from to the envelope recipients to. Every bare
// CR and bare LF becomes CRLF, so that nothing in r can end the message
// early or smuggle a second one; a NUL byte or a line longer than 998
// bytes fails the send. The message is streamed; when r is an io.Seeker a
// failed attempt can be retried from r's position at the call. Otherwise
// SendRaw behaves like Send.
func (s *Sender) SendRaw(ctx context.Context, from string, to []string, r io.Reader) (*Receipt, error) {
	return s.sendRaw(ctx, from, to, r)
}

// send prepares msg and delivers it; fallbackFrom and fallbackTo come from a
// route.
func (s *Sender) send(ctx context.Context, msg *Message, fallbackFrom string, fallbackTo []string) (*Receipt, error) {
	if s.slots == nil {
		return nil, errZeroSender
	}
	start := time.Now()
	ctx = s.traceStart(ctx)
	pr, err := s.prepare(msg, fallbackFrom, fallbackTo)
	if err != nil {
		s.traceDone(ctx, nil, start, err)
		return nil, err
	}
	var rc *Receipt
	if msg.IdempotencyKey != "" {
		rc, err = s.sendKeyed(ctx, msg, pr, start)
	} else {
		rc, err = s.deliver(ctx, pr, start)
	}
	s.traceDone(ctx, pr, start, err)
	return rc, err
}

func (s *Sender) sendRaw(ctx context.Context, from string, to []string, r io.Reader) (*Receipt, error) {
	if s.slots == nil {
		return nil, errZeroSender
	}
	start := time.Now()
	ctx = s.traceStart(ctx)
	var p problems
	fromAddr, _ := parseAddress(&p, "from", from)
	pr := &prepared{raw: r, replay: true}
	for i, t := range to {
		if a, ok := parseAddress(&p, fmt.Sprintf("to[%d]", i), t); ok {
			pr.rcpts = append(pr.rcpts, a.Address)
		}
	}
	if len(to) == 0 {
		p.add("to", "is required")
	}
	if r == nil {
		p.add("r", "is nil")
	}
	if err := p.err(); err != nil {
		s.traceDone(ctx, nil, start, err)
		return nil, err
	}
	pr.envFrom = fromAddr.Address
	pr.utf8 = compose.NeedsSMTPUTF8(append([]string{pr.envFrom}, pr.rcpts...)...)
	if rw, ok := seekerOf(r); ok {
		pr.rewinds = []rewind{rw}
	} else {
		pr.replay = false
	}
	pr.size = sizeOf(r)
	rc, err := s.deliver(ctx, pr, start)
	s.traceDone(ctx, pr, start, err)
	return rc, err
}

func (s *Sender) logSent(ctx context.Context, pr *prepared, rc *Receipt) {
	l := s.opts.Logger
	if l == nil {
		return
	}
	l.LogAttrs(ctx, slog.LevelInfo, "email sent",
		slog.String("connection", s.conn.Name), slog.String("server", rc.Server),
		slog.String("messageID", rc.MessageID), slog.String("from", pr.envFrom),
		slog.Any("to", rc.Accepted), slog.Int("rejected", len(rc.Rejected)),
		slog.String("tls", rc.TLSVersion), slog.String("mechanism", rc.Mechanism),
		slog.Int("attempts", rc.Attempts), slog.Duration("duration", rc.Duration),
		slog.String("reply", rc.Reply))
}

func (s *Sender) logFailed(ctx context.Context, pr *prepared, err error, attempt int, retrying bool) {
	l := s.opts.Logger
	if l == nil {
		return
	}
	msg := "email not sent"
	if retrying {
		msg = "email attempt failed; retrying"
	}
	l.LogAttrs(ctx, slog.LevelWarn, msg,
		slog.String("connection", s.conn.Name), slog.String("server", s.ep.addr()),
		slog.String("messageID", pr.messageID()), slog.String("from", pr.envFrom),
		slog.Int("recipients", len(pr.rcpts)), slog.Int("attempt", attempt), slog.String("error", err.Error()))
}

// isConnReset reports a connection reset or a write to a closed one.
