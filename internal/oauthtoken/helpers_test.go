package oauthtoken

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A fakeClock is a Config.Now that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// A request is what the token endpoint received.
type request struct {
	form               url.Values
	user, pass         string
	basic              bool
	authorizationFound bool
}

// A tokenServer is a token endpoint that counts and records requests and
// answers with handle.
type tokenServer struct {
	*httptest.Server
	n        atomic.Int32
	mu       sync.Mutex
	requests []request
	arrived  chan struct{} // receives as each request reaches the handler
}

// handleFunc answers the n-th request (from 1).
type handleFunc func(w http.ResponseWriter, r *http.Request, n int)

func newTokenServer(t *testing.T, handle handleFunc) *tokenServer {
	t.Helper()
	s := &tokenServer{arrived: make(chan struct{}, 100)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		user, pass, basic := r.BasicAuth()
		s.mu.Lock()
		s.requests = append(s.requests, request{
			form: r.PostForm, user: user, pass: pass, basic: basic,
			authorizationFound: r.Header.Get("Authorization") != "",
		})
		s.mu.Unlock()
		n := int(s.n.Add(1))
		select {
		case s.arrived <- struct{}{}:
		default:
		}
		handle(w, r, n)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *tokenServer) count() int { return int(s.n.Load()) }

// awaitRequests waits until n more requests have reached the handler.
func (s *tokenServer) awaitRequests(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-s.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("no token request arrived")
		}
	}
}

// waiters makes c report the callers that wait for a token request and
// returns a function that waits until n more have started waiting. Call it
// before c is used concurrently.
func waiters(t *testing.T, c *Cache) func(n int) {
	ch := make(chan struct{}, 1000)
	c.c.onWait = func() { ch <- struct{}{} }
	return func(n int) {
		t.Helper()
		for range n {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Fatal("the callers did not pile up")
			}
		}
	}
}

func (s *tokenServer) request(i int) request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i]
}

func (s *tokenServer) tokenURL() string { return s.URL + "/token" }

// writeToken writes a successful token response; expiresIn zero leaves
// expires_in out, an empty refreshToken leaves refresh_token out.
func writeToken(w http.ResponseWriter, accessToken string, expiresIn int, refreshToken string) {
	body := map[string]any{"access_token": accessToken, "token_type": "Bearer"}
	if expiresIn != 0 {
		body["expires_in"] = expiresIn
	}
	if refreshToken != "" {
		body["refresh_token"] = refreshToken
	}
	writeJSON(w, http.StatusOK, body)
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]any{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func secretFunc(s string) func() (string, error) {
	return func() (string, error) { return s, nil }
}

// ccConfig is a client_credentials Config for s on clock.
func ccConfig(s *tokenServer, clock *fakeClock) Config {
	return Config{
		Name:         "contoso",
		GrantType:    GrantClientCredentials,
		TokenURL:     s.tokenURL(),
		ClientID:     "client-id",
		ClientSecret: secretFunc("client-secret"),
		AuthStyle:    oauth2.AuthStyleInHeader, // one request per fetch
		Now:          clock.Now,
	}
}

// within fails the test if f takes longer than d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if el := time.Since(start); el > d {
		t.Fatalf("%s took %v, want at most %v", what, el, d)
	}
}
