package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rotatingServer answers the refresh_token grant, rotating the refresh
// token at every request: rt-<n> for request n.
func rotatingServer(t *testing.T) *tokenServer {
	var mu sync.Mutex
	current := "rt-0"
	return newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		if r.PostForm.Get("refresh_token") != current {
			writeError(w, http.StatusBadRequest, "invalid_grant", "refresh token already used")
			return
		}
		current = fmt.Sprintf("rt-%d", n)
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, current)
	})
}

// TestIssue10_12_RefreshMakesOneRequest: Refresh fetches a fresh token
// with exactly one request, on an empty cache as on a full one, and with a
// rotating refresh token calls OnRotate once per request.
func TestIssue10_12_RefreshMakesOneRequest(t *testing.T) {
	s := rotatingServer(t)
	clock := newClock()
	var mu sync.Mutex
	var rotated []string
	c := New(Config{
		Name: "contoso", GrantType: GrantRefreshToken, TokenURL: s.tokenURL(), ClientID: "client-id",
		RefreshToken: secretFunc("rt-0"),
		OnRotate: func(_ context.Context, rt string) error {
			mu.Lock()
			defer mu.Unlock()
			rotated = append(rotated, rt)
			return nil
		},
		Now: clock.Now,
	})
	tok, err := c.Refresh(context.Background())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("Refresh on an empty cache = %v, %v; want at-1", tok, err)
	}
	if s.count() != 1 || fmt.Sprint(rotated) != "[rt-1]" {
		t.Errorf("Refresh on an empty cache: %d requests, OnRotate %q; want 1 and [rt-1]", s.count(), rotated)
	}
	// The fresh token is cached.
	if got := mustToken(t, c); got != "at-1" || s.count() != 1 {
		t.Errorf("Token after Refresh = %q after %d requests, want at-1 after 1", got, s.count())
	}
	// With a valid cached token, Refresh still asks the endpoint, once.
	tok, err = c.Refresh(context.Background())
	if err != nil || tok.AccessToken != "at-2" || s.count() != 2 {
		t.Fatalf("Refresh on a full cache = %v, %v after %d requests; want at-2 after 2", tok, err, s.count())
	}
	if fmt.Sprint(rotated) != "[rt-1 rt-2]" {
		t.Errorf("OnRotate saw %q, want [rt-1 rt-2]", rotated)
	}
}

// TestRefreshJoinsRequestInFlight: Refresh while a request is in flight
// waits for that one instead of making a second.
func TestRefreshJoinsRequestInFlight(t *testing.T) {
	release := make(chan struct{})
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-release
		}
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
	})
	c := New(ccConfig(s, newClock()))
	got := make(chan string, 1)
	go func() { got <- tokenOrError(c) }()
	s.awaitRequests(t, 1)
	refreshed := make(chan string, 1)
	go func() {
		tok, err := c.Refresh(context.Background())
		if err != nil {
			refreshed <- err.Error()
			return
		}
		refreshed <- tok.AccessToken
	}()
	// A Refresh that made a request of its own would get at-2 at once;
	// one that joined waits for the first. The pass does not depend on
	// this wait, only how soon a wrong Refresh is caught.
	select {
	case v := <-refreshed:
		t.Fatalf("Refresh = %q before the request in flight ended, want it to join that request", v)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if a, b := <-got, <-refreshed; a != "at-1" || b != "at-1" {
		t.Errorf("Token = %q, Refresh = %q; want at-1 for both", a, b)
	}
	if s.count() != 1 {
		t.Errorf("token requests = %d, want 1", s.count())
	}
}

// TestRefreshFailureKeepsCachedToken: a failed Refresh reports the failure
// although a cached token is valid, and the cached token stays in use.
func TestRefreshFailureKeepsCachedToken(t *testing.T) {
	sw := &switchable{fail: func(w http.ResponseWriter) {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
	}}
	sw.ok.Store(true)
	s := newTokenServer(t, sw.handle)
	c := New(ccConfig(s, newClock()))
	mustToken(t, c)
	sw.ok.Store(false)
	if _, err := c.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh against a failing endpoint succeeded")
	}
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token after a failed Refresh = %q, want the cached at-1", got)
	}
}

