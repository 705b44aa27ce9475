package oauthtoken

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// Shared is the token state a Cache shares with the Caches of the same
// configuration in other processes (issue 15): one record and one lease.
// The caller binds it to the configuration (its keys) and to the process
// (the lease's owner). Its methods are single decisions of the store
// behind it, safe for concurrent use; none holds anything after it
// returns. An error means the store could not decide.
type Shared interface {
	// Load returns the record and its version; version 0 and a nil
	// value when there is none.
	Load(ctx context.Context) (value []byte, version int64, err error)
	// Swap writes value if the record's version is still version, and
	// reports whether it did.
	Swap(ctx context.Context, version int64, value []byte) (bool, error)
	// Lock takes the refresh lease for ttl. When another owner holds it,
	// ok is false and wait is the time until that lease expires.
	Lock(ctx context.Context, ttl time.Duration) (ok bool, wait time.Duration, err error)
	// Unlock releases the lease; releasing one no longer held does
	// nothing.
	Unlock(ctx context.Context) error
}

// ErrShared reports that the shared token state (Config.Shared) could not
// be read or written: nothing was requested from the token endpoint, since
// refreshing without the lease could present a refresh token another
// process has already rotated. It is temporary.
var ErrShared = errors.New("shared token state unreachable")

// defaultLeaseTTL is the refresh lease's length when Config.LeaseTTL is
// zero.
const defaultLeaseTTL = 30 * time.Second

// Polling for another process's refresh: the first wait, doubled up to
// the last.
const (
	pollFirst = 10 * time.Millisecond
	pollMax   = 250 * time.Millisecond
)

// knownMax bounds the fingerprints a shared record keeps.
const knownMax = 32

// sharedRecord is the JSON of the shared record: the token state of one
// configuration, written only by the holder of the refresh lease.
type sharedRecord struct {
	RefreshToken string    `json:"refreshToken,omitempty"`
	AccessToken  string    `json:"accessToken,omitempty"`
	TokenType    string    `json:"tokenType,omitempty"`
	Scope        string    `json:"scope,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`   // on the writer's clock
	Obtained     time.Time `json:"obtained,omitzero"` // when the request started
	// Known are the fingerprints of every refresh token the record has
	// held or was seeded from, oldest first, at most knownMax: a
	// configured refresh token that is not among them is a new grant
	// (re-consent) and wins over the record's.
	Known []string `json:"known,omitempty"`
}

// fingerprint identifies a refresh token without revealing it: a
// truncated SHA-256 of a high-entropy secret.
func fingerprint(rt string) string {
	sum := sha256.Sum256([]byte("emailconn refresh token\x00" + rt))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func (r *sharedRecord) knows(rt string) bool {
	return slices.Contains(r.Known, fingerprint(rt))
}

// remember adds rt's fingerprint to Known.
func (r *sharedRecord) remember(rt string) {
	if rt == "" || r.knows(rt) {
		return
	}
	r.Known = append(r.Known, fingerprint(rt))
	if n := len(r.Known); n > knownMax {
		r.Known = slices.Clone(r.Known[n-knownMax:])
	}
}

// entry returns the record's access token as a cache entry, or nil.
func (r *sharedRecord) entry() *entry {
	if r.AccessToken == "" {
		return nil
	}
	t := &oauth2.Token{AccessToken: r.AccessToken, TokenType: r.TokenType, Expiry: r.Expiry}
	if r.Scope != "" {
		t = t.WithExtra(map[string]any{"scope": r.Scope})
	}
	return &entry{tok: t, obtained: r.Obtained}
}

func (c *Config) leaseTTL() time.Duration {
	if c.LeaseTTL > 0 {
		return c.LeaseTTL
	}
	return defaultLeaseTTL
}

// sharedRequestTimeout is the deadline of a token request made under the
// lease: RequestTimeout, capped at two thirds of the lease, so that the
// request has ended (and its result been swapped in) before the lease
// can pass to another process.
func (c *Config) sharedRequestTimeout() time.Duration {
	return min(c.requestTimeout(), c.leaseTTL()*2/3)
}

// sharedFlightTimeout bounds one shared refresh decision end to end:
// waiting out another process's lease, then a request of its own.
func (c *Config) sharedFlightTimeout() time.Duration {
	return 2*c.leaseTTL() + c.requestTimeout()
}

// sharedError is a failure of the shared state.
type sharedError struct {
	config string
	op     string // "reading", "writing", "taking the refresh lease"
	msg    string // the store's error, cleaned
	err    error
}

func (e *sharedError) Error() string {
	return fmt.Sprintf("oauth2 configuration %q: shared token state: %s: %s", e.config, e.op, e.msg)
}

func (e *sharedError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrShared}
	}
	return []error{ErrShared, e.err}
}

