package emailconn

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/actionlink"
	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/smtpconn"
	"github.com/emailconn/emailconn/internal/transcript"
)

// Options configures a Sender, or every Sender of a Registry. The zero
// value, and a nil *Options, give the defaults documented on each field.
type Options struct {
	// Logger receives what was sent where and how long it took (Info), failed
	// attempts (Warn), and at Debug level the SMTP transcript with every
	// credential replaced by "[redacted]" and message content left out.
	// Nil means silent.
	Logger *slog.Logger

	// ActionOrigin is the engine's own origin of the action links it puts in
	// messages, as "scheme://host[:port]". Links under it are rewritten
	// with the connection's Email Actions Base URL. Zero means action links
	// in bodies are not recognised: a message with a body (Text or HTML)
	// sent through a connection with an Email Actions Base URL then fails
	// with ErrInvalid naming Options.ActionOrigin, since its links could not
	// be rewritten; every other connection and message is unaffected.
	ActionOrigin string

	// MaxSessions bounds the SMTP sessions one connection holds open at
	// once; further sends wait for a free session. Zero means 4.
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

	// Retry is the policy for retrying a send that failed transiently where
	// the server cannot have accepted the message.
	Retry RetryPolicy

	// OnRefreshToken is called when the token endpoint of an OAuth2
	// configuration with GrantRefreshToken returns a new refresh token
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

	// References says which "env:" and "file:" references in secrets, and
	// which CAFile paths, may be read: list only what everyone who may
	// enter a connection may use (see References and the README's
	// Security section). Zero means none: secrets must be literals and
	// CAFile must be empty, the safe rule for configuration from users.
	References References

	// DialPolicy limits which addresses may be dialled — mail servers and
	// OAuth2 token endpoints — for engines that let tenants type in a mail
	// server. It is enforced on the resolved address at connect time, so
	// DNS rebinding cannot bypass it. Nil means any address.
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

	// test seams: resolving and dialling.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

// RetryPolicy says how often and how fast a send is retried after a
// transient failure: the connection was refused or reset, a timeout
// expired, or the server replied 4xx — but only where the server cannot
// have accepted the message. A message whose delivery is unknown
// (ErrDeliveryUnknown), or that the server refused permanently, is never
// retried. Waits are exponential with full jitter and end with the caller's
// context.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first one included. Zero
	// means 3; 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the longest wait before the second attempt; each
	// further wait doubles it. Zero means 500 milliseconds.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait. Zero means 10 seconds.
	MaxBackoff time.Duration
}

func (p RetryPolicy) attempts() int {
	if p.MaxAttempts <= 0 {
		return 3
	}
	return p.MaxAttempts
}

// backoff returns the wait before attempt n (n ≥ 2): a uniformly random
// duration up to min(MaxBackoff, InitialBackoff·2^(n-2)).
func (p RetryPolicy) backoff(n int) time.Duration {
	base, maxB := p.InitialBackoff, p.MaxBackoff
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 10 * time.Second
	}
	d := base
	for i := 2; i < n && d < maxB; i++ {
		d *= 2
	}
	d = min(d, maxB)
	return time.Duration(rand.Int64N(int64(d) + 1))
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
	// Logger receives each refusal with its address and reason, for the
	// administrator; tenants see only ErrBlocked. Nil means silent.
	Logger *slog.Logger
}

