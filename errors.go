package emailconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtpconn"
)

// Sentinel errors for the conditions a caller acts on. Test for them with
// errors.Is; the errors this package returns wrap them together with the
// underlying cause.
var (
	// ErrInvalid reports invalid configuration or input: a connection, an
	// OAuth2 configuration, a configuration file or a message. Every such
	// error also holds one *FieldError per problem.
	ErrInvalid = errors.New("emailconn: invalid")

	// ErrConnect reports that the connection failed: no usable SMTP session
	// could be established (the host was not found, the connection was
	// refused, the greeting was refused, or the peer does not speak SMTP —
	// often a TLS mode that does not match the port, or a reply larger
	// than the client accepts, after which the connection is closed), or
	// the connection broke before the message was complete, so it was not
	// delivered. At
	// StageToken it reports that the OAuth2 token endpoint could not be
	// reached (connection refused or reset, host not found, TLS failure)
	// or answered that it is unavailable (HTTP 408, 429 or 5xx,
	// temporarily_unavailable, server_error); such an error is Temporary.
	ErrConnect = errors.New("emailconn: connection failed")

	// ErrTLSUnavailable reports that TLS was required but could not be
	// established: the server does not offer STARTTLS or refused it, the
	// handshake failed, or the certificate could not be verified. Nothing
	// was sent in plaintext after that point.
	ErrTLSUnavailable = errors.New("emailconn: tls unavailable")

	// ErrInsecureAuth reports that credentials were not sent because the
	// session is not protected by verified TLS, the server is not on a
	// loopback address and the connection does not allow insecure auth.
	ErrInsecureAuth = errors.New("emailconn: refusing to send credentials over an unencrypted connection")

	// ErrAuthUnsupported reports that the server offers no authentication
	// mechanism the connection can use.
	ErrAuthUnsupported = errors.New("emailconn: no usable authentication mechanism")

	// ErrAuthFailed reports that the server rejected the credentials or the
	// OAuth2 access token.
	ErrAuthFailed = errors.New("emailconn: authentication failed")

	// ErrReauthorize reports that an OAuth2 configuration's grant is no
	// longer valid (OAuth2 error invalid_grant): its refresh token was revoked
	// or expired, and an administrator must authorise it again.
	ErrReauthorize = errors.New("emailconn: oauth2 configuration must be authorised again")

	// ErrTimeout reports that a configured timeout (ConnectTimeout,
	// SendTimeout, the default cap of Test Connection, or the OAuth2 token
	// request timeout: Options.HTTPClient's Timeout, 30 seconds by default)
	// expired. A deadline or cancellation of the caller's context is
	// reported as the context's error instead.
	ErrTimeout = errors.New("emailconn: timeout")

	// ErrRefused reports that the server refused the message (at MAIL FROM,
	// DATA or after the message). The *SMTPError in the chain has the code.
	ErrRefused = errors.New("emailconn: message refused")

	// ErrRecipientRejected reports that the server refused one or more
	// recipients. The *RecipientsError in the chain lists them; when the
	// Receipt returned alongside is not nil, the message was delivered to
	// the recipients it lists as accepted and must not be sent to them
	// again.
	ErrRecipientRejected = errors.New("emailconn: recipient rejected")

	// ErrDeliveryUnknown reports that the connection failed after the whole
	// message had been sent and before the server replied: the server may or
	// may not have accepted it. Such a message is never retried
	// automatically; resending it may deliver it twice. For a message with
	// an IdempotencyKey the error holds the delivery ledger's record
	// (errors.As with a *Delivery), and every later Send of the key
	// returns it again, unless Message.ResendUnknown is set; so does a key
	// whose sending node stopped renewing its lease (it crashed).
	ErrDeliveryUnknown = errors.New("emailconn: delivery state unknown")

	// ErrMessageTooLarge reports that the message exceeds the size the
	// server announced with the SIZE extension. It is returned before the
	// message is transferred.
	ErrMessageTooLarge = errors.New("emailconn: message too large for the server")

	// ErrBlocked reports that the dial policy refused the destination.
	ErrBlocked = errors.New("emailconn: destination not allowed")

	// ErrThrottled reports that the provider limits the connection, or
	// that the connection is paused after a provider said so: a
	// concurrency, rate or daily-quota reply (432 4.3.2, 421 4.7.0,
	// 454 "Throttling failure", 550 5.4.5, 554 5.2.0 …QuotaExceeded,
	// Microsoft's 550 5.2.251–5.2.255), a daily cap of the connection
	// reached (MessagesPerDay, RecipientsPerDay), or a send refused at
	// once, without opening a session, while the connection is paused
	// after such a reply. The *Error's RetryAt says when a send may
	// succeed again.
	ErrThrottled = errors.New("emailconn: throttled")

	// ErrStore reports that Options.Store could not decide (the
	// database was unreachable or failed): a send that needed a session
	// slot or the message-rate window, or an OAuth2 token that had to be
	// refreshed, or a message with an IdempotencyKey whose delivery
	// ledger record could not be read or written before the send, failed
	// before anything was sent, rather than fall back to per-node limits,
	// refresh without the lease, or send without the ledger. It is Temporary and
	// retried by the RetryPolicy; a still-valid cached access token is
	// used meanwhile without asking the store.
	ErrStore = errors.New("emailconn: shared state store unavailable")

	// ErrClosed reports a call on a closed Sender or Registry.
	ErrClosed = errors.New("emailconn: closed")

	// ErrNotFound reports that a Registry holds no connection or OAuth2
	// configuration of the name asked for (Registry.Sender,
	// Registry.TestConnection, Registry.TestOAuth2; the message suggests a
	// near name when there is one), or no route for a process: the process
	// is assigned no connection and there are no grid settings
	// (Registry.Resolve, and the zero Route's Send).
	ErrNotFound = errors.New("emailconn: not found")
)

