package emailconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/oauthtoken"
)

// oauthEntry is one OAuth2 configuration of a Registry snapshot with its
// token cache (or of one test). cfg is the configuration as given and is
// never modified: the cache owns the current refresh token, and the
// registry's Config reads it from there (see refreshToken). An entry is
// carried into the next snapshot while the configuration does not change
// (see keeps), so connections keep the cached token. It is safe for
// concurrent use.
type oauthEntry struct {
	cfg   OAuth2Config
	refs  References // Options.References, for the secrets' references
	cache *oauthtoken.Cache
	now   func() time.Time // the cache's clock

	shared bool // the token state is in Options.Store

	// mu guards nothing: cfg is immutable. testconn.go still locks it
	// around reading cfg; remove both together.
	mu sync.Mutex
}

// tokenClock is the clock of the token caches made from now on, for tests
// of expiry; nil means time.Now.
var tokenClock func() time.Time

// refreshToken returns the refresh token the registry's configuration
// shows: a reference as configured (persisting a rotated token is then
// Options.OnRefreshToken's job), a literal as the cache holds it now — the
// rotated one, once the server rotated it.
func (e *oauthEntry) refreshToken() Secret {
	if e.cfg.RefreshToken.IsReference() {
		return e.cfg.RefreshToken
	}
	if rt, ok := e.cache.RefreshToken(); ok {
		return Secret(rt)
	}
	return e.cfg.RefreshToken
}

// keeps reports whether o is the entry's configuration, so that a new
// snapshot keeps the entry and its cache: equal in every field, the refresh
// token either as configured or as the cache holds it now (a configuration
// read back from Registry.Config after a rotation).
func (e *oauthEntry) keeps(o *OAuth2Config) bool {
	x, y := e.cfg, *o
	if !sameSource(x.TokenSource, y.TokenSource) {
		return false
	}
	x.TokenSource, y.TokenSource = nil, nil
	if y.RefreshToken == e.refreshToken() {
		y.RefreshToken = x.RefreshToken
	}
	return reflect.DeepEqual(x, y)
}

// sameSource reports whether a and b are the same TokenSource. Sources of
// a type that cannot be compared (a struct value holding a slice) are
// different: comparing them would panic.
func sameSource(a, b oauth2.TokenSource) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// reveal reads one of the configuration's secrets under
// Options.References.
func (e *oauthEntry) reveal(s Secret, field string) (string, error) {
	v, msg := s.reveal(&e.refs)
	if msg != "" {
		return "", &FieldError{Field: field, Problem: msg}
	}
	return v, nil
}

// newOAuthEntry makes the token cache of cfg. onRotate receives a rotated
// refresh token before its access token is used; nil means rotated, which
// hands it to opts.OnRefreshToken.
func newOAuthEntry(cfg OAuth2Config, opts *Options, onRotate func(ctx context.Context, e *oauthEntry, rt string) error) *oauthEntry {
	e := &oauthEntry{cfg: cfg, refs: opts.References, now: time.Now}
	if tokenClock != nil {
		e.now = tokenClock
	}
	tc := oauthtoken.Config{
		Now:            e.now,
		Name:           cfg.Name,
		GrantType:      string(cfg.GrantType),
		TokenURL:       cfg.tokenURL(),
		ClientID:       cfg.ClientID,
		Scopes:         cfg.scopes(),
		EndpointParams: cfg.EndpointParams,
		Source:         cfg.TokenSource,
		HTTPClient:     opts.HTTPClient,
		OnFetch:        traceRefreshes(opts.Trace, cfg.Name),
	}
	if opts.Store != nil {
		tc.Shared, tc.LeaseTTL = newTokenShare(opts, cfg.Name), opts.leaseTTL
		e.shared = cfg.TokenSource == nil
	}
	if tc.HTTPClient == nil && opts.DialPolicy != nil {
		// The token cache's shared default does not dial under the policy.
		tc.HTTPClient = newTokenClient(opts).Client
	}
	if tc.HTTPClient != nil && tc.HTTPClient.Timeout > 0 {
		tc.RequestTimeout = tc.HTTPClient.Timeout
	}
	switch cfg.ClientAuth {
	case clientAuthHeader:
		tc.AuthStyle = oauth2.AuthStyleInHeader
	case clientAuthBody:
		tc.AuthStyle = oauth2.AuthStyleInParams
	}
	if cfg.ClientSecret != "" {
		tc.ClientSecret = func() (string, error) { return e.reveal(cfg.ClientSecret, "ClientSecret") }
	}
	if cfg.GrantType == grantRefreshToken {
		tc.RefreshToken = func() (string, error) { return e.reveal(cfg.RefreshToken, "RefreshToken") }
		if onRotate == nil {
			onRotate = rotated(opts.OnRefreshToken, opts.Logger)
		}
		tc.OnRotate = func(ctx context.Context, rt string) error { return onRotate(ctx, e, rt) }
	}
	e.cache = oauthtoken.New(tc)
	return e
}