func (p *DialPolicy) guard() *dialguard.Policy {
	if p == nil {
		return nil
	}
	return &dialguard.Policy{AllowLoopback: p.AllowLoopback, AllowPrivate: p.AllowPrivate, AllowCGNAT: p.AllowCGNAT,
		Allow: p.Allow, Ports: p.Ports, Logger: p.Logger}
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

// A Message is a notification to send. Addresses are "user@example.com" or
// "Name <user@example.com>". Every header value is checked before anything
// is sent: CR, LF and NUL are refused, not escaped.
type Message struct {
	// From is the sender. Zero means the route's or connection's From.
	From string
	// To and Cc are the visible recipients; Bcc receive the message without
	// appearing in it. Zero To means the route's To (an activity node's
	// recipients, else the connection's or the grid's To), else the
	// connection's To. Cc and Bcc always add to the recipients and never
	// replace the default To: a compliance Bcc keeps the real recipients.
	To, Cc, Bcc []string
	// ReplyTo sets the Reply-To field. Zero means none.
	ReplyTo []string
	// Subject is plain text; non-ASCII is encoded per RFC 2047.
	Subject string
	// Text and HTML are the bodies; with both, the message is
	// multipart/alternative. Action links under Options.ActionOrigin are
	// rewritten with the connection's Email Actions Base URL.
	Text, HTML string
	// Attachments are streamed from their readers as the message is sent.
	Attachments []Attachment
	// Headers are extra header fields, such as "X-Workunit": "42",
	// written in key order. Structural fields (From, To, Subject, …) are
	// refused here.
	Headers map[string]string
	// Date is the Date field. Zero means the time of the first attempt.
	Date time.Time
	// MessageID is the Message-ID without angle brackets. Zero means a
	// random one; it stays the same across retries and is returned in the
	// Receipt, so a caller can recognise a duplicate.
	MessageID string
	// RequireAllRecipients sends the message only if the server accepts
	// every recipient. Zero means it is delivered to the accepted
	// recipients and the refused ones are reported (ErrRecipientRejected
	// with a non-nil Receipt).
	RequireAllRecipients bool
}

// An Attachment is a file sent with a message, or an image the HTML body
// shows inline ("cid:" + ContentID).
type Attachment struct {
	// Filename is the name suggested to the recipient.
	Filename string
	// ContentType is the media type. Zero means one guessed from Filename,
	// else application/octet-stream.
	ContentType string
	// Content is read as the message is sent and never held in memory
	// whole. When it is an io.Seeker, a failed attempt can be retried from
	// the position it had when Send was called; otherwise a send that failed
	// after the message upload began is not retried.
	Content io.Reader
	// Inline marks an image shown by the HTML body.
	Inline bool
	// ContentID identifies an inline image. Required when Inline.
	ContentID string
	// Size is the length of Content in bytes, when known, so that a message
	// too large for the server fails before it is uploaded. Zero means
	// unknown (an *os.File's size is found by itself).
	Size int64
}

// A Receipt tells what happened to a message the server accepted.
type Receipt struct {
	// MessageID is the message's Message-ID, without angle brackets.
	MessageID string
	// Reply is the server's final reply to the message, for example
	// "2.0.0 Ok: queued as 4VxYz1".
	Reply string
	// QueueID is the queue identifier found in Reply, when there is one.
	QueueID string
	// Accepted are the recipients the server accepted.
	Accepted []string
	// Rejected are the recipients the server refused; the message was not
	// delivered to them.
	Rejected []RecipientError
	// Server is the address the session was connected to.
	Server string
	// TLSVersion is "TLS 1.2" or "TLS 1.3", or "" for a plaintext session.
	TLSVersion string
	// Mechanism is the SASL mechanism used, or "" without authentication.
	Mechanism string
	// Attempts is the number of attempts it took.
	Attempts int
	// Duration is the time from the call to the server's reply.
	Duration time.Duration
}

// A Sender sends messages through one Connection, keeping SMTP sessions
// open between sends and reusing them. It is safe for concurrent use by
// many goroutines. Close it when done. Make one with NewSender or get one
// from a Registry; the zero value returns an ErrInvalid error.
type Sender struct {
	conn     Connection
	ep       endpoint
	opts     Options
	tlsCfg   *tls.Config
	base     *actionlink.Base   // nil: action links are left alone
	origin   *actionlink.Origin // nil: no ActionOrigin
	authType AuthType
	tokens   tokenSource // OAuth2 connections: the configuration's token cache

	regClosed *atomic.Bool // the closed flag of the Registry that made it; nil for NewSender

	slots   chan struct{} // one per session in use or being opened
	mu      sync.Mutex
	idle    []*session
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
	c.checkRefs(&p, goNames, &o.References)
	if c.authType() == AuthOAuth2 {
		p.add("AuthType", "OAuth2 connections send through a Registry, which holds their OAuth2 configuration")
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return newSender(c, o)
}

// newSender builds a Sender for a valid connection.
func newSender(c Connection, o Options) (*Sender, error) {
	s := &Sender{conn: c, ep: c.endpoint(), opts: o, authType: c.authType()}
	s.conn.To = slices.Clone(c.To)
	s.slots = make(chan struct{}, o.maxSessions())
	s.tlsCfg = &tls.Config{ServerName: s.ep.host, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pool, msg := o.References.loadCAFile(c.CAFile)
		if msg != "" {
			return nil, &FieldError{Field: "CAFile", Problem: msg}
		}
		s.tlsCfg.RootCAs = pool
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
	return s, nil
}

// Connection returns the connection the Sender sends through.
func (s *Sender) Connection() Connection {
	c := s.conn
	c.To = slices.Clone(c.To)
	return c
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

// retire keeps the Sender usable but stops it from keeping sessions: a
// Registry retires the senders of a replaced configuration, whose routes
// may still be held by callers.
func (s *Sender) retire() { s.shutdown(stateDraining) }

func (s *Sender) shutdown(to senderState) {
	s.mu.Lock()
	if s.state < to {
		s.state = to
	}
	idle := s.idle
	s.idle = nil
	if s.sweeper != nil && s.sweeper.Stop() {
		s.sweeps.Done()
	}
	s.sweeper = nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, sess := range idle {
		wg.Go(func() { sess.quit(s.quitTimeout()) })
	}
	wg.Wait()
	if to == stateClosed {
		s.sweeps.Wait()
	}
}

// describe names the Sender's connection in a problem.
func (s *Sender) describe() string {
	if s.conn.Name == "" {
		return "the connection"
	}
	return "connection " + strconv.Quote(s.conn.Name)
}

// quitTimeout bounds the polite QUIT sent to a session being closed.
func (s *Sender) quitTimeout() time.Duration {
	if s.conn.SendTimeout > 0 && s.conn.SendTimeout < 5*time.Second {
		return s.conn.SendTimeout
	}
	return 5 * time.Second
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

// prepared is a message ready for the wire.
type prepared struct {
	envFrom  string
	rcpts    []string
	utf8     bool // an envelope address needs SMTPUTF8
	msg      *compose.Message
	body     []byte // msg composed in advance (no attachments), or nil
	raw      io.Reader
	size     int64 // estimated size, 0 = unknown
	allOrNot bool
	rewinds  []rewind // how to rewind the message's readers for a retry
	replay   bool     // whether every reader can be rewound
}

type rewind struct {
	s   io.Seeker
	off int64
}

func (p *prepared) rewind() error {
	for _, r := range p.rewinds {
		if _, err := r.s.Seek(r.off, io.SeekStart); err != nil {
			return err
		}
	}
	return nil
}

// seekerOf returns a rewind for r when it is seekable.
func seekerOf(r io.Reader) (rewind, bool) {
	sk, ok := r.(io.Seeker)
	if !ok {
		return rewind{}, false
	}
	off, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return rewind{}, false
	}
	return rewind{s: sk, off: off}, true
}

// sizeOf returns the bytes left in r when that is known without reading.
func sizeOf(r io.Reader) int64 {
	if l, ok := r.(interface{ Len() int }); ok {
		return int64(l.Len())
	}
	if sk, ok := r.(io.Seeker); ok {
		cur, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0
		}
		end, err := sk.Seek(0, io.SeekEnd)
		if err != nil {
			return 0
		}
		if _, err := sk.Seek(cur, io.SeekStart); err != nil {
			return 0
		}
		return end - cur
	}
	return 0
}

// prepare checks msg and builds what is sent, with defaults from the
// connection and the route (fallbackFrom, fallbackTo).
func (s *Sender) prepare(msg *Message, fallbackFrom string, fallbackTo []string) (*prepared, error) {
	if msg == nil {
		return nil, &FieldError{Field: "Message", Problem: "is nil"}
	}
	var p problems
	if s.base != nil && s.origin == nil && (msg.Text != "" || msg.HTML != "") {
		p.add("Options.ActionOrigin", "is needed to send a message with a body through %s: its Email Actions Base URL rewrites the message's action links, and Options.ActionOrigin, the engine's own origin of those links, tells which links they are", s.describe())
	}
	from := msg.From
	if from == "" {
		from = fallbackFrom
	}
	if from == "" {
		from = s.conn.From
	}
	// The one recipient rule (README § Precedence): the message's To, else
	// the route's (an activity node's recipients, else the connection's or
	// the grid's To), else the connection's; Cc and Bcc always add to it.
	to, cc, bcc := msg.To, msg.Cc, msg.Bcc
	if len(to) == 0 {
		to = fallbackTo
	}
	if len(to) == 0 {
		to = s.conn.To
	}
	parse := func(field string, list []string) []*mail.Address {
		var out []*mail.Address
		for i, a := range list {
			addr, ok := parseAddress(&p, fmt.Sprintf("%s[%d]", field, i), a)
			if ok {
				out = append(out, addr)
			}
		}
		return out
	}
	var fromAddr *mail.Address
	if from == "" {
		p.add("From", "no sender: the message has no From, and neither the route nor the connection has a default From")
	} else {
		fromAddr, _ = parseAddress(&p, "From", from)
	}
	toA, ccA, bccA := parse("To", to), parse("Cc", cc), parse("Bcc", bcc)
	replyTo := parse("ReplyTo", msg.ReplyTo)
	if len(to)+len(cc)+len(bcc) == 0 {
		p.add("To", "no recipient: the message has no To, Cc or Bcc, and neither the route nor the connection has default recipients (To)")
	}
	if err := p.err(); err != nil {
		return nil, err
	}

	pr := &prepared{allOrNot: msg.RequireAllRecipients, replay: true}
	pr.envFrom = fromAddr.Address
	seen := make(map[string]bool)
	for _, list := range [][]*mail.Address{toA, ccA, bccA} {
		for _, a := range list {
			key := strings.ToLower(a.Address)
			if !seen[key] {
				seen[key] = true
				pr.rcpts = append(pr.rcpts, a.Address)
			}
		}
	}
	pr.utf8 = compose.NeedsSMTPUTF8(append([]string{pr.envFrom}, pr.rcpts...)...)

	text, html := msg.Text, msg.HTML
	if s.base != nil && s.origin != nil {
		text, _ = s.base.RewriteBody(s.origin, text)
		html, _ = s.base.RewriteBody(s.origin, html)
	}
	date := msg.Date
	if date.IsZero() {
		date = time.Now()
	}
	id := msg.MessageID
	if id == "" {
		id = newMessageID(fromAddr.Address)
	}
	cm := &compose.Message{
		From: fromAddr, To: toA, Cc: ccA, ReplyTo: replyTo,
		Subject: msg.Subject, Text: text, HTML: html,
		Date: date, MessageID: id, UTF8Headers: pr.utf8,
	}
	for _, k := range sortedKeys(msg.Headers) {
		cm.Headers = append(cm.Headers, compose.Header{Key: k, Value: msg.Headers[k]})
	}
	sizeKnown := true
	for _, a := range msg.Attachments {
		size := a.Size
		if size <= 0 && a.Content != nil {
			size = sizeOf(a.Content)
		}
		if size <= 0 {
			sizeKnown = false
		}
		cm.Attachments = append(cm.Attachments, compose.Attachment{
			Filename: a.Filename, ContentType: a.ContentType, Content: a.Content,
			Inline: a.Inline, ContentID: a.ContentID, Size: size,
		})
		if a.Content != nil {
			if rw, ok := seekerOf(a.Content); ok {
				pr.rewinds = append(pr.rewinds, rw)
			} else {
				pr.replay = false
			}
		}
	}
	pr.msg = cm
	if len(cm.Attachments) == 0 {
		// A notification without attachments is small: compose it once,
		// which gives its exact size and the bytes for every attempt.
		body, err := cm.Bytes()
		if err != nil {
			return nil, composeErrors(err)
		}
		pr.body, pr.size = body, int64(len(body))
		return pr, nil
	}
	if err := cm.Validate(); err != nil {
		return nil, composeErrors(err)
	}
	if sizeKnown {
		if size, ok := cm.EstimatedSize(); ok {
			pr.size = size
		}
	}
	return pr, nil
}

// parseAddress parses one address with the composer's validator, the one
// Connection.Validate uses too, and records its problem under field.
func parseAddress(p *problems, field, s string) (*mail.Address, bool) {
	a, err := compose.ParseAddress(s)
	if err != nil {
		p.add(field, "%v", err)
		return nil, false
	}
	return a, true
}

// composeErrors turns the composer's problems into FieldErrors.
func composeErrors(err error) error {
	var p problems
	var walk func(error)
	walk = func(e error) {
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range m.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *compose.FieldError
		if errors.As(e, &fe) {
			p.add(fe.Field, "%v", fe.Err)
			return
		}
		p.add("Message", "%v", e)
	}
	walk(err)
	return p.err()
}

// newMessageID returns a random Message-ID in the sender's domain.
func newMessageID(from string) string {
	var b [16]byte
	_, _ = cryptoRead(b[:])
	domain := "emailconn.invalid"
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		if d := from[at+1:]; compose.ValidateEnvelope("x@"+d, false) == nil && !strings.HasPrefix(d, "[") {
			domain = d
		}
	}
	return time.Now().UTC().Format("20060102150405") + "." + hex.EncodeToString(b[:]) + "@" + domain
}

var cryptoRead = crand.Read

// send prepares msg and delivers it; fallbackFrom and fallbackTo come from a
// route.
func (s *Sender) send(ctx context.Context, msg *Message, fallbackFrom string, fallbackTo []string) (*Receipt, error) {
	if s.slots == nil {
		return nil, errZeroSender
	}
	start := time.Now()
	pr, err := s.prepare(msg, fallbackFrom, fallbackTo)
	if err != nil {
		return nil, err
	}
	return s.deliver(ctx, pr, start)
}

func (s *Sender) sendRaw(ctx context.Context, from string, to []string, r io.Reader) (*Receipt, error) {
	if s.slots == nil {
		return nil, errZeroSender
	}
	start := time.Now()
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
	return s.deliver(ctx, pr, start)
}

// attemptResult is the outcome of one attempt.
type attemptResult struct {
	receipt     *Receipt
	err         error
	retry       bool // the server cannot have accepted the message, and a later attempt may succeed
	bodyStarted bool // the message's readers were read
}

// deliver runs attempts under the retry policy.
func (s *Sender) deliver(ctx context.Context, pr *prepared, start time.Time) (*Receipt, error) {
	maxAttempts := s.opts.Retry.attempts()
	for n := 1; ; n++ {
		res := s.attempt(ctx, pr)
		if res.receipt != nil {
			res.receipt.Attempts = n
			res.receipt.Duration = time.Since(start)
		}
		if res.err == nil {
			s.logSent(ctx, pr, res.receipt)
			return res.receipt, nil
		}
		canRetry := res.retry && n < maxAttempts && ctx.Err() == nil
		if canRetry && res.bodyStarted {
			canRetry = pr.replay && pr.rewind() == nil
		}
		if !canRetry {
			return s.gaveUp(ctx, pr, res, n, start)
		}
		wait := s.opts.Retry.backoff(n + 1)
		if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
			return s.gaveUp(ctx, pr, res, n, start)
		}
		s.logFailed(ctx, pr, res.err, n, true)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, s.ctxError(ctx, "", fmt.Errorf("while waiting to retry after: %w", res.err))
		}
	}
}

