package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// numberedTokens answers every request with access token "at-<n>".
func numberedTokens(expiresIn int) handleFunc {
	return func(w http.ResponseWriter, r *http.Request, n int) {
		writeToken(w, fmt.Sprintf("at-%d", n), expiresIn, "")
	}
}

func mustToken(t *testing.T, c *Cache) string {
	t.Helper()
	tok, err := c.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	return tok.AccessToken
}

// tokenOrError returns the access token or the error text, for goroutines.
func tokenOrError(c *Cache) string {
	tok, err := c.Token(context.Background())
	if err != nil {
		return err.Error()
	}
	return tok.AccessToken
}

func TestTokenRefreshedAheadOfExpiry(t *testing.T) {
	tests := []struct {
		name      string
		window    time.Duration
		expiresIn int
		refreshAt time.Duration // after the first fetch
	}{
		{"default window", 0, 3600, 3600*time.Second - 5*time.Minute},
		{"explicit window", time.Minute, 3600, 3600*time.Second - time.Minute},
		{"default window capped at half a short lifetime", 0, 120, 60 * time.Second},
		{"explicit window capped at half the lifetime", 20 * time.Minute, 600, 300 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTokenServer(t, numberedTokens(tt.expiresIn))
			clock := newClock()
			cfg := ccConfig(s, clock)
			cfg.RefreshWindow = tt.window
			c := New(cfg)
			start := clock.Now()

			if got := mustToken(t, c); got != "at-1" {
				t.Fatalf("first Token = %q, want at-1", got)
			}
			if got, want := c.Expiry(), start.Add(time.Duration(tt.expiresIn)*time.Second); !got.Equal(want) {
				t.Errorf("Expiry() = %v, want %v", got, want)
			}
			clock.Advance(tt.refreshAt - time.Second)
			if got := mustToken(t, c); got != "at-1" {
				t.Errorf("Token 1 s before the window = %q, want at-1 (cached)", got)
			}
			clock.Advance(time.Second)
			if got := mustToken(t, c); got != "at-2" {
				t.Errorf("Token at the window = %q, want at-2 (refreshed)", got)
			}
			if got := mustToken(t, c); got != "at-2" {
				t.Errorf("Token after the refresh = %q, want at-2", got)
			}
			if s.count() != 2 {
				t.Errorf("token requests = %d, want 2", s.count())
			}
		})
	}
}

func TestTokenWithoutExpiryUsedUntilInvalidated(t *testing.T) {
	s := newTokenServer(t, numberedTokens(0))
	clock := newClock()
	c := New(ccConfig(s, clock))

	if got := mustToken(t, c); got != "at-1" {
		t.Fatalf("Token = %q, want at-1", got)
	}
	if !c.Expiry().IsZero() {
		t.Errorf("Expiry() = %v, want zero", c.Expiry())
	}
	clock.Advance(365 * 24 * time.Hour)
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token a year later = %q, want at-1", got)
	}
	c.Invalidate("at-1")
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token after Invalidate = %q, want at-2", got)
	}
	if s.count() != 2 {
		t.Errorf("token requests = %d, want 2", s.count())
	}
}

func TestInvalidate(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	c := New(ccConfig(s, newClock()))
	mustToken(t, c)

	c.Invalidate("not-the-cached-one")
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token after Invalidate of another token = %q, want at-1", got)
	}
	c.Invalidate("at-1")
	if !c.Expiry().IsZero() {
		t.Errorf("Expiry() after Invalidate = %v, want zero", c.Expiry())
	}
	c.Invalidate("at-1") // a second report of the same rejected token
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token after Invalidate = %q, want at-2", got)
	}
	c.Invalidate("at-1") // late report of the old token: ignored
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token after a stale Invalidate = %q, want at-2", got)
	}
	if s.count() != 2 {
		t.Errorf("token requests = %d, want 2", s.count())
	}
}

