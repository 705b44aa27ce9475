package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
)

// Sentinel errors in the Unwrap chain of the errors a Cache returns. Test
// for them with errors.Is.
var (
	// ErrInvalidGrant reports that the token endpoint answered
	// invalid_grant: the refresh token was revoked or expired (or the
	// client_credentials grant is not allowed), and the configuration must
	// be authorised again. A missing stored refresh token wraps it too. It
	// is never temporary.
	ErrInvalidGrant = errors.New("oauth2 grant is invalid, expired or revoked")

	// ErrInvalidClient reports that the token endpoint answered
	// invalid_client or unauthorized_client: the client ID or secret is
	// wrong, or the client may not use this grant. It is never temporary.
	ErrInvalidClient = errors.New("oauth2 client authentication failed")

	// ErrRotationNotSaved reports that Config.OnRotate failed to save a
	// rotated refresh token. Token returns it together with a usable
	// access token; the new refresh token is kept in memory and OnRotate is
	// called again at the next refresh.
	ErrRotationNotSaved = errors.New("rotated refresh token not saved")

	// ErrTimeout reports that the token endpoint (or Source) did not answer
	// within Config.RequestTimeout, a timeout of the Cache's own. It is
	// always temporary. It is not context.DeadlineExceeded: only a caller
	// whose own context ended gets the context's error.
	ErrTimeout = errors.New("no answer within the request timeout")

	// ErrUnreachable reports that the token endpoint could not be reached:
	// the host was not found, the connection was refused or reset, or the
	// TLS handshake failed. The transport error (a *url.Error) is in the
	// Unwrap chain too. It is temporary.
	ErrUnreachable = errors.New("token endpoint unreachable")
)

// An Error is a failed token request: the token endpoint (or Source)
// answered with an error, answered something that is not a token, or did
// not answer in time.
//
// It holds only the HTTP status and the RFC 6749 §5.2 error parameters, with
// control characters removed and the description and URI truncated to 200
// characters. It never holds the response body, a secret or a token, and
// neither does its message, which starts lower case and names the
// configuration, for example
//
//	oauth2 configuration "contoso": token endpoint: invalid_grant: AADSTS70008: The refresh token has expired
type Error struct {
	// Config is the Config.Name of the configuration.
	Config string

	// Status is the HTTP status code. Zero means there was no response.
	Status int

	// Code is the OAuth2 error code ("invalid_grant", "invalid_scope", …).
	// Zero means the response had none.
	Code string

	// Description is the error_description, cleaned and truncated. Zero
	// means the response had none.
	Description string

	// URI is the error_uri, cleaned and truncated. Zero means the response
	// had none.
	URI string

	// Temporary reports that the same request may succeed later: the
	// endpoint timed out or could not be reached, answered HTTP 408, 429,
	// 500, 502, 503 or 504, or the error code temporarily_unavailable or
	// server_error.
	Temporary bool

	// Err is the cause: ErrInvalidGrant, ErrInvalidClient, ErrTimeout
	// when there was no answer within Config.RequestTimeout, an error
	// matching both ErrUnreachable and the transport error (a *url.Error)
	// when the endpoint could not be reached, or the Source's error. Nil
	// means the endpoint answered with another error. It never matches
	// context.DeadlineExceeded or context.Canceled: the request runs on the
	// Cache's own context, which no caller can end.
	Err error

	op     string // "token endpoint" or "token source"
	detail string // what happened when there is no OAuth2 error code
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauth2 configuration %q: %s: ", e.Config, e.operation())
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
	case e.detail != "":
		b.WriteString(e.detail)
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" ")
			b.WriteString(t)
		}
	default:
		b.WriteString("failed")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) operation() string {
	if e.op == "" {
		return opEndpoint
	}
	return e.op
}

const (
	opEndpoint = "token endpoint"
	opSource   = "token source"
)

// rotateError is an OnRotate failure.
type rotateError struct {
	config string
	msg    string // OnRotate's error, cleaned and redacted
	err    error
}