// gaveUp ends a send that failed after n attempts: the error says how
// many attempts were made and how long they took in all.
func (s *Sender) gaveUp(ctx context.Context, pr *prepared, res attemptResult, n int, start time.Time) (*Receipt, error) {
	var e *Error
	if n > 1 && errors.As(res.err, &e) {
		e.attempts, e.elapsed = n, time.Since(start)
	}
	s.logFailed(ctx, pr, res.err, n, false)
	return res.receipt, res.err
}

// attempt makes one attempt on a pooled or new session. A pooled session
// that turns out dead before MAIL is replaced by a new one, once, without
// counting an attempt.
func (s *Sender) attempt(ctx context.Context, pr *prepared) attemptResult {
	for redial := true; ; redial = false {
		sess, err := s.acquire(ctx)
		if err != nil {
			return attemptResult{err: err, retry: isRetryable(err)}
		}
		res, stale := s.transactOn(ctx, sess, pr)
		if stale && sess.reused && redial {
			continue
		}
		return res.attemptResult
	}
}

// transactOn runs one transaction on sess under ctx and returns the
// session to the pool, or closes it. A panic of the caller's code (an
// attachment reader, say) closes the session and frees its slot before it
// goes on up, so that the pool never loses a session to it.
func (s *Sender) transactOn(ctx context.Context, sess *session, pr *prepared) (res txResult, stale bool) {
	release := sess.wc.Bind(ctx)
	returned := false
	defer func() {
		if !returned {
			release()
			s.put(sess, false)
		}
	}()
	res, stale = s.transact(ctx, sess, pr)
	returned = true
	release()
	s.put(sess, res.err == nil || res.keep)
	return res, stale
}