// rotated returns the handler of a rotated refresh token: it hands the
// token to Options.OnRefreshToken (fn). Without one, a configuration that
// refers to its refresh token keeps the new one in memory only, which is
// logged; a literal one is shown from the cache by Registry.Config, so
// Config.Save writes it. Nothing else is rebuilt: the cache already holds
// the new token.
func rotated(fn func(context.Context, string, string) error, logger *slog.Logger) func(context.Context, *oauthEntry, string) error {
	return func(ctx context.Context, e *oauthEntry, rt string) error {
		if fn != nil {
			return callOnRefreshToken(ctx, fn, e.cfg.Name, rt)
		}
		if e.cfg.RefreshToken.IsReference() && logger != nil {
			logger.LogAttrs(ctx, slog.LevelWarn, "oauth2 refresh token rotated; the configuration refers to it and no Options.OnRefreshToken persists it, so it is kept in memory only",
				slog.String("oauth2Configuration", e.cfg.Name), slog.String("refreshToken", e.cfg.RefreshToken.String()))
		}
		return nil
	}
}

// errCallbackPanicked is the cause of an Options.OnRefreshToken that
// panicked. The panic value is not kept: it may hold the token.
var errCallbackPanicked = errors.New("panicked")

// callOnRefreshToken calls Options.OnRefreshToken, turning a panic into an
// error: it runs on the token cache's goroutine, where no caller could
// recover it. The error names the callback; the token cache reports it
// wrapped in an error matching oauthtoken.ErrRotationNotSaved.
func callOnRefreshToken(ctx context.Context, fn func(context.Context, string, string) error, name, rt string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &wrapped{msg: "Options.OnRefreshToken panicked", err: errCallbackPanicked}
		}
	}()
	if err := fn(ctx, name, rt); err != nil {
		return &wrapped{msg: "Options.OnRefreshToken: " + err.Error(), err: err}
	}
	return nil
}

// cacheTokens is the tokenSource of a connection: its configuration's
// cache.
type cacheTokens struct {
	e      *oauthEntry
	logger *slog.Logger
}

func (t cacheTokens) token(ctx context.Context) (string, error) {
	tok, err := t.e.cache.Token(ctx)
	if err != nil && tok != nil && errors.Is(err, oauthtoken.ErrRotationNotSaved) {
		// The new token works; saving the rotated refresh token did not.
		if t.logger != nil {
			t.logger.LogAttrs(ctx, slog.LevelError, "oauth2 refresh token rotated but not saved",
				slog.String("oauth2Configuration", t.e.cfg.Name), slog.String("error", err.Error()))
		}
		err = nil
	}
	if err != nil {
		return "", &tokenError{err: err}
	}
	return tok.AccessToken, nil
}

func (t cacheTokens) invalidate(token string) { t.e.cache.Invalidate(token) }

// tokenError is a failure to obtain an access token: the Err of an *Error
// at StageToken, and the Err of an OAuth2Report. Its message is the token
// cache's, which names the configuration and what failed, after
// "emailconn: ".
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "emailconn: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// Is reports the sentinel of the failure: ErrStore when Options.Store
// failed, ErrReauthorize for an invalid grant, ErrBlocked for a token endpoint the dial policy refused, ErrTimeout
// when the token request timed out, ErrConnect when the token endpoint
// could not be reached or answered that it is unavailable (HTTP 408, 429 or
// 5xx, temporarily_unavailable, server_error), and ErrAuthFailed for any
// other lasting refusal (invalid_client, invalid_scope, a response that is
// not a token, a client secret that cannot be read). A closed Registry
// matches ErrClosed and a caller's ended context its error, through Unwrap.
func (e *tokenError) Is(target error) bool {
	switch target {
	case ErrReauthorize:
		return errors.Is(e.err, oauthtoken.ErrInvalidGrant)
	case ErrBlocked:
		return e.blocked()
	case ErrTimeout:
		return errors.Is(e.err, oauthtoken.ErrTimeout)
	case ErrConnect:
		return e.Temporary() && !errors.Is(e.err, oauthtoken.ErrTimeout) && !errors.Is(e.err, oauthtoken.ErrShared)
	case ErrStore:
		return errors.Is(e.err, oauthtoken.ErrShared)
	case ErrAuthFailed:
		return !e.Temporary() && !e.blocked() && !errors.Is(e.err, oauthtoken.ErrInvalidGrant) && !errors.Is(e.err, ErrClosed) &&
			!errors.Is(e.err, context.Canceled) && !errors.Is(e.err, context.DeadlineExceeded)
	}
	return false
}

