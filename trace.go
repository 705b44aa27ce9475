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
// adapters are built on it; Test Connection builds its report from the
// same events.
//
// Hooks are called synchronously, on the goroutine of the Send, SendRaw or
// Test Connection that causes the event; sends in parallel call them
// concurrently, so they must be safe for concurrent use and quick, and
// must not call back into the Sender. An error passed to a hook is an
// *Error classified as the call's own error would be, with every
// credential redacted; no hook is ever given a secret. Fields may be added
// in later versions.
//
// The zero Trace, and a nil *Trace, observe nothing and cost nothing.
type Trace struct {
	// StageDone is called when a stage of a session ended: opening it
	// (resolve, connect, tls, greeting, ehlo, starttls, oauth2 token, auth)
	// or, in Test Connection, the probe and QUIT.
	StageDone func(StageInfo)
	// Connected is called when the connection is open, with the address
	// dialled ("ip:port", or what Options.DialContext was asked to reach).
	Connected func(addr string)
	// Greeting is called with the text of the server's greeting line,
	// after the reply code.
	Greeting func(text string)
	// Capabilities is called after each EHLO with the extensions the
	// server offered, one keyword with its parameters per line, as the
	// server wrote them. The slice must not be modified.
	Capabilities func(extensions []string)
	// TLSHandshakeDone is called when a TLS handshake succeeded, with its
	// verified state.
	TLSHandshakeDone func(tls.ConnectionState)
	// TokenFetched is called when an OAuth2 connection asked its token
	// cache for an access token for AUTH (the cache may have answered from
	// memory).
	TokenFetched func(TokenInfo)
	// Authenticated is called when AUTH succeeded, with the SASL mechanism.
	Authenticated func(mechanism string)
	// TransactionDone is called when a mail transaction ended, delivered
	// or not.
	TransactionDone func(TransactionInfo)
}

// StageInfo describes one stage of a session, for Trace.StageDone.
type StageInfo struct {
	Stage    Stage         // which stage
	Start    time.Time     // when it began
	Duration time.Duration // how long it took; zero when skipped
	// Err is why the stage failed; nil when it passed or was skipped.
	Err error
	// Skipped, when not "", says why the stage was not needed.
	Skipped string
}

// TokenInfo describes the fetch of an OAuth2 access token, for
// Trace.TokenFetched.
type TokenInfo struct {
	OAuth2Config string        // the OAuth2 configuration's name
	Duration     time.Duration // how long the cache or the endpoint took
	Err          error         // nil when a token was obtained
	// Retry reports a second fetch: the server rejected the token fetched
	// before, which was dropped from the cache.
	Retry bool
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
			info := StageInfo{Stage: Stage(stage), Start: start, Duration: end.Sub(start)}
			if err != nil {
				info.Err = s.classify(ctx, err)
			}
			t.StageDone(info)
		}
		h.Skip = func(stage, why string) {
			t.StageDone(StageInfo{Stage: Stage(stage), Start: time.Now(), Skipped: why})
		}
	}
	if t.TLSHandshakeDone != nil {
		h.TLS = func(st *tls.ConnectionState) { t.TLSHandshakeDone(*st) }
	}
	return h
}
