package emailconn

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/emailconn/emailconn/internal/session"
)

// A Trace is a set of hooks that observe a Sender at work, in the manner
// of net/http/httptrace.ClientTrace: set Options.Trace, and each hook that
// is not nil is called as the event happens. Logging, metrics and tracing
// adapters are built on it (the module
// github.com/emailconn/emailconn/otelemailconn is the OpenTelemetry one);
// Test Connection builds its report from the same events.
//
// Every hook is given a context first. For the events of a send it is the
// context SendStart returned — the caller's context when SendStart is nil
// — so an adapter can keep a span, or its own state, in it and read it in
// the later hooks of the same send. Events outside any send (a session
// closed by the pool, a token request started by Test Connection) are given
// the context that caused them, or context.Background().
//
// Hooks are called synchronously, on the goroutine of the Send, SendRaw or
// Test Connection that causes the event (TokenRefreshed: on the token
// cache's, before the callers waiting for the token are answered); sends in
// parallel call them concurrently, so they must be safe for concurrent use
// and quick, and must not call back into the Sender. An error passed to a
// hook is an *Error classified as the call's own error would be, with
// every credential redacted; no hook is ever given a secret. An error's
// text, Greeting, Capabilities and TransactionInfo's Reply carry what the
// server wrote, and a send's error names the recipients it refused: an
// adapter whose output must hold no address labels with errors.Is and
// errors.As, as otelemailconn does, never with the text. Fields may be
// added in later versions.
//
// The zero Trace, and a nil *Trace, observe nothing and cost nothing.
type Trace struct {
	// SendStart is called when a Send, SendRaw or Route.Send begins,
	// before the message is checked, with the connection's name and its
	// mail server as "host:port". The context it returns is the send's
	// from then on, for the hooks and for the send itself (it must be ctx
	// or derived from it); a nil return keeps ctx.
	SendStart func(ctx context.Context, connection, server string) context.Context
	// SendDone is called when the send ended: with the attempts made (zero
	// when it failed before one: an invalid message, a paused connection,
	// a daily cap), how long it took from SendStart, waits and retries
	// included, and its error — nil when every recipient accepted it, one
	// matching ErrRecipientRejected when some did (the error's
	// *RecipientsError says how many were accepted).
	SendDone func(ctx context.Context, connection string, attempts int, took time.Duration, err error)
	// Retrying is called when attempt failed with err and the send will
	// try again after waiting wait.
	Retrying func(ctx context.Context, connection string, attempt int, wait time.Duration, err error)
	// LimitWaited is called when a send waited for one of its connection's
	// limits, named as in LimitsInfo: "maxSessions" (a free session) or
	// "messagesPerMinute" (the message rate's turn).
	LimitWaited func(ctx context.Context, connection, limit string, waited time.Duration)
	// SessionsChanged is called with delta +1 when the Sender opened an
	// SMTP session for its sends, and −1 when one of them was closed: the
	// sum of the deltas is the sessions the connection holds open. Test
	// Connection's sessions are not counted. A session closed by the pool
	// (idle, too old, Close) is reported with context.Background().
	SessionsChanged func(ctx context.Context, connection string, delta int)
	// StageDone is called when a stage of a session ended: opening it
	// (resolve, connect, tls, greeting, ehlo, starttls, oauth2 token, auth)
	// or, in Test Connection, the probe and QUIT. The result's Outcome is
	// OutcomePassed, OutcomeFailed (Err says why) or OutcomeSkipped
	// (Detail says why the stage was not needed).
	StageDone func(ctx context.Context, r StageResult)
	// Connected is called when the connection is open, with the address
	// dialled ("ip:port", or what Options.DialContext was asked to reach).
	Connected func(ctx context.Context, addr string)
	// Greeting is called with the text of the server's greeting line,
	// after the reply code.
	Greeting func(ctx context.Context, text string)
	// Capabilities is called after each EHLO with the extensions the
	// server offered, one keyword with its parameters per line, as the
	// server wrote them. The slice must not be modified.
	Capabilities func(ctx context.Context, extensions []string)
	// TLSHandshakeDone is called when a TLS handshake succeeded, with its
	// verified state.
	TLSHandshakeDone func(ctx context.Context, st tls.ConnectionState)
	// TokenFetched is called when an OAuth2 connection asked its token
	// cache for an access token for AUTH (the cache may have answered from
	// memory).
	TokenFetched func(ctx context.Context, info TokenInfo)
	// TokenRefreshed is called when an OAuth2 configuration's token cache
	// asked the token endpoint (or its TokenSource) for a new access
	// token, once per request however many sends wait for it, with the
	// new token's Expiry — never the token. With Options.Store, it is
	// called when this process's cache obtained a new token, by its own
	// request or from another node's. It is set on the Options of a
	// Registry (or of Registry.TestOAuth2) and given the context of the
	// caller that started the request, without its cancellation.
	TokenRefreshed func(ctx context.Context, info TokenInfo)
	// Authenticated is called when AUTH succeeded, with the SASL mechanism.
	Authenticated func(ctx context.Context, mechanism string)
	// TransactionDone is called when a mail transaction ended, delivered
	// or not.
	TransactionDone func(ctx context.Context, info TransactionInfo)
}