func (e *rotateError) Error() string {
	return fmt.Sprintf("oauth2 configuration %q: saving the rotated refresh token: %s", e.config, e.msg)
}

func (e *rotateError) Unwrap() []error { return []error{ErrRotationNotSaved, e.err} }

// classify turns the error of a token request into an *Error. rctx is the
// request's context, secrets the values that must not appear in the
// result.
func classify(name, op string, err error, rctx context.Context, timeout time.Duration, secrets []string) *Error {
	e := &Error{Config: name, op: op}
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			e.Status = re.Response.StatusCode
		}
		e.Code = cleanCode(re.ErrorCode)
		e.Description = clean(re.ErrorDescription, maxDescription, secrets)
		e.URI = clean(re.ErrorURI, maxDescription, secrets)
		switch e.Code {
		case "invalid_grant":
			e.Err = ErrInvalidGrant
		case "invalid_client", "unauthorized_client":
			e.Err = ErrInvalidClient
		case "temporarily_unavailable", "server_error":
			e.Temporary = true
		case "":
			e.Temporary = temporaryStatus(e.Status)
		}
	case rctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Temporary = true
		e.Err = ErrTimeout
		if op == opSource {
			e.detail = "no token within " + timeout.String()
		} else {
			e.detail = "no response within " + timeout.String()
		}
	case errors.As(err, &ue):
		e.Temporary = true
		e.Err = unreachable{ue}
		e.detail = clean(ue.Error(), maxDetail, secrets)
	case op == opSource:
		e.Err = err
		e.detail = clean(err.Error(), maxDetail, secrets)
	case strings.HasPrefix(err.Error(), "oauth2: cannot fetch token"):
		// x/oauth2 failed to read the response body.
		e.Temporary = true
		e.detail = "reading the response failed"
	default:
		// x/oauth2 could not parse a 2xx response or found no
		// access_token in it: the URL is probably not a token endpoint.
		e.detail = "the response is not a token response"
	}
	return e
}

// unreachable is a transport error that matches ErrUnreachable.
type unreachable struct{ err *url.Error }

func (u unreachable) Error() string   { return u.err.Error() }
func (u unreachable) Unwrap() []error { return []error{ErrUnreachable, u.err} }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func temporaryStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Lengths, in characters, of the cleaned strings.
const (
	maxDescription = 200
	maxDetail      = 300
	maxCode        = 64
	maxClaim       = 256
)

// redacted replaces a secret found in a message.
const redacted = "[redacted]"

// minRedact is the shortest secret that is searched for: shorter ones
// would replace ordinary words.
const minRedact = 6

// clean makes a server- or caller-supplied string safe to print: secrets
// replaced, invalid UTF-8, control and format characters (including
// bidirectional overrides) replaced by spaces, runs of white space
// collapsed, and at most max characters kept.
func clean(s string, max int, secrets []string) string {
	if s == "" {
		return ""
	}
	s = redact(strings.ToValidUTF8(s, "\uFFFD"), secrets)
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	s = redact(s, secrets)
	if utf8.RuneCountInString(s) > max {
		n := 0
		for i := range s {
			if n == max {
				s = s[:i] + "…"
				break
			}
			n++
		}
	}
	return s
}

func redact(s string, secrets []string) string {
	for _, secret := range secrets {
		if len(secret) < minRedact {
			continue
		}
		s = strings.ReplaceAll(s, secret, redacted)
		if q := url.QueryEscape(secret); q != secret {
			s = strings.ReplaceAll(s, q, redacted)
		}
	}
	return s
}

// cleanCode keeps the characters RFC 6749 §5.2 allows in an error code
// (%x20-21 / %x23-5B / %x5D-7E).
func cleanCode(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxCode {
		s = s[:maxCode]
	}
	return s
}

// ctxError is the error of a caller whose context ended while it waited.
func ctxError(name string, ctx context.Context) error {
	return fmt.Errorf("oauth2 configuration %q: waiting for a token: %w", name, ctx.Err())
}