// blocked reports a token endpoint the dial policy refused.
func (e *tokenError) blocked() bool { return errors.Is(e.err, dialguard.ErrBlocked) }

// Temporary reports whether the token endpoint may answer later. A refusal
// of the dial policy and a closed Registry are not temporary.
func (e *tokenError) Temporary() bool {
	if errors.Is(e.err, oauthtoken.ErrShared) {
		return true
	}
	var oe *oauthtoken.Error
	return errors.As(e.err, &oe) && oe.Temporary && !e.blocked() && !errors.Is(e.err, ErrClosed)
}

// An OAuth2Report is the result of testing an OAuth2 configuration on its
// own (the Test button of an OAuth2 configuration): whether a token could be
// obtained, when it expires, what was granted and, when the access token is
// a JWT, what its claims say — decoded for diagnosis only, never verified
// or trusted. It holds no secret and no token. It marshals to stable JSON.
type OAuth2Report struct {
	// OAuth2Config is the configuration's name.
	OAuth2Config string `json:"oauth2Configuration"`
	// OK reports whether a token was obtained.
	OK bool `json:"ok"`
	// Sentence says in one sentence what was proven or what failed.
	Sentence string `json:"sentence"`
	// TokenURL and GrantType are what was used.
	TokenURL  string `json:"tokenURL,omitempty"`
	GrantType string `json:"grantType,omitempty"`
	// Expiry is when the token expires; zero when it has none.
	Expiry time.Time `json:"expiry"`
	// GrantedScopes are the scopes the token endpoint said it granted.
	GrantedScopes []string `json:"grantedScopes"`
	// Claims are the access token's claims when it is a JWT, else nil.
	Claims *TokenClaims `json:"claims,omitempty"`
	// Hints say what to change: for a failure, for a token SMTP will
	// refuse, or for a rotated refresh token that Options.OnRefreshToken
	// failed to save (the report is still OK then).
	Hints []string `json:"hints"`
	// Duration is how long the test took.
	Duration time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds.
	DurationMS int64 `json:"durationMs"`
	// Err is the error when OK is false. A failed token request matches
	// the sentinel a send would get at StageToken: ErrReauthorize,
	// ErrAuthFailed, ErrConnect, ErrTimeout, ErrBlocked or, when
	// Options.Store could not decide, ErrStore (ErrClosed after
	// Registry.Close); an unknown name or invalid configuration ErrInvalid.
	Err error `json:"-"`
	// Error is Err's text.
	Error string `json:"error,omitempty"`
}

// TokenClaims are the claims of a JWT access token that explain whether a
// mail server will accept it.
type TokenClaims struct {
	Issuer    string    `json:"iss,omitempty"`   // who issued the token
	Audience  []string  `json:"aud,omitempty"`   // whom it is for: Exchange Online is https://outlook.office365.com
	Scopes    []string  `json:"scp,omitempty"`   // delegated permissions, e.g. SMTP.Send
	Roles     []string  `json:"roles,omitempty"` // application permissions, e.g. SMTP.SendAsApp
	AppID     string    `json:"appid,omitempty"` // the application (appid or azp)
	User      string    `json:"user,omitempty"`  // the user (upn, preferred_username or sub)
	TenantID  string    `json:"tid,omitempty"`   // the Microsoft Entra tenant
	IssuedAt  time.Time `json:"iat"`             // when it was issued; zero when absent
	NotBefore time.Time `json:"nbf"`             // when it becomes valid; zero when absent
	ExpiresAt time.Time `json:"exp"`             // when it expires; zero when absent
}