// txResult is an attempt's result plus whether the session may be kept.
type txResult struct {
	attemptResult
	keep bool // the session is in a known, idle state despite the error
}

// transact runs one mail transaction. stale reports a reused session that
// failed before MAIL was accepted, which a new session may fix.
func (s *Sender) transact(ctx context.Context, sess *session, pr *prepared) (res txResult, stale bool) {
	c := sess.client
	fail := func(stage Stage, err error) txResult {
		e := s.wrapErr(ctx, stage, err, sess)
		return txResult{attemptResult: attemptResult{err: e, retry: isRetryable(e)}}
	}
	if sess.dirty {
		if err := c.Reset(); err != nil {
			return fail(StageReset, err), true
		}
		sess.dirty = false
	}
	if pr.utf8 && !sess.has("SMTPUTF8") {
		err := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageMail, kind: ErrInvalid,
			Err: errors.New("an address is not ASCII and needs SMTPUTF8, which the server does not offer")}
		return txResult{attemptResult: attemptResult{err: err}, keep: true}, false
	}
	if limit := sess.maxSize(); limit > 0 && pr.size > limit {
		err := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageMail, kind: ErrMessageTooLarge,
			Err: fmt.Errorf("the message is about %d bytes; the server accepts at most %d", pr.size, limit)}
		return txResult{attemptResult: attemptResult{err: err}, keep: true}, false
	}
	opts := &smtp.MailOptions{UTF8: pr.utf8}
	if pr.size > 0 && sess.has("SIZE") {
		opts.Size = pr.size
	}
	sess.dirty = true
	if err := c.Mail(pr.envFrom, opts); err != nil {
		r := fail(StageMail, err)
		r.keep = keepAfterReply(err)
		return r, isStale(err)
	}
	var accepted []string
	var rejected []RecipientError
	for _, rcpt := range pr.rcpts {
		err := c.Rcpt(rcpt, nil)
		if err == nil {
			accepted = append(accepted, rcpt)
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code == 421 {
			return fail(StageRcpt, err), false
		}
		rejected = append(rejected, RecipientError{Address: rcpt, Err: newSMTPError(se)})
	}
	if len(rejected) > 0 && (len(accepted) == 0 || pr.allOrNot) {
		rerr := &RecipientsError{Rejected: rejected}
		if pr.allOrNot {
			rerr.Accepted = len(accepted)
		}
		keep := c.Reset() == nil
		if keep {
			sess.dirty = false
		}
		e := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageRcpt, Err: rerr}
		return txResult{attemptResult: attemptResult{err: e, retry: rerr.Temporary() && len(accepted) == 0}, keep: keep}, false
	}
	w, err := c.Data()
	if err != nil {
		r := fail(StageData, err)
		r.keep = keepAfterReply(err)
		return r, false
	}
	res.bodyStarted = true
	if err := writeMessage(w, pr); err != nil {
		// The terminating dot was not sent: the server cannot accept a
		// partial message. The session is closed.
		if werr := sess.wc.WriteErr(); werr != nil || sess.wc.Err() != nil {
			r := fail(StageData, err)
			r.bodyStarted = true
			return r, false
		}
		e := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageData, kind: ErrInvalid, Err: fmt.Errorf("reading the message: %w", err)}
		return txResult{attemptResult: attemptResult{err: e, bodyStarted: true}}, false
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		var se *smtp.SMTPError
		switch {
		case errors.As(err, &se):
			// The server refused the message. The session stays usable, but
			// some servers keep the transaction open after such a refusal
			// (RFC 5321 §4.1.1.4 says they must not): RSET before the next.
			r := fail(StageData, err)
			r.bodyStarted = true
			r.keep = keepAfterReply(err)
			return r, false
		case sess.wc.WriteErr() != nil:
			// The final dot did not reach the server.
			r := fail(StageData, err)
			r.bodyStarted = true
			return r, false
		}
		e := s.wrapErr(ctx, StageData, err, sess)
		if errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
			e.kind = ErrDeliveryUnknown
			return txResult{attemptResult: attemptResult{err: e, bodyStarted: true}}, false
		}
		unknown := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageData, kind: ErrDeliveryUnknown,
			Err: &wrapped{msg: fmt.Sprintf("the connection failed after the whole message was sent and before the server replied, so it may or may not have been accepted (Message-ID %s): %s", pr.messageID(), e.detail()), err: e}}
		return txResult{attemptResult: attemptResult{err: unknown, bodyStarted: true}}, false
	}
	sess.dirty = false
	sess.msgs++
	rc := &Receipt{
		MessageID: pr.messageID(), Reply: resp.StatusText, QueueID: queueID(resp.StatusText),
		Accepted: accepted, Rejected: rejected, Server: sess.remote,
		TLSVersion: sess.tlsVersion(), Mechanism: sess.mech,
	}
	res.receipt = rc
	res.keep = true
	if len(rejected) > 0 {
		res.err = &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageRcpt,
			Err: &RecipientsError{Rejected: rejected, Accepted: len(accepted)}}
	}
	return res, false
}

// writeMessage writes the message through the canonicalising writer.
func writeMessage(w io.Writer, pr *prepared) error {
	cw := compose.NewCanonicalWriter(w)
	var err error
	switch {
	case pr.body != nil:
		_, err = cw.Write(pr.body)
	case pr.msg != nil:
		_, err = pr.msg.WriteTo(cw)
	default:
		_, err = io.Copy(cw, pr.raw)
	}
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}

func (pr *prepared) messageID() string {
	if pr.msg != nil {
		return pr.msg.MessageID
	}
	return ""
}

// queueID finds a queue identifier in a final reply ("queued as X").
func queueID(reply string) string {
	i := strings.Index(strings.ToLower(reply), "queued as ")
	if i < 0 {
		return ""
	}
	id := reply[i+len("queued as "):]
	if j := strings.IndexAny(id, " \t\r\n;,"); j >= 0 {
		id = id[:j]
	}
	return strings.Trim(id, "<>[]()")
}

// keepAfterReply reports whether a session is still usable after err: the
// server replied with something other than 421.
func keepAfterReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code != 421
}

// isStale reports whether an error on a reused session means the server
// had closed it: EOF, reset, broken pipe, or 421.
func isStale(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && !ne.Timeout()) || isConnReset(err)
}

// isRetryable reports whether a failed attempt may succeed later without a
// change of configuration and the server cannot have accepted the message.
func isRetryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.Stage == StageToken && errors.Is(err, ErrTimeout):
		// The token request already waited its own timeout (30 s by
		// default); a send does not wait it again and again.
		return false
	case errors.Is(err, ErrDeliveryUnknown), errors.Is(err, ErrInvalid), errors.Is(err, ErrInsecureAuth),
		errors.Is(err, ErrAuthUnsupported), errors.Is(err, ErrBlocked), errors.Is(err, ErrClosed),
		errors.Is(err, ErrMessageTooLarge), errors.Is(err, ErrReplyTooLarge), errors.Is(err, ErrReauthorize),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return e.Temporary()
}

