package emailconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/session"
	"github.com/emailconn/emailconn/internal/smtpconn"
)

// Causes of failures that carry no error of their own, raised by the
// sending core and classified by classify. Hints and restricted reports
// recognise them with errors.Is, never by their text.
var (
	errNoSTARTTLS        = session.ErrNoSTARTTLS
	errSTARTTLSInjection = session.ErrInjection
	errCleartextAuth     = errors.New("the session is not encrypted and the server is not on a loopback address: credentials not sent (enable TLS, or set allowInsecureAuth on a trusted network)")
	errReplyTooLarge     = smtpconn.ErrReplyTooLarge
	errNeedsSMTPUTF8     = errors.New("an address is not ASCII and needs SMTPUTF8, which the server does not offer")
)

// A sizeError is a message larger than the SIZE the server announced.
type sizeError struct{ size, limit int64 }

func (e *sizeError) Error() string {
	return fmt.Sprintf("the message is about %d bytes; the server accepts at most %d", e.size, e.limit)
}

// A readError is a failure to read the message from the caller's readers.
type readError struct{ err error }

func (e *readError) Error() string { return "reading the message: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// An unknownError is a failure after the whole message was sent and
// before the server replied.
type unknownError struct {
	messageID string
	err       error
}

func (e *unknownError) Error() string { return e.err.Error() }
func (e *unknownError) Unwrap() error { return e.err }

// classify turns a failure of the sending core — a *session.Error naming
// its stage and typed cause — into an *Error with its kind. It is the one
// place where causes become kinds; an *Error is returned as it is.
func (s *Sender) classify(ctx context.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	e = &Error{Connection: s.conn.Name, Server: s.ep.addr(), Err: err}
	ended := false
	var se *session.Error
	if errors.As(err, &se) {
		e.Stage, e.Err, e.usable, ended = Stage(se.Stage), se.Err, se.Usable, se.Ended
		if se.Remote != "" {
			e.Server = se.Remote
		}
	}
	if refusedByClient(e.Err) {
		// Decided before anything failed: the session is as it was.
		s.sessionKind(e)
		return e
	}
	var ue *unknownError
	if errors.As(e.Err, &ue) {
		return s.unknown(ctx, e, ue, ended)
	}
	var te *smtpconn.TimeoutError
	if ctx.Err() != nil || ended || errors.As(e.Err, &te) && te.Limit == smtpconn.LimitContext {
		var detail error
		if e.Stage == StageResolve || e.Stage == StageConnect || e.Stage == StageToken {
			detail = e.Err
		}
		return s.ctxError(ctx, e.Stage, detail)
	}
	switch e.Stage {
	case StageResolve, StageConnect:
		s.dialKind(e)
	case StageToken:
		tokenKind(e)
	default:
		s.sessionKind(e)
	}
	return e
}

// refusedByClient reports a cause the client decided on by itself: the
// message needs what the server does not offer, a reader failed, or the
// server refused recipients.
func refusedByClient(err error) bool {
	return errors.Is(err, errNeedsSMTPUTF8) || errors.As(err, new(*sizeError)) ||
		errors.As(err, new(*readError)) || errors.As(err, new(*RecipientsError))
}

// dialKind classifies a failure to resolve or connect.
func (s *Sender) dialKind(e *Error) {
	switch {
	case errors.Is(e.Err, session.ErrPhaseTimeout):
		e.kind, e.Err = ErrTimeout, fmt.Errorf("connect timeout (%v) expired", s.conn.ConnectTimeout)
	case errors.Is(e.Err, ErrBlocked) || errors.Is(e.Err, dialguard.ErrBlocked):
		e.kind, e.Err = ErrBlocked, nil
	default:
		e.kind = ErrConnect
	}
}

// tokenKind classifies a failure to obtain an OAuth2 access token.
func tokenKind(e *Error) {
	e.usable = true
	switch {
	case errors.Is(e.Err, ErrReauthorize):
		e.kind = ErrReauthorize
	case errors.Is(e.Err, ErrBlocked):
		e.kind = ErrBlocked
	case errors.Is(e.Err, ErrClosed):
		e.kind = ErrClosed
	case !isTemporary(e.Err):
		e.kind = ErrAuthFailed
	}
}

// sessionKind classifies a failure of an established connection.
func (s *Sender) sessionKind(e *Error) {
	err := e.Err
	var te *smtpconn.TimeoutError
	var se *smtp.SMTPError
	var tre *tokenRejectedError
	var fe *FieldError
	var notSMTP *smtpconn.NotSMTPError
	var ce *tls.CertificateVerificationError
	var rh tls.RecordHeaderError
	var re *RecipientsError
	switch {
	case errors.As(err, &re):
		// The kind is the RecipientsError's own; a recipient refused with
		// a throttling or quota reply throttles the send.
		for _, r := range re.Rejected {
			s.decide(e, r.Err, s.conn.authType() == authOAuth2)
		}
	case errors.As(err, new(*readError)), errors.Is(err, errNeedsSMTPUTF8):
		e.kind = ErrInvalid
	case errors.As(err, new(*sizeError)):
		e.kind = ErrMessageTooLarge
	case errors.As(err, &te):
		e.kind, e.Err = ErrTimeout, s.timeoutCause(te)
	case errors.As(err, &notSMTP):
		e.kind, e.Err = ErrConnect, &wrapped{msg: "the service does not speak SMTP: " + notSMTP.Error(), err: err}
	case errors.Is(err, errReplyTooLarge):
		e.kind, e.Err = ErrConnect, &wrapped{msg: fmt.Sprintf("a reply exceeded %d bytes; the connection was closed", smtpconn.DefaultReplyLimit), err: err}
	case errors.As(err, &tre):
		e.kind = ErrAuthFailed
	case errors.As(err, &se):
		reply := newSMTPError(se)
		e.Err = reply
		e.kind = replyKind(e.Stage, se.Code)
		s.decide(e, reply, s.conn.authType() == authOAuth2)
	case errors.Is(err, errCleartextAuth):
		e.kind = ErrInsecureAuth
	case errors.Is(err, ErrAuthUnsupported):
		e.kind = ErrAuthUnsupported
	case errors.As(err, &fe):
		e.kind = ErrInvalid
	case errors.As(err, &ce), errors.As(err, &rh), e.Stage == StageTLS, e.Stage == StageSTARTTLS:
		e.kind = ErrTLSUnavailable
	default:
		e.kind = ErrConnect
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			e.Err = &wrapped{msg: "the server closed the connection", err: err}
		}
	}
}