func TestSingleFlight(t *testing.T) {
	for _, expired := range []bool{false, true} {
		name := "no token"
		if expired {
			name = "expired token"
		}
		t.Run(name, func(t *testing.T) {
			gate := make(chan struct{})
			var setup atomic.Bool
			s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if !setup.Load() {
					<-gate
				}
				writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
			})
			clock := newClock()
			c := New(ccConfig(s, clock))
			want := "at-1"
			if expired {
				setup.Store(true)
				mustToken(t, c)
				setup.Store(false)
				clock.Advance(2 * time.Hour)
				want = "at-2"
			}
			before := s.count()
			piled := waiters(t, c)

			const callers = 50
			var wg sync.WaitGroup
			got := make([]string, callers)
			errs := make([]error, callers)
			for i := range callers {
				wg.Go(func() {
					tok, err := c.Token(context.Background())
					if err == nil {
						got[i] = tok.AccessToken
					}
					errs[i] = err
				})
			}
			piled(callers) // all wait for the one request
			close(gate)
			wg.Wait()
			for i := range callers {
				if errs[i] != nil || got[i] != want {
					t.Fatalf("caller %d: Token = %q, %v; want %q", i, got[i], errs[i], want)
				}
			}
			if n := s.count() - before; n != 1 {
				t.Errorf("token requests for %d concurrent callers = %d, want 1", callers, n)
			}
		})
	}
}

func TestWaiterWhoseContextEndsLeavesOthersServed(t *testing.T) {
	gate := make(chan struct{})
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-gate
		writeToken(w, "at-1", 3600, "")
	})
	c := New(ccConfig(s, newClock()))
	piled := waiters(t, c)

	var wg sync.WaitGroup
	results := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := c.Token(context.Background())
			results <- err
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Token(ctx)
		errc <- err
	}()
	piled(6) // the five and the one with ctx wait for the request
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Token with a cancelled ctx: err = %v, want context.Canceled", err)
		}
		if err != nil && !strings.Contains(err.Error(), `oauth2 configuration "contoso"`) {
			t.Errorf("Token error %q does not name the configuration", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Token did not return when its ctx was cancelled")
	}
	close(gate)
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil {
			t.Errorf("other caller: Token error %v", err)
		}
	}
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token afterwards = %q, want at-1", got)
	}
	if s.count() != 1 {
		t.Errorf("token requests = %d, want 1", s.count())
	}
}

func TestRefreshDoesNotRunOnCallersContext(t *testing.T) {
	gate := make(chan struct{}) // holds the first request until the caller gave up
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-gate
		}
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
	})
	clock := newClock()
	c := New(ccConfig(s, clock))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Token(ctx); !errors.Is(err, context.DeadlineExceeded) {
		close(gate)
		t.Fatalf("Token with a short ctx: err = %v, want context.DeadlineExceeded", err)
	}
	close(gate)
	// The fetch went on and its token is served without a new request.
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token after the caller gave up = %q, want at-1", got)
	}
	// Later refreshes are not poisoned by the cancelled context.
	clock.Advance(2 * time.Hour)
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token after expiry = %q, want at-2", got)
	}
	if s.count() != 2 {
		t.Errorf("token requests = %d, want 2", s.count())
	}
}

func TestHungTokenEndpoint(t *testing.T) {
	hung := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		<-r.Context().Done() // until the client gives up
	})
	ok := newTokenServer(t, numberedTokens(3600))
	clock := newClock()
	cfg := ccConfig(hung, clock)
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.AuthStyle = 0 // AutoDetect: the second attempt must not get a new timeout
	hungCache := New(cfg)
	other := New(ccConfig(ok, clock))

	errc := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := hungCache.Token(context.Background())
		errc <- err
	}()
	hung.awaitRequests(t, 1)
	// Another configuration is served while this one hangs.
	if got := mustToken(t, other); got != "at-1" {
		t.Errorf("other Cache: Token = %q, want at-1", got)
	}
	select {
	case err := <-errc:
		t.Fatalf("the hung Token returned (%v) before another Cache's Token, after %v", err, time.Since(start))
	default:
	}
	var err error
	select {
	case err = <-errc:
	case <-time.After(3 * time.Second):
		t.Fatal("Token of the hung endpoint did not return within 3 s")
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 2*time.Second {
		t.Errorf("Token of the hung endpoint took %v, want about 300ms", el)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Token error %v (%T) is not an *Error", err, err)
	}
	// issue10-2: the Cache's own timeout is ErrTimeout; the caller's
	// context (Background) did not end, so no context error.
	if !e.Temporary || !errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || e.Status != 0 {
		t.Errorf("Error = %+v, want Temporary, ErrTimeout and not context.DeadlineExceeded, no status", *e)
	}
	if want := `oauth2 configuration "contoso": token endpoint: no response within 300ms`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}