// A FieldError describes one problem with one field of a configuration or a
// message. Validation joins one FieldError per problem with errors.Join.
// FieldError matches ErrInvalid with errors.Is; when the problem has an
// underlying cause (an error reading the configuration, say), Unwrap
// returns it.
type FieldError struct {
	// Field names the field, in the form of the value the caller handed
	// over:
	//
	//   - for a value built in Go — Connection.Validate, NewSender,
	//     Connection.Test, OAuth2Config.Validate, OAuth2Config.Test,
	//     Sender.Send —
	//     the Go path: "MailServer", "To[1]", "Options.ActionOrigin",
	//     "TestOptions.OAuth2Config.ClientSecret", "Message.Headers[X-Tag]";
	//   - for a Config — LoadConfig, Config.Validate, NewRegistry, Replace,
	//     Update — the path into its JSON form, which is how the file an
	//     administrator edits names it: "connections[2].smtpTimeout",
	//     "grid.from", "processes[\"Payroll\"]"; "configuration" for the
	//     whole file;
	//   - for a function argument, the parameter's Go name ("baseURL").
	Field string
	// Problem says what is wrong, in lower case.
	Problem string

	err error
}

// Error returns "emailconn: <field>: <problem>".
func (e *FieldError) Error() string {
	return "emailconn: " + e.Field + ": " + e.Problem
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the cause of the problem, or nil.
func (e *FieldError) Unwrap() error { return e.err }

// maxProblems bounds the problems one validation reports, so that a huge
// invalid file yields a short error; the rest are counted.
const maxProblems = 100

// problems collects FieldErrors, at most maxProblems of them.
type problems struct {
	prefix  string
	errs    []error
	dropped int  // problems not kept because errs was full
	stopped bool // checking stopped early, so dropped is a lower bound
}

func (p *problems) add(field, format string, args ...any) {
	if len(p.errs) >= maxProblems {
		p.dropped++
		return
	}
	switch {
	case p.prefix != "" && field == "":
		field = strings.TrimSuffix(p.prefix, ".")
	case p.prefix != "":
		field = p.prefix + field
	case field == "":
		field = "configuration"
	}
	p.errs = append(p.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// full reports whether no more problems are kept.
func (p *problems) full() bool { return len(p.errs) >= maxProblems }

// merge adds the problems of sub, whose fields carry their own prefix.
func (p *problems) merge(sub *problems) {
	for _, e := range sub.errs {
		if len(p.errs) >= maxProblems {
			p.dropped++
			continue
		}
		p.errs = append(p.errs, e)
	}
	p.dropped += sub.dropped
	p.stopped = p.stopped || sub.stopped
}

func (p *problems) err() error {
	errs := p.errs
	if p.dropped > 0 || p.stopped {
		more := fmt.Sprintf("%d more problems", p.dropped)
		if p.stopped {
			more = "more problems"
		}
		errs = append(errs[:len(errs):len(errs)], &FieldError{Field: "configuration",
			Problem: "has " + more + ", not listed: fix the ones above first"})
	}
	return errors.Join(errs...)
}

// An SMTPError is a reply from the server that ended an exchange: its code,
// its enhanced status code (RFC 3463) when the server sent one, and its text.
// The go-smtp error it was made from is in the Unwrap chain.
type SMTPError struct {
	// Code is the three-digit reply code, for example 550.
	Code int
	// EnhancedCode is the enhanced status code, for example {5, 7, 1}; all
	// zero when the server did not send one.
	EnhancedCode [3]int
	// Message is the reply text without the codes.
	Message string

	err error
}

func newSMTPError(e *smtp.SMTPError) *SMTPError {
	se := &SMTPError{Code: e.Code, Message: e.Message, err: e}
	if e.EnhancedCode != smtp.NoEnhancedCode {
		se.EnhancedCode = [3]int(e.EnhancedCode)
	}
	return se
}

// Error returns the reply as the server sent it, for example
// "550 5.1.1 no such user".
func (e *SMTPError) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.Code))
	if e.EnhancedCode != [3]int{} {
		fmt.Fprintf(&b, " %d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
	}
	if e.Message != "" {
		b.WriteByte(' ')
		b.WriteString(strings.ReplaceAll(e.Message, "\n", " "))
	}
	return b.String()
}

// Enhanced returns the enhanced status code as "x.y.z", or "" when the
// server did not send one.
func (e *SMTPError) Enhanced() string {
	if e.EnhancedCode == [3]int{} {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2])
}