// TestOAuth2 tests the named OAuth2 configuration of the registry (the
// Test button of a saved configuration): it obtains a fresh token with
// exactly one request through the registry's token cache — so the
// registry's connections then use that token, and a rotated refresh token
// is handed to Options.OnRefreshToken once and kept by the cache, its one
// owner — and reports on it. It never returns nil. An unknown name is
// reported with an Err matching ErrNotFound (naming the closest known
// name), and after Close with ErrClosed; see OAuth2Report.Err for the
// rest. It is safe for concurrent use; a test while a token request is in
// flight joins it.
func (r *Registry) TestOAuth2(ctx context.Context, name string) *OAuth2Report {
	rep := &OAuth2Report{OAuth2Config: name, GrantedScopes: []string{}, Hints: []string{}}
	s := r.cur.Load()
	var e *oauthEntry
	if s != nil {
		e = s.oauth[name]
	}
	if e == nil {
		var known []string
		if s != nil {
			known = slices.Collect(maps.Keys(s.oauth))
		}
		rep.fail(&notFoundError{kind: "OAuth2 configuration", name: name, known: known})
		return rep
	}
	return e.test(ctx, rep)
}

// check is Validate and checkRefs: every problem of a configuration that
// is not in a Registry, by Go field name.
func (o *OAuth2Config) check(refs *References) error {
	var p problems
	o.validate(&p, oauth2GoNames)
	o.checkRefs(&p, oauth2GoNames, refs)
	return p.err()
}

// Test tests an OAuth2 configuration that is not saved in a
// registry (the Test button of a configuration being edited), with a token
// cache of its own that ends with the call; a saved one is tested with
// Registry.TestOAuth2, whose cache the connections share. opts may be nil;
// its References, HTTPClient (else a client of the call's own, closed
// before it returns, dialling under DialPolicy), OnRefreshToken and Logger
// are used. It never returns nil. An invalid configuration, or a secret
// reference that References does not allow, is reported with an Err
// matching ErrInvalid whose problems name the Go fields; see
// OAuth2Report.Err for the rest. It is safe for concurrent use.
func (cfg OAuth2Config) Test(ctx context.Context, opts *Options) *OAuth2Report {
	rep := &OAuth2Report{OAuth2Config: cfg.Name, GrantedScopes: []string{}, Hints: []string{}}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if err := cfg.check(&o.References); err != nil {
		rep.fail(err)
		return rep
	}
	// A client of its own, closed when the test ends: no keep-alive
	// connection outlives a one-off test.
	defer ownTokenClient(&o).close()
	return newOAuthEntry(cfg, &o, nil).test(ctx, rep)
}

func (rep *OAuth2Report) fail(err error) {
	rep.OK, rep.Err, rep.Error = false, err, err.Error()
	name := strconv.Quote(rep.OAuth2Config)
	detail := strings.TrimPrefix(strings.TrimPrefix(err.Error(), "emailconn: "), "oauth2 configuration "+name+": ")
	rep.Sentence = "Could not obtain an access token for OAuth2 configuration " + name + ": " + detail + "."
}