// switchable answers at-<n> with expires_in 3600 while ok, and fail
// otherwise.
type switchable struct {
	ok   atomic.Bool
	fail func(w http.ResponseWriter)
}

func (s *switchable) handle(w http.ResponseWriter, r *http.Request, n int) {
	if s.ok.Load() {
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
		return
	}
	s.fail(w)
}

func TestProactiveRefreshFailure(t *testing.T) {
	tests := []struct {
		name      string
		fail      func(w http.ResponseWriter)
		temporary bool
		sentinel  error
	}{
		{"503", func(w http.ResponseWriter) { http.Error(w, "busy", http.StatusServiceUnavailable) }, true, nil},
		{"invalid_grant", func(w http.ResponseWriter) {
			writeError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70008: expired")
		}, false, ErrInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &switchable{fail: tt.fail}
			h.ok.Store(true)
			s := newTokenServer(t, h.handle)
			clock := newClock()
			c := New(ccConfig(s, clock))
			mustToken(t, c)
			h.ok.Store(false)

			// Inside the window: the refresh fails, the valid token is used.
			clock.Advance(56 * time.Minute)
			if got := mustToken(t, c); got != "at-1" {
				t.Errorf("Token in the window, refresh failing = %q, want at-1", got)
			}
			if s.count() != 2 {
				t.Fatalf("token requests = %d, want 2", s.count())
			}
			// No new attempt before the backoff has passed.
			clock.Advance(retryBackoff - time.Second)
			mustToken(t, c)
			if s.count() != 2 {
				t.Errorf("token requests within the backoff = %d, want 2", s.count())
			}
			clock.Advance(time.Second)
			if got := mustToken(t, c); got != "at-1" {
				t.Errorf("Token after the backoff, refresh failing = %q, want at-1", got)
			}
			if s.count() != 3 {
				t.Errorf("token requests after the backoff = %d, want 3", s.count())
			}

			// Expired: the error is returned.
			clock.Advance(5 * time.Minute)
			_, err := c.Token(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Token after expiry: err = %v, want an *Error", err)
			}
			if e.Temporary != tt.temporary || (tt.sentinel != nil && !errors.Is(err, tt.sentinel)) {
				t.Errorf("Token after expiry: err = %v (Temporary %v), want Temporary %v, Is %v", err, e.Temporary, tt.temporary, tt.sentinel)
			}
			if s.count() != 4 {
				t.Errorf("token requests = %d, want 4", s.count())
			}
			// Without a valid token there is no backoff: the next caller tries.
			h.ok.Store(true)
			if got := mustToken(t, c); got != "at-5" {
				t.Errorf("Token once the endpoint works = %q, want at-5", got)
			}
		})
	}
}

func TestProactiveRefreshSuccessAndConcurrentCallers(t *testing.T) {
	gate := make(chan struct{})
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 2 {
			<-gate
		}
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
	})
	clock := newClock()
	c := New(ccConfig(s, clock))
	mustToken(t, c)
	clock.Advance(56 * time.Minute)

	got := make(chan string, 1)
	go func() { got <- tokenOrError(c) }()
	s.awaitRequests(t, 2) // the first fetch and the refresh
	// While the refresh is in flight (held by gate), others get the
	// still-valid token without waiting for it.
	other := make(chan string, 1)
	go func() { other <- tokenOrError(c) }()
	select {
	case tok := <-other:
		if tok != "at-1" {
			t.Errorf("Token during the refresh = %q, want at-1", tok)
		}
	case <-time.After(2 * time.Second):
		t.Error("Token during a proactive refresh waited for it")
	}
	close(gate)
	if tok := <-got; tok != "at-2" {
		t.Errorf("Token of the caller that refreshed = %q, want at-2", tok)
	}
	if tok := mustToken(t, c); tok != "at-2" {
		t.Errorf("Token after the refresh = %q, want at-2", tok)
	}
}