// Temporary reports whether the reply is a transient failure (4xx), after
// which the same request may succeed later.
func (e *SMTPError) Temporary() bool { return e.Code >= 400 && e.Code < 500 }

// Unwrap returns the go-smtp error the reply was read as.
func (e *SMTPError) Unwrap() error { return e.err }

// A RecipientError is a recipient the server refused, with its reply.
type RecipientError struct {
	Address string     // the recipient as sent in RCPT TO
	Err     *SMTPError // the server's reply
}

// A RecipientsError lists the recipients the server refused. It matches
// ErrRecipientRejected with errors.Is.
type RecipientsError struct {
	// Rejected lists the refused recipients in the order they were sent.
	Rejected []RecipientError
	// Accepted is the number of recipients the server accepted; the message
	// was delivered to them when the send otherwise succeeded.
	Accepted int
}

// recipientsListed is how many refused recipients RecipientsError's text
// lists one by one; a longer list is summarised (issue 14: a 150-recipient
// send made a 2,947-character error).
const recipientsListed = 5

// Error lists the refused recipients and their replies. More than a few
// are summarised: how many got each reply, and the first addresses;
// Rejected keeps every one.
func (e *RecipientsError) Error() string {
	var b strings.Builder
	total := e.Accepted + len(e.Rejected)
	if e.Accepted > 0 {
		fmt.Fprintf(&b, "%d of %d recipients refused", len(e.Rejected), total)
	} else {
		fmt.Fprintf(&b, "all %d recipients refused", total)
	}
	if len(e.Rejected) > recipientsListed {
		e.summary(&b)
		return b.String()
	}
	b.WriteString(": ")
	for i, r := range e.Rejected {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %v", r.Address, r.Err)
	}
	return b.String()
}

