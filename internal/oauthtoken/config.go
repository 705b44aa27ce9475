package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// The grant types a Config can use without a Source.
const (
	// GrantClientCredentials obtains tokens for the application itself
	// (RFC 6749 §4.4).
	GrantClientCredentials = "client_credentials"
	// GrantRefreshToken obtains tokens with a stored refresh token
	// (RFC 6749 §6).
	GrantRefreshToken = "refresh_token"
)

// Defaults applied when the corresponding Config field is zero.
const (
	defaultRequestTimeout = 30 * time.Second
	defaultRefreshWindow  = 5 * time.Minute
)

// retryBackoff is how long a Cache waits after a failed proactive refresh
// before trying again while its cached token is still valid.
const retryBackoff = 5 * time.Second

// maxSkew is the longest a token is considered expired before its expiry
// time, for clock differences and the time between Token and its use.
const maxSkew = 10 * time.Second

// A Config describes how a Cache obtains access tokens: with a grant
// (client_credentials or refresh_token) at a token endpoint, or from a
// caller-supplied Source. New copies it; changing it afterwards has no
// effect on the Cache.
//
// A Config never prints or logs a secret: String, GoString, Format and
// LogValue show the name, grant, token URL and client ID only.
type Config struct {
	// Name identifies the configuration in errors. Zero means "".
	Name string

	// GrantType is GrantClientCredentials or GrantRefreshToken. It is
	// ignored when Source is set; otherwise it is required.
	GrantType string

	// TokenURL is the token endpoint, an absolute http or https URL.
	// Required unless Source is set.
	TokenURL string

	// ClientID is the client identifier. Required unless Source is set.
	ClientID string

	// ClientSecret returns the client secret. It is called at each token
	// request, so a secret read from a file picks up rotation. Nil means a
	// public client without a secret; with AuthStyle AutoDetect, such a
	// client sends its client_id as a form parameter without trying the
	// Authorization header first.
	ClientSecret func() (string, error)

	// RefreshToken returns the stored refresh token for GrantRefreshToken.
	// It is called once, at the first token request; after that the Cache
	// uses the refresh token the server last returned. It is called again
	// after the server answered invalid_grant, so that a re-authorised
	// configuration works without a new Cache. Required with
	// GrantRefreshToken; an empty refresh token is an error wrapping
	// ErrInvalidGrant.
	RefreshToken func() (string, error)

	// Scopes are the scopes to request, sent space-separated in the scope
	// parameter. Zero means no scope parameter.
	Scopes []string

	// EndpointParams are extra form parameters for every token request,
	// for example {"resource": "…"}. They must not set grant_type,
	// client_id, client_secret, refresh_token or scope. Zero means none.
	EndpointParams map[string]string

	// AuthStyle is how the client authenticates to the token endpoint:
	// oauth2.AuthStyleInHeader (HTTP Basic, client_secret_basic),
	// oauth2.AuthStyleInParams (form parameters, client_secret_post), or
	// oauth2.AuthStyleAutoDetect, the zero value: try the header first,
	// then, if the endpoint answered with an error, the parameters, and
	// remember what worked. Unlike golang.org/x/oauth2's probe, a timeout
	// or a transport failure is not retried with the parameters: that
	// second request could only wait or fail again.
	AuthStyle oauth2.AuthStyle

	// Source supplies tokens instead of the grant above. It must be safe
	// for concurrent use; the Cache still calls it at most once at a time,
	// only when a new token is needed, and applies the same caching,
	// refresh window and single-flight. Its tokens' Expiry is taken as is.
	// A Source that caches tokens itself (oauth2.ReuseTokenSource) defeats
	// Invalidate until its own copy expires. A Source call cannot be
	// cancelled: after RequestTimeout the Cache stops waiting and reports a
	// timeout, and a late result is discarded. Zero means use the grant.
	Source oauth2.TokenSource

	// HTTPClient makes the token requests. It is used as is, with each
	// request's context bounded by RequestTimeout. Nil means a client with
	// http.DefaultTransport's settings (its own connection pool, shared by
	// all Caches), the RequestTimeout, and no redirects followed (a
	// redirected POST would resend the client secret).
	HTTPClient *http.Client

	// RequestTimeout bounds each token request end to end, including
	// retrying with the other client authentication style and the call to
	// OnRotate (which gets a fresh RequestTimeout of its own). It also
	// bounds a Source call. Zero means 30 seconds.
	RequestTimeout time.Duration

	// RefreshWindow is how long before its expiry a token is refreshed.
	// It is capped at half the token's lifetime, so a short-lived token is
	// not refreshed on every call. Zero means 5 minutes.
	RefreshWindow time.Duration

	// OnRotate is called when the server returned a refresh token that
	// differs from the current one (GrantRefreshToken only), with the new
	// refresh token, before the new access token is returned to any
	// caller; it should save the token, for example to the file
	// RefreshToken reads. Its ctx is bounded by RequestTimeout and is not
	// any caller's context; OnRotate must return when it ends.
	//
	// The Cache uses the new refresh token from then on whatever OnRotate
	// returns (the server has probably invalidated the old one). If
	// OnRotate fails, Token returns the new access token together with an
	// error wrapping ErrRotationNotSaved and OnRotate's error, and the
	// next refresh calls OnRotate again with the current refresh token
	// even if the server did not rotate it again. A panic in OnRotate is
	// recovered and reported the same way, as an error saying the callback
	// panicked (without the panic value, which may hold the token): it runs
	// on the Cache's goroutine, where no caller could recover it. Nil means
	// the rotated token is kept in memory only.
	OnRotate func(ctx context.Context, newRefreshToken string) error

	// OnFetch, when not nil, is called when a token request ended, once
	// per request however many callers share it (with Shared, when the
	// Cache obtained a token, by a request of its own or from the shared
	// record): took is how long it
	// took, expiry the new token's expiry (zero when the request failed or
	// the token has none), err the failure. ctx is the context of the
	// caller that started the request, without its cancellation, for the
	// values it carries (a trace span). It runs on the Cache's goroutine
	// before the callers are answered, and must be quick.
	OnFetch func(ctx context.Context, took time.Duration, expiry time.Time, err error)

	// Shared, when set, is the token state the Cache shares with the
	// Caches of the same configuration in other processes (see Shared):
	// a token is taken from it when fresh, and otherwise requested by
	// one process at a time under its refresh lease and written back
	// with compare-and-swap, so that a rotating refresh token is never
	// presented twice. The shared record's refresh token wins over
	// RefreshToken's, unless RefreshToken returns one the record has
	// never held (a new grant after re-consent). OnRotate then runs only
	// in the process whose write won. It is ignored with a Source. Nil
	// means the state is this Cache's own.
	Shared Shared

	// LeaseTTL is how long the refresh lease of Shared is held at most;
	// a request made under it times out after RequestTimeout or two
	// thirds of LeaseTTL, whichever is shorter. Zero means 30 seconds.
	LeaseTTL time.Duration

	// Now returns the current time; tests replace it. It is used for
	// expiry, the refresh window and the retry backoff, not for
	// RequestTimeout. Nil means time.Now.
	Now func() time.Time
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) requestTimeout() time.Duration {
	if c.RequestTimeout > 0 {
		return c.RequestTimeout
	}
	return defaultRequestTimeout
}