func TestExpiresInForms(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"json number", "application/json", `{"access_token":"a","expires_in":3600}`},
		{"json string", "application/json", `{"access_token":"a","expires_in":"3600"}`},
		{"form", "application/x-www-form-urlencoded", `access_token=a&expires_in=3600`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", tt.contentType)
				fmt.Fprint(w, tt.body)
			})
			clock := newClock()
			c := New(ccConfig(s, clock))
			tok, err := c.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := clock.Now().Add(time.Hour)
			if !tok.Expiry.Equal(want) || !c.Expiry().Equal(want) {
				t.Errorf("Expiry = %v, Cache.Expiry() = %v, want %v", tok.Expiry, c.Expiry(), want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	var mu sync.Mutex
	current := "rt-0"
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		defer mu.Unlock()
		if r.PostForm.Get("grant_type") != "refresh_token" || r.PostForm.Get("refresh_token") != current {
			writeError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70008: refresh token already used")
			return
		}
		current = fmt.Sprintf("rt-%d", n)
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, current)
	})
	clock := newClock()
	var reads atomic.Int32
	var rotated []string
	c := New(Config{
		Name:      "contoso",
		GrantType: GrantRefreshToken,
		TokenURL:  s.tokenURL(),
		ClientID:  "client-id",
		RefreshToken: func() (string, error) {
			reads.Add(1)
			return "rt-0", nil
		},
		OnRotate: func(ctx context.Context, rt string) error {
			if ctx.Err() != nil {
				t.Errorf("OnRotate ctx already done: %v", ctx.Err())
			}
			mu.Lock()
			rotated = append(rotated, rt)
			mu.Unlock()
			return nil
		},
		Now: clock.Now,
	})
	for i := 1; i <= 3; i++ {
		tok, err := c.Token(context.Background())
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if want := fmt.Sprintf("at-%d", i); tok.AccessToken != want {
			t.Errorf("refresh %d: access token %q, want %q", i, tok.AccessToken, want)
		}
		if tok.RefreshToken != "" {
			t.Errorf("refresh %d: returned token carries a refresh token", i)
		}
		mu.Lock()
		n := len(rotated)
		mu.Unlock()
		if n != i {
			t.Errorf("refresh %d: OnRotate called %d times before Token returned, want %d", i, n, i)
		}
		clock.Advance(2 * time.Hour)
	}
	if want := []string{"rt-1", "rt-2", "rt-3"}; fmt.Sprint(rotated) != fmt.Sprint(want) {
		t.Errorf("OnRotate saw %q, want %q", rotated, want)
	}
	if reads.Load() != 1 {
		t.Errorf("RefreshToken read %d times, want 1", reads.Load())
	}
}

func TestRotationNotSaved(t *testing.T) {
	var rotate atomic.Bool
	rotate.Store(true)
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		rt := ""
		if rotate.Load() {
			rt = fmt.Sprintf("CANARY-rt-%d", n)
		}
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, rt)
	})
	clock := newClock()
	var calls []string
	fail := true
	c := New(Config{
		Name:         "contoso",
		GrantType:    GrantRefreshToken,
		TokenURL:     s.tokenURL(),
		ClientID:     "client-id",
		RefreshToken: secretFunc("CANARY-rt-0"),
		OnRotate: func(_ context.Context, rt string) error {
			calls = append(calls, rt)
			if fail {
				return fmt.Errorf("disk full writing %s", rt)
			}
			return nil
		},
		Now: clock.Now,
	})

	tok, err := c.Token(context.Background())
	if tok == nil || tok.AccessToken != "at-1" {
		t.Fatalf("Token = %v, want at-1 despite OnRotate failing", tok)
	}
	if !errors.Is(err, ErrRotationNotSaved) {
		t.Fatalf("Token err = %v, want ErrRotationNotSaved", err)
	}
	if want := `oauth2 configuration "contoso": saving the rotated refresh token: disk full writing [redacted]`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if _, err := c.Token(context.Background()); err != nil {
		t.Errorf("cached Token after the failed save: err = %v, want nil", err)
	}

	// The next refresh uses the new refresh token and saves it again, even
	// though the server does not rotate this time.
	fail = false
	rotate.Store(false)
	clock.Advance(2 * time.Hour)
	if _, err := c.Token(context.Background()); err != nil {
		t.Fatalf("second refresh: %v", err)
	}
	if got := s.request(1).form.Get("refresh_token"); got != "CANARY-rt-1" {
		t.Errorf("second refresh sent refresh token %q, want CANARY-rt-1", got)
	}
	if want := []string{"CANARY-rt-1", "CANARY-rt-1"}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("OnRotate calls = %q, want %q", calls, want)
	}
	// Saved now: no more calls without a rotation.
	clock.Advance(2 * time.Hour)
	mustToken(t, c)
	if len(calls) != 2 {
		t.Errorf("OnRotate calls = %d after a refresh without rotation, want 2", len(calls))
	}
}