// test obtains a fresh token and fills the report.
func (e *oauthEntry) test(ctx context.Context, rep *OAuth2Report) *OAuth2Report {
	start := time.Now()
	defer func() {
		rep.Duration = time.Since(start)
		rep.DurationMS = rep.Duration.Milliseconds()
	}()
	cfg := &e.cfg
	rep.TokenURL, rep.GrantType = cfg.tokenURL(), cfg.GrantType
	if cfg.TokenSource != nil {
		rep.TokenURL = ""
	}
	// One request, whatever the cache holds: the endpoint is really asked.
	tok, err := e.cache.Refresh(ctx)
	if err != nil && !(tok != nil && errors.Is(err, oauthtoken.ErrRotationNotSaved)) {
		err = &tokenError{err: err}
		rep.fail(err)
		rep.Hints = append(rep.Hints, oauth2Hints(cfg, err)...)
		return rep
	}
	if err != nil {
		rep.Hints = append(rep.Hints, "The token endpoint rotated the refresh token and saving the new one failed ("+
			strings.TrimPrefix((&tokenError{err: err}).Error(), "emailconn: ")+
			"): the new refresh token is used from memory, and saving it is tried again at the next refresh. Fix Options.OnRefreshToken before the process restarts, or the configuration must be authorised again.")
	}
	info := oauthtoken.Inspect(tok)
	rep.OK = true
	rep.Expiry = info.Expiry
	if info.GrantedScopes != nil {
		rep.GrantedScopes = info.GrantedScopes
	}
	if info.JWT {
		rep.Claims = &TokenClaims{Issuer: info.Issuer, Audience: info.Audience, Scopes: info.Scopes, Roles: info.Roles,
			AppID: info.AppID, User: info.User, TenantID: info.TenantID, IssuedAt: info.IssuedAt, NotBefore: info.NotBefore, ExpiresAt: info.ExpiresAt}
		rep.Hints = append(rep.Hints, claimHints(cfg, rep.Claims)...)
	}
	if e.shared {
		rep.Hints = append(rep.Hints, sharedTokenHint)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Obtained an access token for OAuth2 configuration %q", cfg.Name)
	if rep.TokenURL != "" {
		fmt.Fprintf(&b, " from %s", rep.TokenURL)
	}
	if !info.Expiry.IsZero() {
		fmt.Fprintf(&b, "; it expires in %s", info.Expiry.Sub(e.now()).Round(time.Second))
	}
	if len(rep.GrantedScopes) > 0 {
		fmt.Fprintf(&b, " and grants %s", strings.Join(rep.GrantedScopes, " "))
	}
	b.WriteString(".")
	rep.Sentence = b.String()
	return rep
}

// oauth2Hints says what to change after a token request failed.
func oauth2Hints(cfg *OAuth2Config, err error) []string {
	var oe *oauthtoken.Error
	errors.As(err, &oe)
	code := ""
	if oe != nil {
		code = oe.Code
	}
	switch {
	case errors.Is(err, ErrStore):
		return []string{"The state shared by the engine's nodes (Options.Store) could not be read or written, so no token was requested: refreshing without the shared lease could present a refresh token another node has rotated, which revokes the grant. Check the database and try again."}
	case errors.Is(err, ErrBlocked):
		return []string{"The dial policy does not allow the token endpoint's address: check tokenURL, or allow its address in the dial policy."}
	case errors.Is(err, ErrTimeout):
		return []string{"The token endpoint did not answer within the request timeout: it may be overloaded, or a proxy or firewall holds the request; try again later."}
	case errors.Is(err, oauthtoken.ErrInvalidGrant):
		return []string{"The refresh token was revoked, expired or already used (Microsoft: unused for 90 days, password change, or consent withdrawn): authorise the configuration again and store the new refresh token."}
	case errors.Is(err, oauthtoken.ErrInvalidClient):
		return []string{"The token endpoint refused the client: check the client ID and the client secret (secrets expire; Microsoft Entra shows their expiry under Certificates & secrets) and the client authentication method (clientAuth)."}
	case code == "invalid_scope":
		if cfg.Provider == providerMicrosoft365 || strings.Contains(cfg.tokenURL(), "microsoftonline") {
			return []string{"The scope is not valid for this grant: with client credentials use https://outlook.office365.com/.default; with a refresh token use https://outlook.office.com/SMTP.Send offline_access."}
		}
		return []string{"The token endpoint does not accept the requested scopes: check scopes."}
	case code == "unauthorized_client":
		return []string{"The application may not use this grant type: check the app registration (for client credentials, an application permission with admin consent)."}
	case errors.Is(err, oauthtoken.ErrUnreachable):
		return []string{"The token endpoint could not be reached: check tokenURL and the network (proxies, firewalls); if they are right, the endpoint is down: try again later."}
	case oe != nil && oe.Temporary:
		return []string{"The token endpoint is unavailable or slow right now; try again later."}
	case oe == nil:
		return []string{"The token endpoint could not be reached: check tokenURL and the network (proxies, firewalls)."}
	}
	return nil
}

// claimHints warns about tokens a mail server will refuse.
func claimHints(cfg *OAuth2Config, c *TokenClaims) []string {
	var hints []string
	microsoft := strings.HasPrefix(c.Issuer, "https://sts.windows.net/") || strings.HasPrefix(c.Issuer, "https://login.microsoftonline.com/")
	if !microsoft {
		return nil
	}
	exchange := false
	for _, a := range c.Audience {
		if a == "https://outlook.office365.com" || a == "https://outlook.office.com" || a == "00000002-0000-0ff1-ce00-000000000000" {
			exchange = true
		}
	}
	if !exchange {
		hints = append(hints, fmt.Sprintf("The token's audience is %s, not Exchange Online: SMTP will refuse it (535 5.7.3). Request the scope https://outlook.office365.com/.default.", strings.Join(c.Audience, ", ")))
	}
	if cfg.GrantType == grantClientCredentials && !slices.Contains(c.Roles, "SMTP.SendAsApp") {
		hints = append(hints, "The token has no SMTP.SendAsApp role: grant the application permission SMTP.SendAsApp (Office 365 Exchange Online) with admin consent, and register its service principal in Exchange.")
	}
	if cfg.GrantType == grantRefreshToken && len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "SMTP.Send") {
		hints = append(hints, "The token has no SMTP.Send scope: request https://outlook.office.com/SMTP.Send.")
	}
	return hints
}