// session is one SMTP session, established and authenticated.
type session struct {
	s         *Sender
	wc        *smtpconn.Conn
	tap       *smtpconn.Tap
	client    *smtp.Client
	tlsState  *tls.ConnectionState // nil for plaintext
	ext       map[string]string
	extLines  []string // the EHLO reply after the greeting name line
	remote    string
	mech      string
	opened    time.Time
	msgs      int
	dirty     bool // a transaction was started and not finished: RSET first
	reused    bool
	idleSince time.Time // when it was put back into the pool
	rec       *transcript.Recorder
	capture   *ehloCapture
	secrets   []string // what this session's AUTH sent, in every form a server may echo
}

// secret adds a credential (a password or token), as it is and in base64,
// to what is redacted in the server's words.
func (sess *session) secret(resp []byte) {
	if len(resp) < 4 {
		return
	}
	sess.secrets = append(sess.secrets, string(resp), base64.StdEncoding.EncodeToString(resp))
}

// sent adds an AUTH response as it went on the wire (base64) to what is
// redacted in the server's words.
func (sess *session) sent(resp []byte) {
	if len(resp) > 0 {
		sess.secrets = append(sess.secrets, base64.StdEncoding.EncodeToString(resp))
	}
}

// scrubReply returns se with the session's credentials redacted from its
// text.
func (sess *session) scrubReply(se *smtp.SMTPError) *smtp.SMTPError {
	if sess == nil || len(sess.secrets) == 0 {
		return se
	}
	return &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: sess.scrub(se.Message)}
}

// scrub replaces every credential the session sent with "[redacted]" in
// text the server wrote: a server that quotes the AUTH line back, or the
// password, reveals nothing through an error, a report or a log.
func (sess *session) scrub(text string) string {
	if sess == nil {
		return text
	}
	for _, sec := range sess.secrets {
		text = strings.ReplaceAll(text, sec, "[redacted]")
	}
	return text
}

func (sess *session) has(ext string) bool {
	_, ok := sess.ext[ext]
	return ok
}

func (sess *session) maxSize() int64 {
	v, ok := sess.ext["SIZE"]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func (sess *session) tlsVersion() string {
	if sess.tlsState == nil {
		return ""
	}
	return tls.VersionName(sess.tlsState.Version)
}

// quit says QUIT within d and closes the session.
func (sess *session) quit(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	release := sess.wc.Bind(ctx)
	_ = sess.client.Quit()
	release()
	sess.close()
}

func (sess *session) close() { _ = sess.wc.Close() }

// end ends a session after a failure. When the session is still in a
// known state — the server's last word was a reply other than 421, or the
// client refused to go on before anything failed — it says QUIT first
// (bounded by the quit timeout), so the server sees a polite end rather
// than a lost connection. The session must not be bound to a context
// other than the one it is bound to now.
func (sess *session) end(err error) {
	var e *Error
	usable := (errors.As(err, &e) && e.usable) || keepAfterReply(err)
	if usable && sess.client != nil && sess.wc.Err() == nil {
		sess.wc.SetPhaseDeadline(time.Now().Add(sess.s.quitTimeout()))
		_ = sess.client.Quit()
	}
	sess.close()
}

// onClient and onServer see the plaintext session.
func (sess *session) onClient(p []byte) {
	if sess.capture != nil {
		sess.capture.client(p)
	}
	if sess.rec != nil {
		sess.rec.Client(p)
	}
}

func (sess *session) onServer(p []byte) {
	if sess.capture != nil {
		sess.capture.server(p)
	}
	if sess.rec != nil {
		sess.rec.Server(p)
	}
}

// ehloCapture keeps the reply to the last EHLO the client sent, so the
// session knows every extension go-smtp saw.
type ehloCapture struct {
	active    bool
	partial   []byte
	lines     []string
	firstSent time.Time // when the client first wrote (the greeting was read)
	done      bool
}

func (e *ehloCapture) client(p []byte) {
	if e.firstSent.IsZero() {
		e.firstSent = time.Now()
	}
	if len(p) >= 5 && (strings.EqualFold(string(p[:5]), "EHLO ") || strings.EqualFold(string(p[:5]), "HELO ")) {
		e.active, e.partial, e.lines, e.done = true, nil, nil, false
	}
}

func (e *ehloCapture) server(p []byte) {
	if !e.active {
		return
	}
	e.partial = append(e.partial, p...)
	for {
		i := bytes.IndexByte(e.partial, '\n')
		if i < 0 {
			return
		}
		line := strings.TrimRight(string(e.partial[:i]), "\r")
		e.partial = e.partial[i+1:]
		// The reply's size is bounded by the connection's reply limit; the
		// lines kept are bounded too, and the end of the reply is still
		// found after them.
		final := len(line) < 4 || line[3] != '-'
		if len(e.lines) < maxEHLOLines || final {
			e.lines = append(e.lines, line)
		}
		if final {
			e.active, e.done = false, true
			return
		}
	}
}

// maxEHLOLines is the number of EHLO reply lines kept: far more than any
// server sends (Postfix sends about 12).
const maxEHLOLines = 1000

// extensions parses the captured EHLO reply.
func (e *ehloCapture) extensions() (map[string]string, []string) {
	ext := make(map[string]string)
	var lines []string
	if !e.done || len(e.lines) == 0 || !strings.HasPrefix(e.lines[0], "250") {
		return ext, nil
	}
	for _, l := range e.lines[1:] {
		if len(l) < 4 {
			continue
		}
		kv := strings.TrimSpace(l[4:])
		lines = append(lines, kv)
		k, v, _ := strings.Cut(kv, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, lines
}

// acquire returns a pooled session that is still alive, or a new one.
func (s *Sender) acquire(ctx context.Context) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, s.ctxError(ctx, "", nil)
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, s.ctxError(ctx, "", errors.New("waiting for a free session"))
	}
	for {
		s.mu.Lock()
		if s.state == stateClosed || (s.regClosed != nil && s.regClosed.Load()) {
			s.mu.Unlock()
			<-s.slots
			return nil, &Error{Connection: s.conn.Name, kind: ErrClosed}
		}
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			break
		}
		sess := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		// A session idle for a moment is taken as it is; one idle for
		// longer is checked without blocking for a close or a 421 from the
		// server. Either way, a session found dead at MAIL is replaced.
		now := time.Now()
		idleFor := now.Sub(sess.idleSince)
		if idleFor < s.opts.idleTimeout() && now.Sub(sess.opened) < s.opts.maxAge() && (idleFor < time.Second || sess.wc.Idle()) {
			sess.reused = true
			return sess, nil
		}
		sess.close()
	}
	sess, err := s.dial(ctx, nil)
	if err != nil {
		<-s.slots
		return nil, err
	}
	return sess, nil
}

