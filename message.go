package emailconn

import (
	"cmp"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/rcptbatch"
)

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
	// MessageID is the Message-ID without angle brackets. Zero means one
	// derived from IdempotencyKey when it is set, else a random one; it
	// stays the same across retries and is returned in the Receipt, so a
	// caller can recognise a duplicate. With both set, MessageID is the
	// Message-ID and IdempotencyKey still decides whether to send.
	MessageID string
	// IdempotencyKey is the engine's own identity of this notification,
	// the same in every attempt of the activity that sends it (for
	// example workflow id + "/" + activity id, never an attempt number):
	// a message with a key is sent at most once per key. Send records the
	// outcome in the delivery ledger before it returns: in Options.Store,
	// shared by every node; without one, in memory, shared by the Senders
	// of one Registry (a Sender made by NewSender has its own, so a new
	// Sender does not know what an earlier one sent). Asked again, Send
	// returns the stored Receipt marked Replayed without touching SMTP,
	// the same error for a permanent refusal, and ErrDeliveryUnknown with
	// the *Delivery record when the first send cannot know whether the
	// server accepted the message. A send of the key in progress elsewhere
	// is waited for, bounded by ctx. The Message-ID is derived from the
	// key (32 hex digits of a SHA-256 of it, at the From address's domain:
	// the same in every process and release), and never shows the key; a
	// key that can be guessed can be confirmed by hashing it, so keep
	// secrets out of it. At most 512 bytes of UTF-8 without control
	// characters. Zero means no ledger: every Send sends (see the README's
	// "Idempotent sends").
	IdempotencyKey string
	// ResendUnknown sends a message with an IdempotencyKey whose delivery
	// the ledger records as unknown once more, instead of returning
	// ErrDeliveryUnknown. The server may have accepted the first copy:
	// the recipients may get the message twice (with the same
	// Message-ID). Set it only when a person or the engine's policy
	// decided that a duplicate is better than no message. Zero means an
	// unknown delivery is never sent again. It changes nothing for a key
	// that was accepted or refused.
	ResendUnknown bool
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
	// Waited is the part of Duration spent waiting for the connection's
	// limits: for a free session (MaxSessions) and for the message rate
	// (MessagesPerMinute). Zero when the send did not wait.
	Waited time.Duration
	// Transactions is the number of mail transactions the message took:
	// more than one when its recipients were split (MaxRecipientsPerMessage,
	// or a server's 452 "too many recipients"); every one carried the same
	// message, with the same Message-ID.
	Transactions int
	// Replayed reports a Receipt that the delivery ledger returned for a
	// message with an IdempotencyKey sent before: this call sent nothing,
	// and every other field is the first send's (Attempts, and Duration
	// and Waited to the millisecond, included).
	Replayed bool
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

	sessionWait time.Duration // time spent waiting for a free session
	rateWait    time.Duration // time spent waiting for the message rate
	attempts    int           // attempts made, for Trace.SendDone

	// Recipient batching (issue 14): nil plan means one transaction to
	// rcpts. With a plan, batch is the current transaction's recipients
	// and acc what the transactions so far delivered.
	plan  *rcptbatch.Plan
	batch []string
	acc   *Receipt
}

