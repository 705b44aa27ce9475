package oauthtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// fetch obtains a new token on ctx. It returns an OnRotate failure
// separately: the token is good regardless.
func (c *cache) fetch(ctx context.Context) (*entry, error, error) {
	if c.cfg.Source != nil {
		e, err := c.fromSource(ctx)
		return e, nil, err
	}
	refresh := c.cfg.GrantType == GrantRefreshToken
	var rec record
	if refresh {
		var err error
		if rec, err = c.load(); err != nil {
			return nil, nil, err
		}
	}
	tok, start, secrets, err := c.exchange(ctx, rec.rt, c.cfg.requestTimeout())
	if err != nil {
		if refresh && errors.Is(err, ErrInvalidGrant) {
			// Read the stored one again next time: it may have been
			// re-authorised.
			rec.loaded, rec.pending = false, false
			c.commit(rec)
		}
		return nil, nil, err
	}
	var rotErr error
	if refresh {
		rotErr = c.rotate(rec, tok.RefreshToken, append(secrets, tok.AccessToken, tok.RefreshToken))
	}
	return newEntry(tok, start), rotErr, nil
}

// exchange makes one token request presenting rt (refresh grant) and
// returns the token, when the request started, and the secrets it used.
func (c *cache) exchange(ctx context.Context, rt string, timeout time.Duration) (*oauth2.Token, time.Time, []string, error) {
	start := c.cfg.now()
	name := c.cfg.Name
	var secret string
	if c.cfg.ClientSecret != nil {
		s, err := c.cfg.ClientSecret()
		if err != nil {
			return nil, start, nil, fmt.Errorf("oauth2 configuration %q: client secret: %w", name, err)
		}
		secret = s
	}
	params := make(map[string][]string, len(c.cfg.EndpointParams)+2)
	for k, v := range c.cfg.EndpointParams {
		params[k] = []string{v}
	}
	if c.cfg.GrantType == GrantRefreshToken {
		// clientcredentials lets grant_type be overridden; unlike
		// oauth2.Config's refresh, it sends the scopes and the endpoint
		// parameters too (Microsoft's v2.0 endpoint wants scope).
		params["grant_type"] = []string{GrantRefreshToken}
		params["refresh_token"] = []string{rt}
	}
	secrets := []string{secret, rt}
	c.cc.ClientSecret, c.cc.EndpointParams = secret, params
	tok, err := c.request(ctx)
	c.cc.ClientSecret, c.cc.EndpointParams = "", nil
	if err != nil {
		return nil, start, secrets, classify(name, opEndpoint, err, ctx, timeout, secrets)
	}
	return tok, start, secrets, nil
}

// newEntry makes the cache entry of a token response.
func newEntry(tok *oauth2.Token, start time.Time) *entry {
	t := *tok
	t.RefreshToken = ""
	t.Expiry = time.Time{}
	if d, ok := expiresIn(tok); ok {
		t.Expiry = start.Add(d)
	}
	return &entry{tok: &t, obtained: start}
}

// request makes the token request with c.cc. With AuthStyleAutoDetect it
// tries the Authorization header first and the form parameters only when
// the endpoint answered the header with an error, and remembers what
// worked. golang.org/x/oauth2's own probe also retries after a timeout or
// a transport failure: a second request that can only wait or fail again,
// and a second request to a hung endpoint.
func (c *cache) request(ctx context.Context) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	if c.cfg.authStyle() != oauth2.AuthStyleAutoDetect {
		return c.cc.Token(ctx)
	}
	if c.detected != oauth2.AuthStyleAutoDetect {
		c.cc.AuthStyle = c.detected
		return c.cc.Token(ctx)
	}
	c.cc.AuthStyle = oauth2.AuthStyleInHeader
	tok, err := c.cc.Token(ctx)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		c.cc.AuthStyle = oauth2.AuthStyleInParams
		if tok, err = c.cc.Token(ctx); err == nil {
			c.detected = oauth2.AuthStyleInParams
		}
		return tok, err
	}
	if err == nil {
		c.detected = oauth2.AuthStyleInHeader
	}
	return tok, err
}

// rotate takes newRT, the refresh token of a response, into rec and has
// OnRotate save it if it differs from the current one (or an earlier one
// was not saved). The new token is committed before OnRotate runs: it is
// the current one whatever OnRotate does.
func (c *cache) rotate(rec record, newRT string, secrets []string) error {
	if newRT != "" && newRT != rec.rt {
		rec.rt, rec.pending = newRT, true
		c.commit(rec)
	}
	if !rec.pending {
		return nil
	}
	if c.cfg.OnRotate != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.requestTimeout())
		defer cancel()
		if err := c.callOnRotate(ctx, rec.rt); err != nil {
			return &rotateError{config: c.cfg.Name, msg: clean(err.Error(), maxDetail, secrets), err: err}
		}
	}
	rec.pending = false
	c.commit(rec)
	return nil
}

// errOnRotatePanicked is the error of an OnRotate that panicked. The panic
// value is not kept: it may hold the token being saved or anything else.
var errOnRotatePanicked = errors.New("the callback panicked")

// callOnRotate calls OnRotate, turning a panic into an error: it runs on
// the Cache's own goroutine, where no caller could recover it.
func (c *cache) callOnRotate(ctx context.Context, rt string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errOnRotatePanicked
		}
	}()
	return c.cfg.OnRotate(ctx, rt)
}

// fromSource calls the Source, waiting no longer than ctx allows.
func (c *cache) fromSource(ctx context.Context) (*entry, error) {
	start := c.cfg.now()
	type result struct {
		tok *oauth2.Token
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{err: errors.New("the token source panicked")}
			}
		}()
		tok, err := c.cfg.Source.Token()
		ch <- result{tok, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	if r.err != nil {
		return nil, classify(c.cfg.Name, opSource, r.err, ctx, c.cfg.requestTimeout(), nil)
	}
	if r.tok == nil || r.tok.AccessToken == "" {
		return nil, &Error{Config: c.cfg.Name, op: opSource, detail: "no access token"}
	}
	t := *r.tok
	t.RefreshToken = ""
	return &entry{tok: &t, obtained: start}, nil
}

// expiresIn returns the expires_in of a token response, which x/oauth2 has
// already turned into an Expiry on the real clock.
func expiresIn(tok *oauth2.Token) (time.Duration, bool) {
	secs := float64(tok.ExpiresIn)
	if secs <= 0 {
		switch v := tok.Extra("expires_in").(type) {
		case float64:
			secs = v
		case int64:
			secs = float64(v)
		case json.Number:
			secs, _ = v.Float64()
		case string:
			secs, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if secs <= 0 || math.IsNaN(secs) {
		return 0, false
	}
	return time.Duration(min(secs, math.MaxInt32)) * time.Second, true
}