// TestIssue11_08_OnRotatePanics: a panicking OnRotate runs on the Cache's
// goroutine, so the Cache recovers it: the caller gets the new access token
// with an error wrapping ErrRotationNotSaved, the new refresh token stays
// in use, and the next refresh hands it to OnRotate again.
func TestIssue11_08_OnRotatePanics(t *testing.T) {
	s := rotatingServer(t)
	clock := newClock()
	var calls []string
	c := New(Config{
		Name: "contoso", GrantType: GrantRefreshToken, TokenURL: s.tokenURL(), ClientID: "client-id",
		RefreshToken: secretFunc("rt-0"),
		OnRotate: func(_ context.Context, rt string) error {
			calls = append(calls, rt)
			if len(calls) == 1 {
				panic("persisting " + rt)
			}
			return nil
		},
		Now: clock.Now,
	})
	tok, err := c.Token(context.Background())
	if tok == nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, %v; want at-1 although OnRotate panicked", tok, err)
	}
	if !errors.Is(err, ErrRotationNotSaved) {
		t.Fatalf("Token err = %v, want ErrRotationNotSaved", err)
	}
	if want := `oauth2 configuration "contoso": saving the rotated refresh token: the callback panicked`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if strings.Contains(err.Error(), "rt-1") {
		t.Errorf("Error() = %q contains the refresh token", err)
	}
	clock.Advance(2 * time.Hour)
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token after expiry = %q, want at-2 (the rotated rt-1 still works)", got)
	}
	if want := "[rt-1 rt-2]"; fmt.Sprint(calls) != want {
		t.Errorf("OnRotate calls = %q, want %q", calls, want)
	}
}

// TestIssue11_11_AutoDetectNoSecondRequestAfterTimeout: with AutoDetect, a
// header request that timed out is not repeated with the parameters
// (golang.org/x/oauth2's probe would): a hung endpoint gets one request.
func TestIssue11_11_AutoDetectNoSecondRequestAfterTimeout(t *testing.T) {
	hung := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done()
	})
	cfg := ccConfig(hung, newClock())
	cfg.AuthStyle = 0 // AutoDetect
	cfg.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond}
	cfg.RequestTimeout = 5 * time.Second
	c := New(cfg)
	var err error
	within(t, 2*time.Second, "Token of a hung endpoint", func() {
		_, err = c.Token(context.Background())
	})
	if !errors.Is(err, ErrTimeout) {
		t.Errorf("Token err = %v, want ErrTimeout", err)
	}
	if n := hung.count(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
}

// TestIssue12_OAuth2State_CacheOwnsRefreshToken: the Cache is the one
// owner of the current refresh token. RefreshToken reports none before the
// first request, then the stored one, the rotated one as soon as the
// server returned it (already inside OnRotate, and whatever OnRotate
// returns), and after invalid_grant the refused one until the stored one is
// read again.
func TestIssue12_OAuth2State_CacheOwnsRefreshToken(t *testing.T) {
	s := rotatingServer(t)
	clock := newClock()
	var c *Cache
	var during []string
	stored := "rt-0"
	c = New(Config{
		Name: "contoso", GrantType: GrantRefreshToken, TokenURL: s.tokenURL(), ClientID: "client-id",
		RefreshToken: func() (string, error) { return stored, nil },
		OnRotate: func(_ context.Context, rt string) error {
			cur, _ := c.RefreshToken()
			during = append(during, cur)
			return errors.New("read-only store")
		},
		Now: clock.Now,
	})
	if rt, ok := c.RefreshToken(); ok || rt != "" {
		t.Errorf("RefreshToken before any request = %q, %v; want none", rt, ok)
	}
	if _, err := c.Token(context.Background()); !errors.Is(err, ErrRotationNotSaved) {
		t.Fatalf("Token = %v, want ErrRotationNotSaved with the token", err)
	}
	if rt, ok := c.RefreshToken(); !ok || rt != "rt-1" {
		t.Errorf("RefreshToken after a rotation = %q, %v; want rt-1", rt, ok)
	}
	if fmt.Sprint(during) != "[rt-1]" {
		t.Errorf("RefreshToken inside OnRotate = %q, want [rt-1]: the new token is current before it is saved", during)
	}
	// Another process used rt-1: the server refuses it.
	s2 := rotatingServer(t)
	c2 := New(Config{Name: "contoso", GrantType: GrantRefreshToken, TokenURL: s2.tokenURL(), ClientID: "client-id",
		RefreshToken: func() (string, error) { return stored, nil }, Now: clock.Now})
	stored = "rt-9"
	if _, err := c2.Token(context.Background()); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("Token with a refused refresh token = %v, want ErrInvalidGrant", err)
	}
	if rt, ok := c2.RefreshToken(); !ok || rt != "rt-9" {
		t.Errorf("RefreshToken after invalid_grant = %q, %v; want the refused rt-9", rt, ok)
	}
	stored = "rt-0" // authorised again
	clock.Advance(time.Minute)
	if _, err := c2.Token(context.Background()); err != nil {
		t.Fatalf("Token after the store was authorised again = %v", err)
	}
	if rt, _ := c2.RefreshToken(); rt != "rt-2" {
		t.Errorf("RefreshToken after the stored one was read again = %q, want rt-2 (the second request's)", rt)
	}
}