// summary writes the replies with their counts, in the order first seen,
// and the first few addresses.
func (e *RecipientsError) summary(b *strings.Builder) {
	var replies []string
	count := map[string]int{}
	for _, r := range e.Rejected {
		key := "?"
		if r.Err != nil {
			key = strconv.Itoa(r.Err.Code)
			if enh := r.Err.Enhanced(); enh != "" {
				key += " " + enh
			}
		}
		if count[key] == 0 {
			replies = append(replies, key)
		}
		count[key]++
	}
	b.WriteString(" (")
	for i, k := range replies {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(b, "%s ×%d", k, count[k])
		if i == recipientsListed {
			fmt.Fprintf(b, ", %d more replies", len(replies)-i-1)
			break
		}
	}
	b.WriteString("); first: ")
	for i, r := range e.Rejected[:recipientsListed] {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.Address)
	}
	fmt.Fprintf(b, ", … (%d in all; see Rejected); first reply: %v", len(e.Rejected), e.Rejected[0].Err)
}

// Is reports whether target is ErrRecipientRejected.
func (e *RecipientsError) Is(target error) bool { return target == ErrRecipientRejected }

// Unwrap returns the server's reply for each refused recipient.
func (e *RecipientsError) Unwrap() []error {
	out := make([]error, len(e.Rejected))
	for i, r := range e.Rejected {
		out[i] = r.Err
	}
	return out
}

// Temporary reports whether every refusal was transient: a 4xx reply, or
// 552 without an enhanced code or with 5.5.3, which RFC 5321 §4.5.3.1.10
// says is the old form of 452 "too many recipients" and is to be treated
// as temporary. The replies themselves are kept as the server sent them.
func (e *RecipientsError) Temporary() bool {
	for _, r := range e.Rejected {
		if !rcptTemporary(r.Err) {
			return false
		}
	}
	return len(e.Rejected) > 0
}

// rcptTemporary reports whether a reply to RCPT is transient.
func rcptTemporary(e *SMTPError) bool {
	if e.Code == 552 && (e.EnhancedCode == [3]int{} || e.EnhancedCode == [3]int{5, 5, 3}) {
		return true
	}
	return e.Temporary()
}

// A Stage is one step of an SMTP session. Errors and Test Connection reports
// name the stage at which something happened.
type Stage string

// The stages of a session, in the order they happen.
const (
	StageResolve  Stage = "resolve"      // DNS lookup of the mail server
	StageConnect  Stage = "connect"      // TCP connect
	StageTLS      Stage = "tls"          // implicit TLS handshake
	StageGreeting Stage = "greeting"     // the server's 220 greeting
	StageEHLO     Stage = "ehlo"         // EHLO (or HELO)
	StageSTARTTLS Stage = "starttls"     // STARTTLS, its handshake and the EHLO after it
	StageToken    Stage = "oauth2 token" // obtaining an OAuth2 access token
	StageAuth     Stage = "auth"         // AUTH
	StageMail     Stage = "mail"         // MAIL FROM
	StageRcpt     Stage = "rcpt"         // RCPT TO
	StageData     Stage = "data"         // DATA, the message, and the reply to it
	StageReset    Stage = "rset"         // RSET
	StageQuit     Stage = "quit"         // QUIT
)

// An Error is a failure of an SMTP session: which connection, which stage,
// and why. It matches the sentinel for its kind (ErrConnect, ErrTimeout, …)
// with errors.Is, and unwraps to its cause, which may be a *SMTPError, a
// *RecipientsError, a TLS or network error, or a context error.
type Error struct {
	// Connection is the name of the connection, or "" for an unnamed one.
	Connection string
	// Server is the mail server address dialled ("host:port").
	Server string
	// Stage is where the session failed.
	Stage Stage
	// Err is the cause.
	Err error

	kind     error
	usable   bool          // the client refused to go on; the session itself is in a known state
	attempts int           // attempts made, when more than one
	elapsed  time.Duration // the time they took in all

	throttled bool          // a throttling reply: the error also matches ErrThrottled
	paused    bool          // the reply paused the connection: not retried
	retryAt   time.Time     // when a send may succeed again; zero when unknown
	wait      time.Duration // the least wait before a retry the reply asks for
	advice    string        // the reply's meaning in plain words, for Test Connection
	ledger    *Delivery     // the delivery ledger's record, for a message with an IdempotencyKey
}