// Temporary reports true: the store may answer later.
func (e *sharedError) Temporary() bool { return true }

// sharedErr reports err of the store. The end of the refresh's own
// context is reported as a timeout of the decision, not as the context's
// error: no caller's context ended.
func (c *cache) sharedErr(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &sharedError{config: c.cfg.Name, op: op, msg: fmt.Sprintf("no decision within %v", c.cfg.sharedFlightTimeout())}
	}
	return &sharedError{config: c.cfg.Name, op: op, msg: clean(err.Error(), maxDetail, c.knownSecrets()), err: err}
}

// knownSecrets are the tokens the cache knows of, kept out of errors.
func (c *cache) knownSecrets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := []string{c.rec.rt, c.confRT}
	if c.cur != nil {
		s = append(s, c.cur.tok.AccessToken)
	}
	return s
}

// loadShared reads the shared record. A record that does not decode is
// treated as empty: the next refresh overwrites it.
func (c *cache) loadShared(ctx context.Context) (sharedRecord, int64, error) {
	v, ver, err := c.cfg.Shared.Load(ctx)
	if err != nil {
		return sharedRecord{}, 0, c.sharedErr("reading", err)
	}
	var rec sharedRecord
	if len(v) > 0 && json.Unmarshal(v, &rec) != nil {
		rec = sharedRecord{}
	}
	return rec, ver, nil
}

// configured returns the refresh token of Config.RefreshToken, read once
// (again after invalid_grant), "" when it cannot be read.
func (c *cache) configured() (string, error) {
	if c.confRead {
		return c.confRT, c.confErr
	}
	rt, err := c.cfg.RefreshToken()
	c.mu.Lock()
	c.confRT, c.confErr, c.confRead = rt, err, true
	c.mu.Unlock()
	return rt, err
}

// overrides reports whether the configured refresh token must be used
// instead of rec's: it is one the record has never held (a new grant).
func (c *cache) overrides(rec *sharedRecord) bool {
	if c.cfg.GrantType != GrantRefreshToken {
		return false
	}
	rt, err := c.configured()
	if err != nil || rt == "" || fingerprint(rt) == c.distrusted {
		return false
	}
	return !rec.knows(rt)
}

// usableShared returns rec's access token when it is fresh on the cache's
// clock (outside the refresh window) and not the one a server rejected.
func (c *cache) usableShared(rec *sharedRecord) *entry {
	e := rec.entry()
	if e == nil {
		return nil
	}
	now := c.cfg.now()
	c.mu.Lock()
	rejected := c.rejected
	c.mu.Unlock()
	if e.tok.AccessToken == rejected || !e.usable(now) || e.due(now, c.cfg.refreshWindow()) {
		return nil
	}
	return e
}

// adopt takes rec's refresh token as the cache's current one.
func (c *cache) adopt(rec *sharedRecord) {
	if rec.RefreshToken == "" {
		return
	}
	c.mu.Lock()
	c.rec.rt, c.rec.loaded = rec.RefreshToken, true
	c.mu.Unlock()
}

