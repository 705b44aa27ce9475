package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// A Cache holds one access token for one Config, fetches it when needed and
// refreshes it ahead of expiry. Create it with New; the zero value returns
// an error from Token. It is safe for concurrent use and makes at most one
// token request at a time.
//
// A Cache prints as its configuration's name only; it never prints or logs a
// token or secret.
type Cache struct {
	c *cache // behind a pointer, so that printing a Cache value shows no state
}

type cache struct {
	cfg    Config
	cfgErr error
	client *http.Client
	cc     *clientcredentials.Config

	mu      sync.Mutex
	cur     *entry    // the cached token; nil when none
	flight  *flight   // the token request in progress; nil when none
	retryAt time.Time // no proactive refresh before this
	rec     record    // the refresh-token record: see load and commit

	// onWait, set by tests before use, is called by every caller about
	// to wait for a token request, so that a test knows when callers
	// have piled up. Nil in production.
	onWait func()

	// rejected is the access token Invalidate dropped: a shared record
	// holding it is not adopted again.
	rejected string

	// Owned by the one refresh in progress (handed over through mu).
	// detected is the client authentication style AutoDetect found to
	// work; AutoDetect while none has yet.
	detected oauth2.AuthStyle

	// With Config.Shared (shared.go), also owned by the refresh in
	// progress: Config.RefreshToken as read (confRT is written under mu,
	// for knownSecrets), the fingerprint of a configured token the
	// endpoint refused, a record the store failed to take, and the
	// version of the record read under the lease.
	confRT     string
	confErr    error
	confRead   bool
	distrusted string
	unsaved    *unsavedSwap
	leasedVer  int64
}

// A record is the refresh-token state of a Cache: the one place the
// current refresh token lives. Only the request in flight changes it: it
// loads the record when it starts and commits the new one, both under mu;
// RefreshToken reads it. A store shared by several processes would sit
// behind exactly these two steps, commit becoming a compare-and-swap
// against the record loaded.
type record struct {
	rt      string // the current refresh token; "" until one was read
	loaded  bool   // rt is usable; false at first and after invalid_grant, when Config.RefreshToken is read again
	pending bool   // rt was rotated and OnRotate has not saved it yet
}

// An entry is a fetched token, never modified.
type entry struct {
	tok      *oauth2.Token // Expiry on Config.Now's clock; no RefreshToken
	obtained time.Time     // Config.Now when the request started
}

// A flight is a token request that callers wait for.
type flight struct {
	force  bool          // Refresh: a token newer than the call (Config.Shared)
	done   chan struct{} // closed when the fields below are set
	tok    *oauth2.Token
	err    error
	rotErr error
	ctx    context.Context // the starting caller's, uncancelled: for Config.OnFetch
}

// New returns a Cache for cfg. It makes no request: the first Token does.
// A problem with cfg (a missing TokenURL, an unknown GrantType, …) is
// returned by every Token call, all problems joined.
func New(cfg Config) *Cache {
	cfg.Scopes = slices.Clone(cfg.Scopes)
	cfg.EndpointParams = maps.Clone(cfg.EndpointParams)
	c := &cache{cfg: cfg, cfgErr: cfg.validate()}
	if c.cfgErr == nil && cfg.Source == nil {
		c.client = cfg.httpClient()
		c.cc = &clientcredentials.Config{
			ClientID:  cfg.ClientID,
			TokenURL:  cfg.TokenURL,
			Scopes:    cfg.Scopes,
			AuthStyle: cfg.authStyle(),
		}
	}
	return &Cache{c: c}
}

var errNotNew = errors.New("oauthtoken: Cache not created with New")