// RetryAt returns when a send through the connection may succeed again:
// for an error matching ErrThrottled, the end of the provider's
// throttling or of the connection's pause; zero when the error does not
// say. It is safe to call on a nil *Error (zero).
func (e *Error) RetryAt() time.Time {
	if e == nil {
		return time.Time{}
	}
	return e.retryAt
}

// Error returns a lower-case message naming the connection, stage and cause,
// for example `emailconn: connection "billing": starttls: server does not
// offer STARTTLS`. It never contains credentials.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("emailconn: ")
	if e.Connection != "" {
		fmt.Fprintf(&b, "connection %q: ", e.Connection)
	} else if e.Server != "" {
		fmt.Fprintf(&b, "%s: ", e.Server)
	}
	if e.Stage != "" {
		b.WriteString(string(e.Stage))
		b.WriteString(": ")
	}
	b.WriteString(e.detail())
	if e.attempts > 1 {
		fmt.Fprintf(&b, " (gave up after %d attempts in %v)", e.attempts, e.elapsed.Round(time.Millisecond))
	}
	return b.String()
}

// detail returns the message after the connection and stage.
func (e *Error) detail() string {
	switch {
	case e.Err != nil:
		return strings.TrimPrefix(e.Err.Error(), "emailconn: ")
	case e.kind != nil:
		return strings.TrimPrefix(e.kind.Error(), "emailconn: ")
	}
	return ""
}

// wrapped is an error with a message of its own around a cause.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// Unwrap returns the sentinel for the error's kind and its cause.
func (e *Error) Unwrap() []error {
	if e.throttled {
		return append([]error{ErrThrottled}, e.unwrap()...)
	}
	return e.unwrap()
}

func (e *Error) unwrap() []error {
	if e.ledger != nil {
		return append(e.unwrapCause(), e.ledger)
	}
	return e.unwrapCause()
}

func (e *Error) unwrapCause() []error {
	switch {
	case e.kind != nil && e.Err != nil:
		return []error{e.kind, e.Err}
	case e.kind != nil:
		return []error{e.kind}
	case e.Err != nil:
		return []error{e.Err}
	}
	return nil
}

// Temporary reports whether the failure is transient: a later attempt may
// succeed without a configuration change.
func (e *Error) Temporary() bool {
	var se *SMTPError
	var re *RecipientsError
	switch {
	case errors.Is(e, ErrDeliveryUnknown):
		return false
	case errors.As(e.Err, &re):
		return re.Temporary()
	case errors.As(e.Err, &se):
		return se.Temporary()
	case e.kind == ErrTimeout, e.kind == ErrConnect && !isPermanentConnect(e.Err):
		return true
	case e.kind == ErrTLSUnavailable && brokenConnection(e.Err):
		// The server closed or reset the connection in the middle of
		// the handshake: an overloaded or restarting server, not a
		// certificate or protocol mismatch.
		return true
	}
	var t interface{ Temporary() bool }
	return errors.As(e.Err, &t) && t.Temporary()
}

// brokenConnection reports an end of the connection by the peer: EOF or
// a reset.
func brokenConnection(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isConnReset(err)
}

// isPermanentConnect reports whether a connection failure will not go away
// by itself: the host does not exist, or the peer does not speak SMTP.
func isPermanentConnect(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsNotFound
	}
	var recErr tls.RecordHeaderError
	var protoErr textproto.ProtocolError
	var notSMTP *smtpconn.NotSMTPError
	return errors.As(err, &recErr) || errors.As(err, &protoErr) || errors.As(err, &notSMTP) ||
		errors.Is(err, smtp.ErrTooLongLine) || errors.Is(err, errReplyTooLarge)
}