// fetchShared obtains a token through the shared state: the record when
// it is fresh, else a request made under the refresh lease and swapped
// into the record. force (Refresh) skips the record's token unless it was
// written after the call began.
func (c *cache) fetchShared(ctx context.Context, force bool) (*entry, error, error) {
	c.retryUnsaved(ctx)
	retried := false
	seen := int64(-1)
	var failed error // the invalid_grant being retried
	failedAt := int64(-1)
	for {
		if ctx.Err() != nil {
			return nil, nil, c.sharedErr("waiting for the refresh", ctx.Err())
		}
		rec, ver, err := c.loadShared(ctx)
		if err != nil {
			return nil, nil, err
		}
		if failed != nil && ver == failedAt {
			// Reloaded after invalid_grant and nobody rotated meanwhile:
			// the grant is really gone.
			return nil, nil, failed
		}
		if seen < 0 {
			seen = ver
		}
		if !c.overrides(&rec) && (!force || ver != seen) {
			if e := c.usableShared(&rec); e != nil {
				c.adopt(&rec)
				return e, nil, nil
			}
		}
		lockedAt := time.Now()
		ok, wait, err := c.cfg.Shared.Lock(ctx, c.cfg.leaseTTL())
		if err != nil {
			return nil, nil, c.sharedErr("taking the refresh lease", err)
		}
		if !ok {
			if err := c.awaitChange(ctx, ver, wait); err != nil {
				return nil, nil, err
			}
			continue
		}
		e, rotErr, err, again := c.refreshLeased(ctx, lockedAt, force, seen, &retried)
		if again {
			failed, failedAt = err, c.leasedVer
			continue
		}
		return e, rotErr, err
	}
}