// put returns a session after use: back to the pool when it may be reused,
// otherwise closed.
func (s *Sender) put(sess *session, reusable bool) {
	defer func() { <-s.slots }()
	s.mu.Lock()
	keep := reusable && s.state == stateOpen && s.opts.idleTimeout() > 0 &&
		sess.msgs < s.opts.maxMessages() && time.Since(sess.opened) < s.opts.maxAge() &&
		len(s.idle) < s.opts.maxSessions()
	if keep {
		sess.reused = false
		sess.idleSince = time.Now()
		s.idle = append(s.idle, sess)
		if s.sweeper == nil {
			s.sweeps.Add(1)
			s.sweeper = time.AfterFunc(s.opts.idleTimeout(), s.sweep)
		}
	}
	background := reusable && !keep && s.state == stateOpen
	if background {
		// Say QUIT off the caller's path; Close waits for it.
		s.sweeps.Add(1)
	}
	s.mu.Unlock()
	switch {
	case keep:
	case background:
		go func() {
			defer s.sweeps.Done()
			sess.quit(s.quitTimeout())
		}()
	case reusable:
		sess.quit(s.quitTimeout())
	default:
		sess.close()
	}
}

// sweep closes the sessions idle for longer than IdleTimeout and arms
// itself again for the next one to expire. One timer serves the whole pool:
// a timer per session would cost a timer operation on every send.
func (s *Sender) sweep() {
	defer s.sweeps.Done()
	idle := s.opts.idleTimeout()
	s.mu.Lock()
	now := time.Now()
	var expired []*session
	kept := s.idle[:0]
	for _, sess := range s.idle {
		if now.Sub(sess.idleSince) >= idle {
			expired = append(expired, sess)
		} else {
			kept = append(kept, sess)
		}
	}
	clear(s.idle[len(kept):])
	s.idle = kept
	s.sweeper = nil
	if len(kept) > 0 && s.state == stateOpen {
		next := idle
		for _, sess := range kept {
			next = min(next, idle-now.Sub(sess.idleSince))
		}
		s.sweeps.Add(1)
		s.sweeper = time.AfterFunc(max(next, time.Millisecond), s.sweep)
	}
	s.mu.Unlock()
	for _, sess := range expired {
		sess.quit(s.quitTimeout())
	}
}

// tokenSource gives a Sender the OAuth2 access tokens of its connection's
// OAuth2 configuration.
type tokenSource interface {
	// token returns a valid access token, cached or fresh.
	token(ctx context.Context) (string, error)
	// invalidate drops token from the cache when it is still cached: the
	// server rejected it.
	invalidate(token string)
}

// dial establishes an authenticated session. When the server rejects an
// OAuth2 access token, the token is dropped and the session is dialled
// again with a fresh one — once.
func (s *Sender) dial(ctx context.Context, tr *tracer) (*session, error) {
	sess, err := s.dialOnce(ctx, tr)
	var tre *tokenRejectedError
	if err != nil && s.tokens != nil && errors.As(err, &tre) {
		s.tokens.invalidate(tre.token)
		tr.tokenRetry(err)
		if l := s.opts.Logger; l != nil {
			l.LogAttrs(ctx, slog.LevelInfo, "oauth2 token rejected; retrying with a fresh one",
				slog.String("connection", s.conn.Name), slog.String("oauth2Configuration", s.conn.OAuth2Config))
		}
		sess, err = s.dialOnce(ctx, tr)
	}
	return sess, err
}

// dialOnce establishes a session: resolve, connect, TLS, greeting, EHLO,
// STARTTLS and the EHLO after it — all within ConnectTimeout — then AUTH.
// tr, when not nil, receives each stage's outcome (Test Connection).
func (s *Sender) dialOnce(ctx context.Context, tr *tracer) (*session, error) {
	start := time.Now()
	phaseCtx, phaseDeadline := ctx, time.Time{}
	if s.conn.ConnectTimeout > 0 {
		phaseDeadline = start.Add(s.conn.ConnectTimeout)
		var cancel context.CancelFunc
		phaseCtx, cancel = context.WithDeadline(ctx, phaseDeadline)
		defer cancel()
	}

	t := time.Now()
	addrs, err := s.resolve(phaseCtx)
	if _, perr := netip.ParseAddr(s.ep.host); perr == nil {
		tr.skip(StageResolve, "the mail server is an IP address")
	} else {
		tr.stage(StageResolve, t, err)
	}
	if err != nil {
		return nil, s.dialErr(ctx, phaseCtx, StageResolve, err)
	}

	t = time.Now()
	raw, err := s.connect(phaseCtx, addrs)
	tr.stage(StageConnect, t, err)
	if err != nil {
		return nil, s.dialErr(ctx, phaseCtx, StageConnect, err)
	}
	sess := &session{s: s, opened: start, remote: raw.RemoteAddr().String(), capture: &ehloCapture{}}
	tr.connected(sess.remote)
	sess.wc = smtpconn.New(raw, smtpconn.Options{SendTimeout: s.conn.SendTimeout})
	sess.wc.SetPhaseDeadline(phaseDeadline)
	release := sess.wc.Bind(ctx)
	defer release()
	if l := s.opts.Logger; l != nil && l.Enabled(ctx, slog.LevelDebug) {
		name, remote := s.conn.Name, sess.remote
		sess.rec = &transcript.Recorder{Emit: func(fromClient bool, line string) {
			dir := "S"
			if fromClient {
				dir = "C"
			} else {
				line = sess.scrub(line)
			}
			l.Debug("smtp", "connection", name, "server", remote, "dir", dir, "line", line)
		}}
	}
	if err := s.establish(ctx, sess, tr); err != nil {
		sess.end(err)
		return nil, err
	}
	sess.wc.SetPhaseDeadline(time.Time{})
	sess.capture = nil
	if err := s.authenticate(ctx, sess, tr); err != nil {
		sess.end(err)
		return nil, err
	}
	return sess, nil
}