func TestInvalidGrantRereadsStoredRefreshToken(t *testing.T) {
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.PostForm.Get("refresh_token") != "good" {
			writeError(w, http.StatusBadRequest, "invalid_grant", "revoked")
			return
		}
		writeToken(w, "at", 3600, "")
	})
	var mu sync.Mutex
	stored, reads := "revoked", 0
	c := New(Config{
		Name:      "contoso",
		GrantType: GrantRefreshToken,
		TokenURL:  s.tokenURL(),
		ClientID:  "client-id",
		RefreshToken: func() (string, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return stored, nil
		},
	})
	if _, err := c.Token(context.Background()); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("Token err = %v, want ErrInvalidGrant", err)
	}
	mu.Lock()
	stored = "good" // an administrator authorised the configuration again
	mu.Unlock()
	if got := mustToken(t, c); got != "at" {
		t.Errorf("Token after re-authorisation = %q, want at", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if reads != 2 {
		t.Errorf("RefreshToken read %d times, want 2", reads)
	}
}

func TestRefreshTokenProblems(t *testing.T) {
	readErr := errors.New("open /secrets/rt: permission denied")
	tests := []struct {
		name    string
		read    func() (string, error)
		want    error
		wantMsg string
	}{
		{"empty", secretFunc(""), ErrInvalidGrant, `oauth2 configuration "contoso": no refresh token stored: oauth2 grant is invalid, expired or revoked`},
		{"read error", func() (string, error) { return "", readErr }, readErr, `oauth2 configuration "contoso": refresh token: open /secrets/rt: permission denied`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTokenServer(t, numberedTokens(3600))
			c := New(Config{Name: "contoso", GrantType: GrantRefreshToken, TokenURL: s.tokenURL(), ClientID: "id", RefreshToken: tt.read})
			_, err := c.Token(context.Background())
			if !errors.Is(err, tt.want) || err.Error() != tt.wantMsg {
				t.Errorf("Token err = %q, want %q wrapping %v", err, tt.wantMsg, tt.want)
			}
			if s.count() != 0 {
				t.Errorf("token requests = %d, want 0", s.count())
			}
		})
	}
}