// awaitChange polls the record until its version is no longer ver, the
// other process's lease has run out (wait), or ctx ends.
func (c *cache) awaitChange(ctx context.Context, ver int64, wait time.Duration) error {
	// The store's wait is on its clock; the Cache's is the nearest we
	// have (and the one tests move).
	deadline := c.cfg.now().Add(wait)
	d := pollFirst
	for {
		left := deadline.Sub(c.cfg.now())
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(min(d, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return c.sharedErr("waiting for another process's refresh", ctx.Err())
		}
		d = min(2*d, pollMax)
		_, v, err := c.cfg.Shared.Load(ctx)
		if err != nil {
			return c.sharedErr("reading", err)
		}
		if v != ver {
			return nil
		}
	}
}

// unlock releases the lease on a context of its own: the flight's may
// have ended.
func (c *cache) unlock(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = c.cfg.Shared.Unlock(ctx) // an unreleased lease expires
}

// refreshLeased runs with the lease held and releases it: it re-reads the
// record, adopts it when another process refreshed meanwhile, and
// otherwise makes the request and swaps the result in. again reports an
// invalid_grant to be retried once after reloading the record (err is
// that error).
func (c *cache) refreshLeased(ctx context.Context, lockedAt time.Time, force bool, seen int64, retried *bool) (e *entry, rotErr, err error, again bool) {
	locked := true
	defer func() {
		if locked {
			c.unlock(ctx)
		}
	}()
	c.leasedVer = -1
	rec, ver, err := c.loadShared(ctx)
	if err != nil {
		return nil, nil, err, false
	}
	c.leasedVer = ver
	override := c.overrides(&rec)
	if !override && (!force || ver != seen) {
		if e := c.usableShared(&rec); e != nil {
			c.adopt(&rec)
			return e, nil, nil, false
		}
	}
	refresh := c.cfg.GrantType == GrantRefreshToken
	rt, err := c.leasedRefreshToken(&rec, refresh, override)
	if err != nil {
		return nil, nil, err, false
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.sharedRequestTimeout())
	tok, start, secrets, err := c.exchange(rctx, rt, c.cfg.sharedRequestTimeout())
	cancel()
	if err != nil {
		if refresh && errors.Is(err, ErrInvalidGrant) && c.leasedInvalidGrant(&rec, rt, override, retried) {
			return nil, nil, err, true
		}
		return nil, nil, err, false
	}
	newRT := rt
	if refresh && tok.RefreshToken != "" {
		newRT = tok.RefreshToken
	}
	e = newEntry(tok, start)
	val := nextRecord(&rec, e, tok, start, refresh, rt, newRT)
	won, serr := c.swapWhileLeased(ctx, lockedAt, ver, val)
	if serr != nil {
		// The endpoint answered and the store did not take the answer:
		// use it here, keep it for the next decision, and have OnRotate
		// save a rotated token meanwhile.
		c.unsaved = &unsavedSwap{version: ver, value: val}
		won = true
	}
	if !won {
		// Our lease ran out and another process wrote meanwhile: its
		// record is the cluster's; this token is still good here.
		return e, nil, nil, false
	}
	c.unlock(ctx)
	locked = false
	if refresh {
		c.mu.Lock()
		cur := c.rec
		c.mu.Unlock()
		cur.rt, cur.loaded = rt, true
		rotErr = c.rotate(cur, newRT, append(secrets, e.tok.AccessToken, newRT))
	}
	return e, rotErr, nil, false
}

// leasedRefreshToken is the refresh token the lease holder presents: the
// record's, or the configured one when it overrides the record (a
// re-consent) or the record has none. Empty for client credentials.
func (c *cache) leasedRefreshToken(rec *sharedRecord, refresh, override bool) (string, error) {
	rt := rec.RefreshToken
	if !refresh || !override && rt != "" {
		return rt, nil
	}
	conf, err := c.configured()
	if err != nil {
		return "", fmt.Errorf("oauth2 configuration %q: refresh token: %w", c.cfg.Name, err)
	}
	if conf == "" {
		return "", fmt.Errorf("oauth2 configuration %q: no refresh token stored: %w", c.cfg.Name, ErrInvalidGrant)
	}
	return conf, nil
}

// leasedInvalidGrant handles an invalid_grant answer to the lease
// holder's request for rt, and reports whether to try once more (another
// process may have rotated the token under us); the second time, the
// configured token is read again at the next request.
func (c *cache) leasedInvalidGrant(rec *sharedRecord, rt string, override bool, retried *bool) bool {
	if override {
		// The configured token is refused: stop preferring it, and
		// retry with the record's even if it is unchanged.
		c.distrusted = fingerprint(rt)
		if rec.RefreshToken != "" {
			c.leasedVer = -1
		}
	}
	if !*retried {
		*retried = true
		return true
	}
	c.mu.Lock()
	c.rec.loaded, c.rec.pending = false, false
	c.confRead = false
	c.mu.Unlock()
	return false
}

// nextRecord is the shared record that replaces rec after the token
// endpoint answered tok to a request for rt (newRT is the refresh token
// to keep: the rotated one, or rt).
func nextRecord(rec *sharedRecord, e *entry, tok *oauth2.Token, start time.Time, refresh bool, rt, newRT string) []byte {
	next := sharedRecord{AccessToken: e.tok.AccessToken, TokenType: e.tok.TokenType, Expiry: e.tok.Expiry, Obtained: start, Known: slices.Clone(rec.Known)}
	if s, ok := tok.Extra("scope").(string); ok {
		next.Scope = s
	}
	if refresh {
		next.RefreshToken = newRT
		next.remember(rt)
		next.remember(newRT)
	}
	val, _ := json.Marshal(next)
	return val
}

// swapWhileLeased writes val over version ver of the record. The endpoint
// may have rotated the refresh token: while the lease taken at lockedAt
// is still ours nobody else refreshes, so a failed write is tried again
// (the store may be back in a moment) until the lease is nearly over or
// ctx ends.
func (c *cache) swapWhileLeased(ctx context.Context, lockedAt time.Time, ver int64, val []byte) (bool, error) {
	won, err := c.cfg.Shared.Swap(ctx, ver, val)
	for d := pollFirst; err != nil && time.Until(lockedAt.Add(c.cfg.leaseTTL()-d)) > 0; d = min(2*d, pollMax) {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
		won, err = c.cfg.Shared.Swap(ctx, ver, val)
	}
	return won, err
}

// An unsavedSwap is a record the store failed to take after the token
// endpoint answered; the next decision tries to write it again.
type unsavedSwap struct {
	version int64
	value   []byte
}

// retryUnsaved writes a record left unsaved by a failed Swap, if the
// record has not changed since.
func (c *cache) retryUnsaved(ctx context.Context) {
	u := c.unsaved
	if u == nil {
		return
	}
	if _, err := c.cfg.Shared.Swap(ctx, u.version, u.value); err == nil {
		c.unsaved = nil // written, or someone else wrote since: theirs is newer
	}
}
