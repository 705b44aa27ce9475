package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// staticSource returns a Source that always returns accessToken without
// expiry.
func staticSource(accessToken string) oauth2.TokenSource {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: accessToken})
}

// countingSource returns at-<n> valid for an hour on clock, after waiting
// for gate when it is not nil.
type countingSource struct {
	clock *fakeClock
	gate  chan struct{}
	n     atomic.Int32
	err   error
}

func (s *countingSource) Token() (*oauth2.Token, error) {
	n := s.n.Add(1)
	if s.gate != nil {
		<-s.gate
	}
	if s.err != nil {
		return nil, s.err
	}
	return &oauth2.Token{
		AccessToken:  fmt.Sprintf("at-%d", n),
		RefreshToken: "source-rt",
		Expiry:       s.clock.Now().Add(time.Hour),
	}, nil
}

func TestCustomSource(t *testing.T) {
	clock := newClock()
	src := &countingSource{clock: clock, gate: make(chan struct{})}
	c := New(Config{Name: "google-sa", Source: src, Now: clock.Now})
	piled := waiters(t, c)

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			tok, err := c.Token(context.Background())
			if err != nil || tok.AccessToken != "at-1" {
				t.Errorf("Token = %v, %v; want at-1", tok, err)
			}
			if err == nil && tok.RefreshToken != "" {
				t.Error("returned token carries the source's refresh token")
			}
		})
	}
	piled(50)
	close(src.gate)
	wg.Wait()
	if src.n.Load() != 1 {
		t.Errorf("Source calls for 50 concurrent callers = %d, want 1", src.n.Load())
	}

	clock.Advance(54 * time.Minute)
	if got := mustToken(t, c); got != "at-1" {
		t.Errorf("Token before the window = %q, want at-1", got)
	}
	clock.Advance(time.Minute)
	if got := mustToken(t, c); got != "at-2" {
		t.Errorf("Token in the window = %q, want at-2", got)
	}
	c.Invalidate("at-2")
	if got := mustToken(t, c); got != "at-3" {
		t.Errorf("Token after Invalidate = %q, want at-3", got)
	}
	if !c.Expiry().Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("Expiry() = %v, want the source's expiry %v", c.Expiry(), clock.Now().Add(time.Hour))
	}
}

func TestCustomSourceErrors(t *testing.T) {
	retrieve := &oauth2.RetrieveError{
		Response:  &http.Response{StatusCode: 400},
		Body:      []byte(`{"error":"invalid_grant","secret":"` + canary + `"}`),
		ErrorCode: "invalid_grant", ErrorDescription: "Token has been expired or revoked.",
	}
	tests := []struct {
		name     string
		src      oauth2.TokenSource
		wantMsg  string
		sentinel error
	}{
		{"retrieve error", &countingSource{err: fmt.Errorf("google: %w", retrieve)},
			`oauth2 configuration "sa": token source: invalid_grant: Token has been expired or revoked.`, ErrInvalidGrant},
		{"other error", &countingSource{err: errors.New("metadata server:\nunavailable")},
			`oauth2 configuration "sa": token source: metadata server: unavailable`, nil},
		{"empty token", oauth2.StaticTokenSource(&oauth2.Token{}), `oauth2 configuration "sa": token source: no access token`, nil},
		{"nil token", nilSource{}, `oauth2 configuration "sa": token source: no access token`, nil},
		{"panic", panicSource{}, `oauth2 configuration "sa": token source: the token source panicked`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Name: "sa", Source: tt.src}).Token(context.Background())
			var e *Error
			if !errors.As(err, &e) || err.Error() != tt.wantMsg {
				t.Fatalf("Token err = %q (%T), want *Error %q", err, err, tt.wantMsg)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.sentinel)
			}
			if out := fmt.Sprintf("%+v %#v", err, err); strings.Contains(out, canary) {
				t.Errorf("error output contains the canary: %s", out)
			}
		})
	}
}

type nilSource struct{}

func (nilSource) Token() (*oauth2.Token, error) { return nil, nil }

type panicSource struct{}

func (panicSource) Token() (*oauth2.Token, error) { panic("boom " + canary) }

func TestHungCustomSource(t *testing.T) {
	src := &countingSource{clock: newClock(), gate: make(chan struct{})}
	defer close(src.gate) // let the abandoned call finish before goleak looks
	c := New(Config{Name: "sa", Source: src, RequestTimeout: 50 * time.Millisecond})
	var err error
	within(t, time.Second, "Token of a hung Source", func() {
		_, err = c.Token(context.Background())
	})
	var e *Error
	if !errors.As(err, &e) || !e.Temporary || !errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Token err = %v, want a temporary *Error wrapping ErrTimeout, not context.DeadlineExceeded", err)
	}
	if want := `oauth2 configuration "sa": token source: no token within 50ms`; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
}