// establish runs the TLS mode's opening of the session up to a usable,
// secured EHLO.
func (s *Sender) establish(ctx context.Context, sess *session, tr *tracer) error {
	switch s.ep.mode {
	case TLSImplicit:
		t := time.Now()
		// The handshake is the server's first reply: SendTimeout bounds it
		// as it bounds a greeting, whether or not ConnectTimeout is set.
		sess.wc.StartReply()
		tc := tls.Client(sess.wc, s.tlsCfg)
		err := tc.HandshakeContext(ctx)
		tr.stage(StageTLS, t, err)
		if err != nil {
			return s.wrapErr(ctx, StageTLS, err, sess)
		}
		st := tc.ConnectionState()
		sess.tlsState = &st
		tr.tlsDone(st)
		return s.hello(ctx, sess, tc, nil, tr, true)
	case TLSNone:
		return s.hello(ctx, sess, sess.wc, nil, tr, true)
	}

	// STARTTLS, mandatory or opportunistic: go-smtp reads the greeting and
	// says EHLO with our name; STARTTLS itself is ours (go-smtp's client
	// cannot start TLS on a session it already greeted), so that stripping
	// and injection are detected and the handshake is forced before
	// anything else is sent.
	if err := s.hello(ctx, sess, sess.wc, nil, tr, true); err != nil {
		return err
	}
	t := time.Now()
	if !sess.has("STARTTLS") {
		if s.ep.mode == TLSStartTLS {
			err := errNoSTARTTLS
			tr.stage(StageSTARTTLS, t, err)
			return &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageSTARTTLS, kind: ErrTLSUnavailable, Err: err, usable: true}
		}
		tr.skip(StageSTARTTLS, "the server does not offer STARTTLS (opportunistic mode continues in plaintext)")
		return nil
	}
	// Bytes after the EHLO reply, or after the reply to STARTTLS, were not
	// asked for: a man in the middle may have injected them to be read as
	// replies inside TLS.
	injected := len(sess.capture.partial) > 0
	br := bufio.NewReader(sess.tap)
	sess.wc.StartReply()
	_, err := sess.tap.Write([]byte("STARTTLS\r\n"))
	if err == nil {
		_, _, err = textproto.NewReader(br).ReadResponse(220)
	}
	if te := (*textproto.Error)(nil); errors.As(err, &te) {
		err = toSMTPError(te)
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) && s.ep.mode == TLSOpportunistic && !injected && br.Buffered() == 0 {
			tr.skip(StageSTARTTLS, fmt.Sprintf("the server refused STARTTLS (%v); opportunistic mode continues in plaintext", newSMTPError(se)))
			return nil
		}
		tr.stage(StageSTARTTLS, t, err)
		e := s.wrapErr(ctx, StageSTARTTLS, err, sess)
		if errors.As(err, &se) {
			e.kind = ErrTLSUnavailable
		}
		return e
	}
	if injected || br.Buffered() > 0 || sess.tap.Buffered() > 0 {
		err := errSTARTTLSInjection
		tr.stage(StageSTARTTLS, t, err)
		return &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageSTARTTLS, kind: ErrTLSUnavailable, Err: err}
	}
	tc := tls.Client(sess.wc, s.tlsCfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		tr.stage(StageSTARTTLS, t, err)
		return s.wrapErr(ctx, StageSTARTTLS, err, sess)
	}
	st := tc.ConnectionState()
	sess.tlsState = &st
	tr.tlsDone(st)
	sess.capture = &ehloCapture{firstSent: time.Now()}
	greeting := []byte("220 " + s.ep.host + " ESMTP\r\n")
	if err := s.hello(ctx, sess, tc, greeting, tr, false); err != nil {
		tr.stage(StageSTARTTLS, t, err)
		return err
	}
	tr.stage(StageSTARTTLS, t, nil)
	return nil
}

// hello hands the session to go-smtp and says EHLO. greeting, when not
// nil, stands for a greeting already read. tracked says whether the
// greeting and EHLO are stages of their own (not after STARTTLS).
func (s *Sender) hello(ctx context.Context, sess *session, conn net.Conn, greeting []byte, tr *tracer, tracked bool) error {
	sess.tap = &smtpconn.Tap{Conn: conn, Prefix: greeting, OnClient: sess.onClient, OnServer: sess.onServer, Greeting: greeting == nil}
	c := smtp.NewClient(sess.tap)
	// Any non-zero value: the wrapped connection replaces go-smtp's
	// deadlines with the connection's own timeouts.
	c.CommandTimeout = time.Hour
	c.SubmissionTimeout = time.Hour
	sess.client = c
	t := time.Now()
	err := c.Hello(s.conn.localName())
	stage := StageEHLO
	if tracked && greeting == nil {
		greetEnd := sess.capture.firstSent
		if greetEnd.IsZero() {
			stage = StageGreeting
			tr.stage(StageGreeting, t, err)
		} else {
			tr.stageSpan(StageGreeting, t, greetEnd, nil)
			tr.stageSpan(StageEHLO, greetEnd, time.Now(), err)
		}
	}
	if err != nil {
		e := s.wrapErr(ctx, stage, err, sess)
		if stage == StageEHLO && !tracked && e.kind == nil {
			e.Stage = StageSTARTTLS
			e.kind = ErrTLSUnavailable
		}
		return e
	}
	sess.ext, sess.extLines = sess.capture.extensions()
	tr.ehlo(sess.extLines)
	return nil
}

// parseEHLO returns the extensions of an EHLO reply text (lines after the
// first).
func parseEHLO(msg string) (map[string]string, []string) {
	ext := make(map[string]string)
	var lines []string
	all := strings.Split(msg, "\n")
	for _, l := range all[min(1, len(all)):] {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		lines = append(lines, l)
		k, v, _ := strings.Cut(l, " ")
		ext[strings.ToUpper(k)] = v
	}
	return ext, lines
}

// toSMTPError converts a textproto error, parsing the enhanced code.
func toSMTPError(te *textproto.Error) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: te.Code, Message: te.Msg}
	code, rest, ok := strings.Cut(te.Msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(code, ".")
	if len(parts) != 3 {
		return se
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		ec[i] = n
	}
	se.EnhancedCode = ec
	se.Message = strings.ReplaceAll(rest, "\n"+code+" ", "\n")
	return se
}

// authenticate runs AUTH when the connection has credentials.
func (s *Sender) authenticate(ctx context.Context, sess *session, tr *tracer) error {
	if !s.conn.usesCredentials() {
		tr.skip(StageAuth, "the connection has no user name")
		return nil
	}
	t := time.Now()
	authFail := func(kind, err error) error {
		tr.stage(StageAuth, t, err)
		return &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageAuth, kind: kind, Err: err, usable: true}
	}
	if !credentialsAllowed(&s.conn, sess.tlsState != nil, sess.wc.RemoteAddr()) {
		return authFail(ErrInsecureAuth, errors.New("the session is not encrypted and the server is not on a loopback address: credentials not sent (enable TLS, or set allowInsecureAuth on a trusted network)"))
	}
	offered := offeredMechanisms(sess.ext)
	mech, err := chooseMechanism(s.authType, offered)
	if err != nil {
		return authFail(nil, err)
	}
	if s.authType == AuthOAuth2 {
		return s.authenticateOAuth2(ctx, sess, tr, mech)
	}
	pw, msg := s.conn.Password.reveal(&s.opts.References)
	if msg != "" {
		return authFail(ErrInvalid, &FieldError{Field: "Password", Problem: msg})
	}
	sess.tap.AnswerAbort = true
	sess.secret([]byte(pw))
	err = sess.client.Auth(recordingClient{basicClient(mech, s.conn.Username, pw), sess})
	sess.tap.AnswerAbort = false
	if err != nil {
		e := s.wrapErr(ctx, StageAuth, err, sess)
		if e.kind == nil || e.kind == ErrRefused {
			e.kind = ErrAuthFailed
		}
		if authNotPossible(e) {
			e.kind = ErrAuthUnsupported
		}
		tr.stage(StageAuth, t, e)
		return e
	}
	sess.mech = mech
	tr.authenticated(mech)
	tr.stage(StageAuth, t, nil)
	return nil
}