// Token returns the cached access token, or fetches a new one when there is
// none, it has expired or it is inside the refresh window.
//
// A fetch is shared by all callers that need it and runs on a context of its
// own bounded by Config.RequestTimeout, not on ctx. Token waits for it only
// as long as ctx allows: if ctx ends first, Token returns an error wrapping
// ctx.Err() and the fetch goes on for the others.
//
// Inside the refresh window, the caller that starts the refresh waits for
// it, and callers that arrive while it is in progress get the cached token
// at once. When the refresh fails (for any reason, temporary or not), Token
// returns the cached token with a nil error as long as the token is still
// valid, and does not try again for 5 seconds. Once it has expired,
// Token returns the error: an *Error for a failed request, or an error
// naming the configuration for a problem with it (a Config field, a failing
// ClientSecret or RefreshToken function).
//
// When Config.OnRotate fails, the callers served by that refresh get the
// new token together with an error wrapping ErrRotationNotSaved: the token
// is usable, and the error is for reporting.
//
// The returned token is the caller's own copy. Its RefreshToken is empty;
// its Expiry is on Config.Now's clock.
func (c *Cache) Token(ctx context.Context) (*oauth2.Token, error) {
	if c == nil || c.c == nil {
		return nil, errNotNew
	}
	return c.c.get(ctx, false)
}

// get returns the cached token when it is good and fresh is false, and
// otherwise the token of a request, joined or started.
func (c *cache) get(ctx context.Context, fresh bool) (*oauth2.Token, error) {
	if c.cfgErr != nil {
		return nil, c.cfgErr
	}
	if ctx.Err() != nil {
		return nil, ctxError(c.cfg.Name, ctx)
	}
	c.mu.Lock()
	now := c.cfg.now()
	var fallback *entry // the cached token, valid, inside the refresh window
	if e := c.cur; e != nil && e.usable(now) && !fresh {
		if !e.due(now, c.cfg.refreshWindow()) || c.flight != nil || now.Before(c.retryAt) {
			c.mu.Unlock()
			return copyToken(e.tok), nil
		}
		fallback = e
	}
	f := c.flight
	if f == nil {
		f = c.start(ctx, fresh)
	}
	c.mu.Unlock()
	return c.wait(ctx, f, fallback)
}

// wait waits for f as long as ctx allows. When f failed, a fallback still
// usable is returned instead of the error.
func (c *cache) wait(ctx context.Context, f *flight, fallback *entry) (*oauth2.Token, error) {
	if c.onWait != nil {
		c.onWait()
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, ctxError(c.cfg.Name, ctx)
	}
	if f.err != nil {
		if fallback != nil && fallback.usable(c.cfg.now()) {
			return copyToken(fallback.tok), nil
		}
		return nil, f.err
	}
	return copyToken(f.tok), f.rotErr
}

// Refresh fetches a new token whatever the cache holds, caches it and
// returns it, for a caller that must know the token endpoint answers now
// (a "Test" button). A request already in flight is joined instead of
// starting a second one: it is as fresh. It makes exactly one request (or
// none, when it joins one), so with a rotating refresh token OnRotate runs
// at most once.
//
// Errors are those of Token, except that a failed request is returned even
// when a cached token is still valid (that token stays cached and Token
// goes on returning it). Like Token, Refresh waits only as long as ctx
// allows, and the request goes on for the others when ctx ends first. It
// is safe for concurrent use.
func (c *Cache) Refresh(ctx context.Context) (*oauth2.Token, error) {
	if c == nil || c.c == nil {
		return nil, errNotNew
	}
	return c.c.get(ctx, true)
}

// start starts a token request. c.mu must be held.
func (c *cache) start(ctx context.Context, force bool) *flight {
	f := &flight{done: make(chan struct{}), force: force}
	if c.cfg.OnFetch != nil {
		f.ctx = context.WithoutCancel(ctx)
	}
	c.flight = f
	go c.run(f)
	return f
}

func (c *cache) run(f *flight) {
	var e *entry
	var rotErr, err error
	began := time.Now()
	if c.shared() {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.sharedFlightTimeout())
		e, rotErr, err = c.fetchShared(ctx, f.force)
		cancel()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.requestTimeout())
		e, rotErr, err = c.fetch(ctx)
		cancel()
	}
	if c.cfg.OnFetch != nil {
		var expiry time.Time
		if err == nil {
			expiry = e.tok.Expiry
		}
		c.cfg.OnFetch(f.ctx, time.Since(began), expiry, err)
	}

	c.mu.Lock()
	if err == nil {
		c.cur = e
		c.retryAt = time.Time{}
		f.tok = e.tok
	} else {
		c.retryAt = c.cfg.now().Add(retryBackoff)
	}
	f.err, f.rotErr = err, rotErr
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// Invalidate drops the cached token if its access token is accessToken, so
// that the next Token fetches a new one. Call it when a server rejected the
// token before its expiry. A token that is no longer the cached one (another
// caller already replaced it) is ignored, so that many callers reporting
// the same rejected token cause one new request. It makes no request itself
// and is safe for concurrent use.
func (c *Cache) Invalidate(accessToken string) {
	if c == nil || c.c == nil {
		return
	}
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	if e := c.c.cur; e != nil && e.tok.AccessToken == accessToken {
		c.c.cur = nil
		c.c.retryAt = time.Time{}
		c.c.rejected = accessToken
	}
}