// TokenInfo describes the fetch of an OAuth2 access token, for
// Trace.TokenFetched and Trace.TokenRefreshed.
type TokenInfo struct {
	OAuth2Config string        // the OAuth2 configuration's name
	Duration     time.Duration // how long the cache or the endpoint took
	Err          error         // nil when a token was obtained
	// Retry reports a second fetch: the server rejected the token fetched
	// before, which was dropped from the cache. TokenFetched only.
	Retry bool
	// Expiry is when the new token expires, on the token cache's clock;
	// zero when the request failed or the token has no expiry, and in
	// TokenFetched.
	Expiry time.Time
}

// TransactionInfo describes one mail transaction, for
// Trace.TransactionDone.
type TransactionInfo struct {
	Server    string        // the address of the session's server
	MessageID string        // the Message-ID, "" for SendRaw
	Accepted  int           // recipients the server accepted
	Rejected  int           // recipients the server refused
	Reply     string        // the server's final reply, when it accepted the message
	Duration  time.Duration // from MAIL FROM to the final reply or the failure
	Err       error         // nil when the message was accepted by every recipient
}

// hooks returns the session hooks that report to t, or nil for a nil t:
// a send without a Trace pays one nil check per event.
func (s *Sender) hooks(t *Trace) *session.Hooks {
	if t == nil {
		return nil
	}
	h := &session.Hooks{Connected: t.Connected, Greeting: t.Greeting, Extensions: t.Capabilities}
	if t.StageDone != nil {
		h.Stage = func(ctx context.Context, stage string, start, end time.Time, err error) {
			r := StageResult{Stage: Stage(stage), Outcome: OutcomePassed, Start: start, Duration: end.Sub(start)}
			if err != nil {
				r.Outcome, r.Err = OutcomeFailed, s.classify(ctx, err)
			}
			t.StageDone(ctx, r)
		}
		h.Skip = func(ctx context.Context, stage, why string) {
			t.StageDone(ctx, StageResult{Stage: Stage(stage), Outcome: OutcomeSkipped, Start: time.Now(), Detail: why})
		}
	}
	if t.TLSHandshakeDone != nil {
		h.TLS = func(ctx context.Context, st *tls.ConnectionState) { t.TLSHandshakeDone(ctx, *st) }
	}
	if t.SessionsChanged != nil {
		name := s.conn.Name
		h.Opened = func(ctx context.Context) { t.SessionsChanged(ctx, name, 1) }
		h.Closed = func() { t.SessionsChanged(context.Background(), name, -1) }
	}
	return h
}

// traceStart reports the start of a send and returns its context.
func (s *Sender) traceStart(ctx context.Context) context.Context {
	if t := s.opts.Trace; t != nil && t.SendStart != nil {
		if c := t.SendStart(ctx, s.conn.Name, s.ep.addr()); c != nil {
			return c
		}
	}
	return ctx
}

// traceDone reports the end of a send begun at start; pr is nil when the
// message was not prepared.
func (s *Sender) traceDone(ctx context.Context, pr *prepared, start time.Time, err error) {
	if t := s.opts.Trace; t != nil && t.SendDone != nil {
		n := 0
		if pr != nil {
			n = pr.attempts
		}
		t.SendDone(ctx, s.conn.Name, n, time.Since(start), err)
	}
}

// traceRetry reports a retry after attempt n.
func (s *Sender) traceRetry(ctx context.Context, n int, wait time.Duration, err error) {
	if t := s.opts.Trace; t != nil && t.Retrying != nil {
		t.Retrying(ctx, s.conn.Name, n, wait, err)
	}
}

// traceWait reports a wait of d for limit; nothing when d is zero.
func (s *Sender) traceWait(ctx context.Context, limit string, d time.Duration) {
	if t := s.opts.Trace; t != nil && t.LimitWaited != nil && d > 0 {
		t.LimitWaited(ctx, s.conn.Name, limit, d)
	}
}

// traceRefreshes returns the token cache's hook that reports token
// requests of the configuration name to t, or nil.
func traceRefreshes(t *Trace, name string) func(ctx context.Context, took time.Duration, expiry time.Time, err error) {
	if t == nil || t.TokenRefreshed == nil {
		return nil
	}
	return func(ctx context.Context, took time.Duration, expiry time.Time, err error) {
		info := TokenInfo{OAuth2Config: name, Duration: took, Expiry: expiry}
		if err != nil {
			info.Err = &Error{Stage: StageToken, Err: &tokenError{err: err}}
		}
		t.TokenRefreshed(ctx, info)
	}
}