// authenticateOAuth2 obtains an access token and authenticates with it.
func (s *Sender) authenticateOAuth2(ctx context.Context, sess *session, tr *tracer, mech string) error {
	t := time.Now()
	tok, err := s.tokens.token(ctx)
	tr.stage(StageToken, t, err)
	if err != nil {
		e := &Error{Connection: s.conn.Name, Server: sess.remote, Stage: StageToken, Err: err, usable: true}
		switch {
		case ctx.Err() != nil:
			return s.ctxError(ctx, StageToken, err)
		case errors.Is(err, ErrReauthorize):
			e.kind = ErrReauthorize
		case errors.Is(err, ErrBlocked):
			e.kind = ErrBlocked
		case errors.Is(err, ErrClosed):
			e.kind = ErrClosed
		case !isTemporary(err):
			e.kind = ErrAuthFailed
		}
		return e
	}
	t = time.Now()
	bc := newBearerClient(mech, s.conn.Username, tok, s.ep.host, s.ep.port)
	sess.tap.AnswerAbort = true
	sess.secret([]byte(tok))
	err = sess.client.Auth(recordingClient{bc, sess})
	sess.tap.AnswerAbort = false
	if err == nil {
		sess.mech = mech
		tr.authenticated(mech)
		tr.stage(StageAuth, t, nil)
		return nil
	}
	e := s.wrapErr(ctx, StageAuth, err, sess)
	if authNotPossible(e) {
		e.kind = ErrAuthUnsupported
	} else if e.kind == nil || e.kind == ErrRefused || e.kind == ErrAuthFailed {
		e.kind = ErrAuthFailed
		var se *SMTPError
		if bc.failure != nil || (errors.As(e.Err, &se) && se.Code == 535) {
			e.Err = &tokenRejectedError{reply: e.Err, failure: bc.failure, token: tok}
		}
	}
	tr.stage(StageAuth, t, e)
	return e
}

// authNotPossible reports a refusal to authenticate at all in this session
// — 530 (STARTTLS or something else first) or 538 (encryption required) —
// which says nothing about the credentials.
func authNotPossible(e *Error) bool {
	var se *SMTPError
	return errors.As(e.Err, &se) && (se.Code == 530 || se.Code == 538)
}

// isTemporary reports whether err says of itself that it is temporary.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// resolve returns the addresses of the mail server.
func (s *Sender) resolve(ctx context.Context) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(s.ep.host); err == nil {
		return []netip.Addr{a}, nil
	}
	lookup := s.opts.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, s.ep.host)
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no addresses", Name: s.ep.host, IsNotFound: true}
	}
	return addrs, err
}

// connect dials the addresses in turn until one answers. Under a dial
// policy, every address is checked before it is dialled, and again by the
// dialer at connect time.
func (s *Sender) connect(ctx context.Context, addrs []netip.Addr) (net.Conn, error) {
	guard := s.opts.DialPolicy.guard()
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
	var firstErr error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a.Unmap(), uint16(s.ep.port))
		if guard != nil {
			if err := guard.Check(ap); err != nil {
				if guard.Logger != nil {
					guard.Logger.LogAttrs(ctx, slog.LevelWarn, "dial refused by policy",
						slog.String("connection", s.conn.Name), slog.String("address", ap.String()), slog.String("reason", guard.Reason(ap)))
				}
				if firstErr == nil {
					firstErr = ErrBlocked
				}
				continue
			}
		}
		c, err := dial(ctx, "tcp", ap.String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// dialErr classifies a failure to resolve or connect.
func (s *Sender) dialErr(ctx, phaseCtx context.Context, stage Stage, err error) *Error {
	e := &Error{Connection: s.conn.Name, Server: s.ep.addr(), Stage: stage}
	switch {
	case ctx.Err() != nil:
		return s.ctxError(ctx, stage, err)
	case phaseCtx.Err() != nil:
		e.kind = ErrTimeout
		e.Err = fmt.Errorf("connect timeout (%v) expired", s.conn.ConnectTimeout)
	case errors.Is(err, ErrBlocked) || errors.Is(err, dialguard.ErrBlocked):
		e.kind = ErrBlocked
		e.Err = nil
	default:
		e.kind = ErrConnect
		e.Err = err
	}
	return e
}

// ctxError reports that ctx ended, as an error matching both ctx.Err() and
// its cause.
func (s *Sender) ctxError(ctx context.Context, stage Stage, detail error) *Error {
	err := ctx.Err()
	if err == nil {
		// The connection's deadline, which is the context's, expired a
		// moment before the context noticed.
		err = context.DeadlineExceeded
	}
	if cause := context.Cause(ctx); cause != nil && cause != err {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	if detail != nil {
		err = fmt.Errorf("%w (%v)", err, detail)
	}
	return &Error{Connection: s.conn.Name, Server: s.ep.addr(), Stage: stage, Err: err}
}

// wrapErr classifies an error of an established connection at stage.
func (s *Sender) wrapErr(ctx context.Context, stage Stage, err error, sess *session) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	server := s.ep.addr()
	if sess != nil {
		server = sess.remote
	}
	e = &Error{Connection: s.conn.Name, Server: server, Stage: stage, Err: err}
	var te *smtpconn.TimeoutError
	var se *smtp.SMTPError
	var ce *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var notSMTP *smtpconn.NotSMTPError
	switch {
	case ctx.Err() != nil || (sess != nil && sess.wc.Err() != nil):
		return s.ctxError(ctx, stage, nil)
	case errors.As(err, &te):
		switch te.Limit {
		case smtpconn.LimitContext:
			return s.ctxError(ctx, stage, nil)
		case smtpconn.LimitPhase:
			e.kind, e.Err = ErrTimeout, fmt.Errorf("connect timeout (%v) expired", s.conn.ConnectTimeout)
		case smtpconn.LimitSend:
			if te.Stalled {
				e.kind, e.Err = ErrTimeout, fmt.Errorf("the upload made no progress within the send timeout (%v): the server stopped reading", s.conn.SendTimeout)
				break
			}
			fallthrough
		default:
			e.kind, e.Err = ErrTimeout, fmt.Errorf("no reply within the send timeout (%v)", s.conn.SendTimeout)
		}
	case errors.As(err, &notSMTP):
		e.kind, e.Err = ErrConnect, &wrapped{msg: "the service does not speak SMTP: " + notSMTP.Error(), err: err}
	case errors.Is(err, smtpconn.ErrReplyTooLarge):
		e.kind, e.Err = ErrReplyTooLarge, fmt.Errorf("a reply exceeded %d bytes; the connection was closed", smtpconn.DefaultReplyLimit)
	case errors.As(err, &se):
		e.Err = newSMTPError(sess.scrubReply(se))
		switch stage {
		case StageGreeting, StageEHLO:
			e.kind = ErrConnect
		case StageSTARTTLS:
			e.kind = ErrTLSUnavailable
		case StageAuth:
			e.kind = ErrAuthFailed
		default:
			e.kind = ErrRefused
		}
	case errors.As(err, &ce), errors.As(err, &rh), stage == StageTLS, stage == StageSTARTTLS:
		e.kind = ErrTLSUnavailable
	default:
		e.kind = ErrConnect
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			e.Err = &wrapped{msg: "the server closed the connection", err: err}
		}
	}
	return e
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
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