// RefreshToken returns the refresh token the Cache holds: the one the
// server returned last (rotated), else the one read from
// Config.RefreshToken. ok is false while the Cache has read none (before
// its first token request with GrantRefreshToken). After the server
// answered invalid_grant it is the refused token until the next request
// reads Config.RefreshToken again. The Cache is the one owner of the
// current refresh token: whoever shows or saves the configuration reads it
// here. It is safe for concurrent use.
func (c *Cache) RefreshToken() (rt string, ok bool) {
	if c == nil || c.c == nil {
		return "", false
	}
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	return c.c.rec.rt, c.c.rec.rt != ""
}

// shared reports whether the token state is shared with other processes:
// Config.Shared is set and the tokens come from a grant, not a Source.
func (c *cache) shared() bool { return c.cfg.Shared != nil && c.cfg.Source == nil }

// load returns the refresh-token record for a request, reading
// Config.RefreshToken first when the record holds no usable token.
func (c *cache) load() (record, error) {
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	if rec.loaded {
		return rec, nil
	}
	rt, err := c.cfg.RefreshToken()
	if err != nil {
		return rec, fmt.Errorf("oauth2 configuration %q: refresh token: %w", c.cfg.Name, err)
	}
	if rt == "" {
		return rec, fmt.Errorf("oauth2 configuration %q: no refresh token stored: %w", c.cfg.Name, ErrInvalidGrant)
	}
	rec = record{rt: rt, loaded: true}
	c.commit(rec)
	return rec, nil
}

// commit makes rec the Cache's refresh-token record.
func (c *cache) commit(rec record) {
	c.mu.Lock()
	c.rec = rec
	c.mu.Unlock()
}

// Expiry returns the expiry of the cached token on Config.Now's clock. It
// is the zero time when there is no cached token or the token has no
// expiry. It is safe for concurrent use.
func (c *Cache) Expiry() time.Time {
	if c == nil || c.c == nil {
		return time.Time{}
	}
	c.c.mu.Lock()
	defer c.c.mu.Unlock()
	if c.c.cur == nil {
		return time.Time{}
	}
	return c.c.cur.tok.Expiry
}

// String returns "oauthtoken.Cache{Config: <name>}".
func (c Cache) String() string {
	if c.c == nil {
		return "oauthtoken.Cache{}"
	}
	return fmt.Sprintf("oauthtoken.Cache{Config: %q}", c.c.cfg.Name)
}

// GoString is String.
func (c Cache) GoString() string { return c.String() }

// Format writes String for every verb: fmt would otherwise print the
// cached state for some verbs.
func (c Cache) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// lifetime is how long the token was valid for when it was obtained.
func (e *entry) lifetime() time.Duration { return e.tok.Expiry.Sub(e.obtained) }

// usable reports whether the token can still be handed out at now: it has
// no expiry, or now is before the expiry less a skew of a tenth of its
// lifetime, at most 10 seconds.
func (e *entry) usable(now time.Time) bool {
	if e.tok.Expiry.IsZero() {
		return true
	}
	life := e.lifetime()
	if life <= 0 {
		return false
	}
	return now.Before(e.tok.Expiry.Add(-min(maxSkew, life/10)))
}

// due reports whether the token should be refreshed at now: it is within
// window of its expiry, the window capped at half the token's lifetime.
func (e *entry) due(now time.Time, window time.Duration) bool {
	if e.tok.Expiry.IsZero() {
		return false
	}
	window = min(window, max(e.lifetime()/2, 0))
	return !now.Before(e.tok.Expiry.Add(-window))
}

func copyToken(t *oauth2.Token) *oauth2.Token {
	t2 := *t
	return &t2
}