// replyKind is the kind of a server's refusal at stage.
func replyKind(stage Stage, code int) error {
	switch stage {
	case StageGreeting, StageEHLO:
		return ErrConnect
	case StageSTARTTLS:
		return ErrTLSUnavailable
	case StageAuth:
		if code == 530 || code == 538 {
			// "STARTTLS (or something else) first" or "encryption
			// required": nothing about the credentials.
			return ErrAuthUnsupported
		}
		return ErrAuthFailed
	}
	return ErrRefused
}

// timeoutCause says which of the connection's timeouts expired.
func (s *Sender) timeoutCause(te *smtpconn.TimeoutError) error {
	switch {
	case te.Limit == smtpconn.LimitPhase:
		return fmt.Errorf("connect timeout (%v) expired", s.conn.ConnectTimeout)
	case te.Limit == smtpconn.LimitSend && te.Stalled:
		return fmt.Errorf("the upload made no progress within the send timeout (%v): the server stopped reading", s.conn.SendTimeout)
	}
	return fmt.Errorf("no reply within the send timeout (%v)", s.conn.SendTimeout)
}

// unknown classifies a failure after the whole message was sent and before
// the server replied: its delivery is unknown, whatever the cause.
func (s *Sender) unknown(ctx context.Context, e *Error, ue *unknownError, ended bool) *Error {
	inner := s.classify(ctx, &session.Error{Stage: string(e.Stage), Err: ue.err, Remote: e.Server, Ended: ended})
	if errors.Is(inner, context.Canceled) || errors.Is(inner, context.DeadlineExceeded) {
		out := *inner
		out.kind = ErrDeliveryUnknown
		return &out
	}
	e.kind = ErrDeliveryUnknown
	e.Err = &wrapped{msg: fmt.Sprintf("the connection failed after the whole message was sent and before the server replied, so it may or may not have been accepted (Message-ID %s): %s", ue.messageID, inner.detail()), err: inner}
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

// closedError reports a send on a closed Sender or Registry.
func (s *Sender) closedError() *Error { return &Error{Connection: s.conn.Name, kind: ErrClosed} }

// limitError is e, caused by the expiry of Test Connection's own time
// limit, as the timeout it is.
func limitError(e *Error, limit time.Duration) *Error {
	out := *e
	out.kind, out.Err = ErrTimeout, &testLimitError{limit: limit}
	return &out
}

// isTemporary reports whether err says of itself that it is temporary.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