func TestClientSecretResolvedAtEachRequest(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	clock := newClock()
	cfg := ccConfig(s, clock)
	var n atomic.Int32
	secretErr := errors.New("secret file missing")
	cfg.ClientSecret = func() (string, error) {
		i := n.Add(1)
		if i == 3 {
			return "", secretErr
		}
		return fmt.Sprintf("secret-%d", i), nil
	}
	c := New(cfg)
	for i := 1; i <= 2; i++ {
		mustToken(t, c)
		if got, want := s.request(i-1).pass, fmt.Sprintf("secret-%d", i); got != want {
			t.Errorf("request %d: secret %q, want %q", i, got, want)
		}
		clock.Advance(2 * time.Hour)
	}
	_, err := c.Token(context.Background())
	if !errors.Is(err, secretErr) || !strings.HasPrefix(err.Error(), `oauth2 configuration "contoso": client secret: `) {
		t.Errorf("Token err = %v, want the secret error, naming the configuration", err)
	}
	if s.count() != 2 {
		t.Errorf("token requests = %d, want 2", s.count())
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"zero", Config{}, []string{"GrantType is required", "TokenURL is required", "ClientID is required"}},
		{"refresh token missing", Config{Name: "x", GrantType: GrantRefreshToken, TokenURL: "https://t/", ClientID: "c"},
			[]string{`oauth2 configuration "x": RefreshToken is required with grant type "refresh_token"`}},
		{"unknown grant", Config{GrantType: "password", TokenURL: "https://t/", ClientID: "c"}, []string{`GrantType "password" is not supported`}},
		{"bad URL", Config{GrantType: GrantClientCredentials, TokenURL: "/token", ClientID: "c"}, []string{"TokenURL must be an absolute http or https URL"}},
		{"reserved param", Config{GrantType: GrantClientCredentials, TokenURL: "https://t/", ClientID: "c",
			EndpointParams: map[string]string{"scope": "x", "client_secret": "y", "resource": "ok"}},
			[]string{`EndpointParams must not set "client_secret"`, `EndpointParams must not set "scope"`}},
		{"negative durations", Config{Source: staticSource("t"), RequestTimeout: -1, RefreshWindow: -1},
			[]string{"RequestTimeout must not be negative", "RefreshWindow must not be negative"}},
		{"auth style", Config{GrantType: GrantClientCredentials, TokenURL: "https://t/", ClientID: "c", AuthStyle: 7}, []string{"AuthStyle 7 is not known"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg).Token(context.Background())
			if err == nil {
				t.Fatal("Token err = nil, want a configuration error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Token err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestZeroCache(t *testing.T) {
	var c Cache
	if _, err := c.Token(context.Background()); err == nil {
		t.Error("zero Cache: Token err = nil, want an error")
	}
	c.Invalidate("x")
	if !c.Expiry().IsZero() {
		t.Error("zero Cache: Expiry not zero")
	}
	var nilCache *Cache
	if _, err := nilCache.Token(context.Background()); err == nil {
		t.Error("nil Cache: Token err = nil, want an error")
	}
	if got := c.String(); got != "oauthtoken.Cache{}" {
		t.Errorf("zero Cache String() = %q", got)
	}
}

func TestTokenWithEndedContext(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	c := New(ccConfig(s, newClock()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Token err = %v, want context.Canceled", err)
	}
	if s.count() != 0 {
		t.Errorf("token requests = %d, want 0", s.count())
	}
}

func TestConfigCopied(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	cfg := ccConfig(s, newClock())
	cfg.Scopes = []string{"a"}
	cfg.EndpointParams = map[string]string{"resource": "r"}
	c := New(cfg)
	cfg.Scopes[0] = "changed"
	cfg.EndpointParams["resource"] = "changed"
	mustToken(t, c)
	f := s.request(0).form
	if f.Get("scope") != "a" || f.Get("resource") != "r" {
		t.Errorf("request form %v: the Cache saw changes made after New", f)
	}
}

func TestRotationWithoutOnRotate(t *testing.T) {
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, fmt.Sprintf("rt-%d", n))
	})
	clock := newClock()
	c := New(Config{Name: "x", GrantType: GrantRefreshToken, TokenURL: s.tokenURL(), ClientID: "id",
		RefreshToken: secretFunc("rt-0"), Now: clock.Now})
	for range 3 {
		mustToken(t, c)
		clock.Advance(2 * time.Hour)
	}
	for i := range 3 {
		if got, want := s.request(i).form.Get("refresh_token"), fmt.Sprintf("rt-%d", i); got != want {
			t.Errorf("request %d sent refresh token %q, want %q", i, got, want)
		}
	}
}

// countingTransport counts the requests it passes on.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestCallerHTTPClient(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	rt := &countingTransport{}
	cfg := ccConfig(s, newClock())
	cfg.HTTPClient = &http.Client{Transport: rt}
	mustToken(t, New(cfg))
	if rt.n.Load() != 1 {
		t.Errorf("caller's transport saw %d requests, want 1", rt.n.Load())
	}
}

func TestConfigString(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "sa", Source: staticSource(canary), ClientSecret: secretFunc(canary)}, `oauthtoken.Config{Name: "sa", Source: (custom)}`},
		{Config{Name: "c", GrantType: GrantClientCredentials, TokenURL: "https://t/token", ClientID: "id",
			ClientSecret: secretFunc(canary), Scopes: []string{"a", "b"}},
			`oauthtoken.Config{Name: "c", GrantType: "client_credentials", TokenURL: "https://t/token", ClientID: "id", Scopes: ["a" "b"]}`},
	}
	for _, tt := range tests {
		for _, form := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
			if got := fmt.Sprintf(form, tt.cfg); got != tt.want {
				t.Errorf("Sprintf(%q, cfg) = %q, want %q", form, got, tt.want)
			}
		}
		if got := tt.cfg.GoString(); got != tt.want {
			t.Errorf("GoString() = %q, want %q", got, tt.want)
		}
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("m", "cfg", tt.cfg)
		if !strings.Contains(b.String(), "cfg.name="+tt.cfg.Name) || strings.Contains(b.String(), canary) {
			t.Errorf("logged %q, want the name and no secret", b.String())
		}
	}
	c := New(tests[0].cfg)
	for _, form := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
		for _, v := range []any{c, *c} {
			if got := fmt.Sprintf(form, v); got != `oauthtoken.Cache{Config: "sa"}` {
				t.Errorf("Sprintf(%q, %T) = %q", form, v, got)
			}
		}
	}
}