func (c *Config) refreshWindow() time.Duration {
	if c.RefreshWindow > 0 {
		return c.RefreshWindow
	}
	return defaultRefreshWindow
}

// authStyle returns the style to use: AutoDetect without a client secret
// means parameters, since there is nothing to put in a header.
func (c *Config) authStyle() oauth2.AuthStyle {
	if c.AuthStyle == oauth2.AuthStyleAutoDetect && c.ClientSecret == nil {
		return oauth2.AuthStyleInParams
	}
	return c.AuthStyle
}

// sharedTransport is the transport of the default HTTP client.
var sharedTransport = sync.OnceValue(func() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return http.DefaultTransport
})

func (c *Config) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return &http.Client{
		Transport: sharedTransport(),
		Timeout:   c.requestTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// reservedParams are the form parameters the Config's own fields set.
var reservedParams = []string{"grant_type", "client_id", "client_secret", "refresh_token", "scope"}

// validate reports every problem with c at once.
func (c *Config) validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("oauth2 configuration %q: "+format, append([]any{c.Name}, args...)...))
	}
	if c.RequestTimeout < 0 {
		add("RequestTimeout must not be negative")
	}
	if c.RefreshWindow < 0 {
		add("RefreshWindow must not be negative")
	}
	if c.LeaseTTL < 0 {
		add("LeaseTTL must not be negative")
	}
	if c.Source != nil {
		return errors.Join(errs...)
	}
	switch c.GrantType {
	case GrantClientCredentials:
	case GrantRefreshToken:
		if c.RefreshToken == nil {
			add("RefreshToken is required with grant type %q", GrantRefreshToken)
		}
	case "":
		add("GrantType is required (%q or %q) unless Source is set", GrantClientCredentials, GrantRefreshToken)
	default:
		add("GrantType %q is not supported (use %q or %q)", c.GrantType, GrantClientCredentials, GrantRefreshToken)
	}
	if c.TokenURL == "" {
		add("TokenURL is required")
	} else if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		add("TokenURL must be an absolute http or https URL")
	}
	if c.ClientID == "" {
		add("ClientID is required")
	}
	for _, k := range slices.Sorted(maps.Keys(c.EndpointParams)) {
		if slices.Contains(reservedParams, k) {
			add("EndpointParams must not set %q", k)
		}
	}
	switch c.AuthStyle {
	case oauth2.AuthStyleAutoDetect, oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams:
	default:
		add("AuthStyle %d is not known", c.AuthStyle)
	}
	return errors.Join(errs...)
}

// String describes the configuration without secrets.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauthtoken.Config{Name: %q", c.Name)
	if c.Source != nil {
		b.WriteString(", Source: (custom)}")
		return b.String()
	}
	fmt.Fprintf(&b, ", GrantType: %q, TokenURL: %q, ClientID: %q", c.GrantType, c.TokenURL, c.ClientID)
	if len(c.Scopes) > 0 {
		fmt.Fprintf(&b, ", Scopes: %q", c.Scopes)
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so that %#v prints no secret either.
func (c Config) GoString() string { return c.String() }

// Format writes String for every verb, so that no verb or flag prints the
// Source or the secret functions.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue describes the configuration for log/slog without secrets.
func (c Config) LogValue() slog.Value {
	if c.Source != nil {
		return slog.GroupValue(slog.String("name", c.Name), slog.String("source", "custom"))
	}
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("grantType", c.GrantType),
		slog.String("tokenURL", c.TokenURL),
		slog.String("clientID", c.ClientID),
	)
}