// envelope returns the recipients of the current transaction.
func (p *prepared) envelope() []string {
	if p.plan != nil {
		return p.batch
	}
	return p.rcpts
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
	ad, err := s.addresses(msg, fallbackFrom, fallbackTo)
	if err != nil {
		return nil, err
	}
	pr := &prepared{allOrNot: msg.RequireAllRecipients, replay: true, envFrom: ad.from.Address}
	seen := make(map[string]bool)
	for _, list := range [][]*mail.Address{ad.to, ad.cc, ad.bcc} {
		for _, a := range list {
			key := strings.ToLower(a.Address)
			if !seen[key] {
				seen[key] = true
				pr.rcpts = append(pr.rcpts, a.Address)
			}
		}
	}
	pr.utf8 = compose.NeedsSMTPUTF8(append([]string{pr.envFrom}, pr.rcpts...)...)
	cm := s.composed(msg, ad, pr.utf8)
	sizeKnown := pr.attach(cm, msg.Attachments)
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

// addressed are a message's parsed addresses.
type addressed struct {
	from                 *mail.Address
	to, cc, bcc, replyTo []*mail.Address
}

// addresses applies the one recipient rule (README § Precedence) — the
// message's To, else the route's (an activity node's recipients, else the
// connection's or the grid's To), else the connection's; Cc and Bcc always
// add to it — and the same for From, and parses every address once.
func (s *Sender) addresses(msg *Message, fallbackFrom string, fallbackTo []string) (addressed, error) {
	var p problems
	if s.base != nil && s.origin == nil && (msg.Text != "" || msg.HTML != "") {
		p.add("Options.ActionOrigin", "is needed to send a message with a body through %s: its Email Actions Base URL rewrites the message's action links, and Options.ActionOrigin, the engine's own origin of those links, tells which links they are", s.describe())
	}
	from := cmp.Or(msg.From, fallbackFrom, s.conn.From)
	to := msg.To
	if len(to) == 0 {
		to = fallbackTo
	}
	if len(to) == 0 {
		to = s.conn.To
	}
	parse := func(field string, list []string) []*mail.Address {
		var out []*mail.Address
		for i, a := range list {
			if addr, ok := parseAddress(&p, fmt.Sprintf("%s[%d]", field, i), a); ok {
				out = append(out, addr)
			}
		}
		return out
	}
	var ad addressed
	if from == "" {
		p.add("From", "no sender: the message has no From, and neither the route nor the connection has a default From")
	} else {
		ad.from, _ = parseAddress(&p, "From", from)
	}
	ad.to, ad.cc, ad.bcc = parse("To", to), parse("Cc", msg.Cc), parse("Bcc", msg.Bcc)
	ad.replyTo = parse("ReplyTo", msg.ReplyTo)
	if len(to)+len(msg.Cc)+len(msg.Bcc) == 0 {
		p.add("To", "no recipient: the message has no To, Cc or Bcc, and neither the route nor the connection has default recipients (To)")
	}
	if msg.IdempotencyKey != "" {
		checkKey(&p, msg.IdempotencyKey)
	}
	return ad, p.err()
}

// composed is msg for the composer, with its action links rewritten and
// its Date and Message-ID filled in.
func (s *Sender) composed(msg *Message, ad addressed, utf8 bool) *compose.Message {
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
	switch {
	case id != "":
	case msg.IdempotencyKey != "":
		id = keyedMessageID(msg.IdempotencyKey, ad.from.Address)
	default:
		id = newMessageID(ad.from.Address)
	}
	cm := &compose.Message{
		From: ad.from, To: ad.to, Cc: ad.cc, ReplyTo: ad.replyTo,
		Subject: msg.Subject, Text: text, HTML: html,
		Date: date, MessageID: id, UTF8Headers: utf8,
	}
	for _, k := range sortedKeys(msg.Headers) {
		cm.Headers = append(cm.Headers, compose.Header{Key: k, Value: msg.Headers[k]})
	}
	return cm
}

// attach adds the attachments to cm and notes how to rewind their readers.
// It reports whether the size of every one is known.
func (pr *prepared) attach(cm *compose.Message, atts []Attachment) (sizeKnown bool) {
	sizeKnown = true
	for _, a := range atts {
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
	return sizeKnown
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
	return time.Now().UTC().Format("20060102150405") + "." + hex.EncodeToString(b[:]) + "@" + idDomain(from)
}

var cryptoRead = crand.Read

func (pr *prepared) messageID() string {
	if pr.msg != nil {
		return pr.msg.MessageID
	}
	return ""
}
