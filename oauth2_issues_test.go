package emailconn_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"

	"golang.org/x/oauth2"
)

// oneEmailconnPrefix fails the test unless msg starts with "emailconn: "
// and says it only once.
func oneEmailconnPrefix(t *testing.T, what, msg string) {
	t.Helper()
	if !strings.HasPrefix(msg, "emailconn: ") || strings.Count(msg, "emailconn:") != 1 {
		t.Errorf("%s = %q, want it to start with \"emailconn: \" exactly once", what, msg)
	}
}

// closedPort returns a loopback address nothing listens on until the end
// of the test (smtptest.RefusedAddr: no other listener can take its port).
func closedPort(t *testing.T) string {
	return smtptest.RefusedAddr(t)
}

// TestIssue10_01_TokenEndpointUnreachable: a token endpoint that refuses
// the connection is ErrConnect at the oauth2 token stage, temporary, with
// one "emailconn:" prefix; TestOAuth2 reports the same sentinel.
func TestIssue10_01_TokenEndpointUnreachable(t *testing.T) {
	t.Parallel()
	tokenURL := "http://" + closedPort(t) + "/token"
	srv := xoauth2Server(t)
	r := oauthRegistryAt(t, srv, tokenURL, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := sendVia(t, r)
	var e *emailconn.Error
	if !errors.As(err, &e) || e.Stage != emailconn.StageToken {
		t.Fatalf("Send = %v, want an *Error at the oauth2 token stage", err)
	}
	if !errors.Is(err, emailconn.ErrConnect) || errors.Is(err, emailconn.ErrAuthFailed) || errors.Is(err, emailconn.ErrTimeout) || !e.Temporary() {
		t.Errorf("Send = %v (Temporary %v), want ErrConnect only, temporary", err, e.Temporary())
	}
	oneEmailconnPrefix(t, "Send error", err.Error())
	if !strings.Contains(err.Error(), `oauth2 token: oauth2 configuration "down": token endpoint: `) {
		t.Errorf("Send = %q, want it to name the stage and the configuration", err)
	}

	rep := r.TestOAuth2(context.Background(), "down")
	if rep.OK || !errors.Is(rep.Err, emailconn.ErrConnect) {
		t.Fatalf("TestOAuth2 = %+v, want ErrConnect", rep)
	}
	oneEmailconnPrefix(t, "TestOAuth2 error", rep.Error)
	if len(rep.Hints) != 1 || !strings.Contains(rep.Hints[0], "could not be reached") {
		t.Errorf("TestOAuth2 hints = %q, want that the endpoint could not be reached", rep.Hints)
	}
}

// TestIssue10_02_TokenEndpointHangs: when the token request times out
// while the caller's context is still running, the error is ErrTimeout and
// never context.DeadlineExceeded, with the registry's own HTTP client as
// with a caller's (TestIssue10_02_TokenEndpointHangsCallersClient).
// TestOAuth2 against a hung endpoint makes one request and waits one
// timeout (issue11-11). Not parallel: the registry's request timeout is
// package-wide.
func TestIssue10_02_TokenEndpointHangs(t *testing.T) {
	t.Run("registry's client", func(t *testing.T) {
		shortTokenTimeout(t, hangTimeout)
		checkTokenEndpointHangs(t, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	})
}

// TestIssue10_02_TokenEndpointHangsCallersClient: TestIssue10_02_TokenEndpointHangs
// with the caller's HTTP client, whose timeout is its own.
func TestIssue10_02_TokenEndpointHangsCallersClient(t *testing.T) {
	t.Parallel()
	t.Run("caller's client", func(t *testing.T) {
		checkTokenEndpointHangs(t, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}, HTTPClient: &http.Client{Timeout: hangTimeout}})
	})
}

// hangTimeout is the token request timeout of the hung-endpoint tests.
const hangTimeout = 500 * time.Millisecond

// checkTokenEndpointHangs sends and runs TestOAuth2 through a registry made
// with opts against a hung token endpoint whose requests time out after
// hangTimeout.
func checkTokenEndpointHangs(t *testing.T, opts *emailconn.Options) {
	const timeout = hangTimeout
	hung, requests := hungEndpoint(t)
	srv := xoauth2Server(t)
	r := oauthRegistryAt(t, srv, hung.URL+"/token", opts)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Send(ctx, basicMessage())
	var e *emailconn.Error
	if !errors.As(err, &e) || e.Stage != emailconn.StageToken {
		t.Fatalf("Send = %v, want an *Error at the oauth2 token stage", err)
	}
	if !errors.Is(err, emailconn.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, emailconn.ErrConnect) || !e.Temporary() {
		t.Errorf("Send = %v, want ErrTimeout (temporary), not context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the caller's context ended: %v", ctx.Err())
	}
	oneEmailconnPrefix(t, "Send error", err.Error())

	requests.Store(0)
	start := time.Now()
	rep := r.TestOAuth2(ctx, "down")
	el := time.Since(start)
	if rep.OK || !errors.Is(rep.Err, emailconn.ErrTimeout) || errors.Is(rep.Err, context.DeadlineExceeded) {
		t.Errorf("TestOAuth2 = %+v, want ErrTimeout", rep)
	}
	oneEmailconnPrefix(t, "TestOAuth2 error", rep.Error)
	if n := requests.Load(); n != 1 || el > 2*timeout {
		t.Errorf("TestOAuth2 made %d requests in %v, want 1 request within one timeout (%v)", n, el, timeout)
	}
}

// TestIssue10_12_TestOAuth2OneRequest: TestOAuth2 makes one token request,
// on an empty cache as on a full one, so a rotating refresh token is
// handed to OnRefreshToken once per test.
func TestIssue10_12_TestOAuth2OneRequest(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	srv := xoauth2Server(t)
	var mu sync.Mutex
	var persisted []string
	r := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{OnRefreshToken: func(_ context.Context, _, rt string) error {
		mu.Lock()
		defer mu.Unlock()
		persisted = append(persisted, rt)
		return nil
	}})
	for i, state := range []string{"empty cache", "cached token"} {
		if rep := r.TestOAuth2(context.Background(), "contoso"); !rep.OK {
			t.Fatalf("TestOAuth2 with %s = %+v", state, rep)
		}
		mu.Lock()
		n := len(persisted)
		mu.Unlock()
		if got := te.requests.Load(); got != int32(i+1) || n != i+1 {
			t.Errorf("after TestOAuth2 with %s: %d token requests, OnRefreshToken called %d times; want %d and %d", state, got, n, i+1, i+1)
		}
	}
	// The tested token is the one the connections use.
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	if got := te.requests.Load(); got != 2 {
		t.Errorf("token requests after a send = %d, want 2 (the tested token is cached)", got)
	}
}

// connCounter is a token endpoint that counts the connections open on its
// side.
type connCounter struct {
	*httptest.Server
	open    atomic.Int32
	changed chan struct{} // receives after open changed
}

func newConnCounter(t *testing.T) *connCounter {
	cc := &connCounter{changed: make(chan struct{}, 1)}
	cc.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"tok-1","token_type":"Bearer","expires_in":3600}`))
	}))
	cc.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			cc.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			cc.open.Add(-1)
		default:
			return
		}
		select {
		case cc.changed <- struct{}{}:
		default: // a signal is pending: the waiter reads open anyway
		}
	}
	cc.Start()
	t.Cleanup(cc.Close)
	return cc
}

// waitOpen waits until the server counts want open connections (the
// server learns of a close asynchronously), woken by each change, for at
// most 5 seconds.
func (cc *connCounter) waitOpen(t *testing.T, want int32, what string) {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for cc.open.Load() != want {
		select {
		case <-cc.changed:
		case <-timeout.C:
			t.Fatalf("%s: %d connections open at the token endpoint, want %d", what, cc.open.Load(), want)
		}
	}
}

// TestIssue10_13_CloseClosesTokenConnections: Registry.Close closes the
// keep-alive connections of the HTTP client it made for token requests,
// and later token requests fail with ErrClosed without dialling. A
// caller's HTTPClient is left alone. A one-off TestOAuth2 leaves no
// connection open either.
func TestIssue10_13_CloseClosesTokenConnections(t *testing.T) {
	t.Parallel()
	for _, policy := range []*emailconn.DialPolicy{nil, {AllowLoopback: true}} {
		name := "no dial policy"
		if policy != nil {
			name = "dial policy"
		}
		t.Run(name, func(t *testing.T) {
			cc := newConnCounter(t)
			r, err := emailconn.NewRegistry(emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials",
				TokenURL: cc.URL + "/token", ClientID: "app", ClientSecret: "s3cret-value"}}}, &emailconn.Options{DialPolicy: policy})
			if err != nil {
				t.Fatal(err)
			}
			if rep := r.TestOAuth2(context.Background(), "contoso"); !rep.OK {
				t.Fatalf("TestOAuth2 = %+v", rep)
			}
			cc.waitOpen(t, 1, "after a token request") // kept alive
			r.Close()
			cc.waitOpen(t, 0, "after Registry.Close")
			rep := r.TestOAuth2(context.Background(), "contoso")
			if rep.OK || !errors.Is(rep.Err, emailconn.ErrClosed) {
				t.Errorf("TestOAuth2 after Close = %+v, want ErrClosed", rep)
			}
			oneEmailconnPrefix(t, "TestOAuth2 after Close", rep.Error)
			if n := cc.open.Load(); n != 0 {
				t.Errorf("TestOAuth2 after Close opened %d connections", n)
			}

			if rep := (emailconn.OAuth2Config{Name: "once", GrantType: "client_credentials",
				TokenURL: cc.URL + "/token", ClientID: "app", ClientSecret: "s3cret-value"}).Test(context.Background(),
				&emailconn.Options{DialPolicy: policy}); !rep.OK {
				t.Fatalf("package TestOAuth2 = %+v", rep)
			}
			cc.waitOpen(t, 0, "after the package TestOAuth2")
		})
	}
	t.Run("request in flight at Close", func(t *testing.T) {
		arrived, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		cc := newConnCounter(t)
		inner := cc.Config.Handler
		cc.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(arrived) })
			<-release
			inner.ServeHTTP(w, r)
		})
		r, err := emailconn.NewRegistry(emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials",
			TokenURL: cc.URL + "/token", ClientID: "app", ClientSecret: "s3cret-value"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *emailconn.OAuth2Report)
		go func() { done <- r.TestOAuth2(context.Background(), "contoso") }()
		<-arrived
		r.Close()
		close(release)
		if rep := <-done; !rep.OK {
			t.Errorf("TestOAuth2 in flight at Close = %+v, want it to finish", rep)
		}
		cc.waitOpen(t, 0, "after the request in flight at Close ended")
	})
	t.Run("caller's client", func(t *testing.T) {
		cc := newConnCounter(t)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		r, err := emailconn.NewRegistry(emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials",
			TokenURL: cc.URL + "/token", ClientID: "app", ClientSecret: "s3cret-value"}}}, &emailconn.Options{HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		if rep := r.TestOAuth2(context.Background(), "contoso"); !rep.OK {
			t.Fatalf("TestOAuth2 = %+v", rep)
		}
		r.Close()
		// The caller's pool is the caller's: its connection is still there
		// to reuse.
		if n := cc.open.Load(); n != 1 {
			t.Errorf("after Close, %d connections open with the caller's client, want 1", n)
		}
	})
}

// TestIssue11_08_OnRefreshTokenPanics: a panic in OnRefreshToken cannot end
// the process. The send goes on with the new access token, the failure is
// logged, the registry's literal keeps the rotated refresh token, the next
// refresh hands it to the callback again, and TestOAuth2 says saving
// failed.
func TestIssue11_08_OnRefreshTokenPanics(t *testing.T) {
	clock := useTokenClock(t)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	srv := xoauth2Server(t)
	var logs syncBuffer
	var mu sync.Mutex
	var calls []string
	r := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{
		IdleTimeout: -1,
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
		OnRefreshToken: func(_ context.Context, _, rt string) error {
			mu.Lock()
			calls = append(calls, rt)
			mu.Unlock()
			panic("cannot persist " + rt)
		},
	})
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("Send = %v, want success with the new access token", err)
	}
	if !strings.Contains(logs.String(), "rotated but not saved") || !strings.Contains(logs.String(), "Options.OnRefreshToken panicked") {
		t.Errorf("log = %q, want the failure to save", logs.String())
	}
	if strings.Contains(logs.String(), "cannot persist") {
		t.Errorf("log = %q holds the panic value, which may hold the token", logs.String())
	}
	if got := r.Config().OAuth2Configs[0].RefreshToken; string(got) != "rt-1" {
		t.Errorf("registry refresh token = %q, want the rotated rt-1", string(got))
	}
	clock.Advance(2 * time.Hour)
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("Send after expiry = %v, want the rotated refresh token to work", err)
	}
	rep := r.TestOAuth2(context.Background(), "contoso")
	if !rep.OK || len(rep.Hints) != 1 || !strings.Contains(rep.Hints[0], "saving the new one failed") || !strings.Contains(rep.Hints[0], "Options.OnRefreshToken panicked") {
		t.Errorf("TestOAuth2 = %+v, want OK with a hint that saving failed", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := "[rt-1 rt-2 rt-3]"; strings.Join(calls, " ") != strings.Trim(want, "[]") {
		t.Errorf("OnRefreshToken calls = %q, want %s", calls, want)
	}
}

// TestIssue11_11_TokenEndpointBlocked: a token endpoint the dial policy
// refuses is ErrBlocked, not temporary and not an authentication failure,
// in a send as in TestOAuth2, whose error starts with "emailconn:".
func TestIssue11_11_TokenEndpointBlocked(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	srv := xoauth2Server(t)
	policy := &emailconn.DialPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Ports: []int{srv.Port()}}
	r := oauthRegistry(t, srv, te, "client_credentials", &emailconn.Options{DialPolicy: policy, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := sendVia(t, r)
	var e *emailconn.Error
	if !errors.As(err, &e) || e.Stage != emailconn.StageToken || !errors.Is(err, emailconn.ErrBlocked) || errors.Is(err, emailconn.ErrAuthFailed) || errors.Is(err, emailconn.ErrConnect) || e.Temporary() {
		t.Errorf("Send = %v, want ErrBlocked at the token stage, not temporary", err)
	}
	rep := r.TestOAuth2(context.Background(), "contoso")
	if rep.OK || !errors.Is(rep.Err, emailconn.ErrBlocked) || errors.Is(rep.Err, emailconn.ErrConnect) {
		t.Fatalf("TestOAuth2 = %+v, want ErrBlocked", rep)
	}
	oneEmailconnPrefix(t, "TestOAuth2 error", rep.Error)
	if len(rep.Hints) != 1 || !strings.Contains(rep.Hints[0], "dial policy") {
		t.Errorf("hints = %q, want the dial policy named", rep.Hints)
	}
	if n := te.requests.Load(); n != 0 {
		t.Errorf("the token endpoint got %d requests, want 0", n)
	}
}

// rotatingRegistry returns a registry whose one OAuth2 configuration has
// the literal refresh token rt-0 at an endpoint that rotates it at every
// request, the configuration it was made with, and the refresh tokens
// handed to OnRefreshToken.
func rotatingRegistry(t *testing.T) (*emailconn.Registry, *tokenEndpoint, emailconn.Config, func() []string) {
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	var mu sync.Mutex
	var persisted []string
	r := oauthRegistry(t, xoauth2Server(t), te, "refresh_token", &emailconn.Options{OnRefreshToken: func(_ context.Context, _, rt string) error {
		mu.Lock()
		defer mu.Unlock()
		persisted = append(persisted, rt)
		return nil
	}})
	return r, te, r.Config(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(persisted)
	}
}

// savedRefreshToken returns the refresh token Config.Save writes for the
// registry's configuration.
func savedRefreshToken(t *testing.T, r *emailconn.Registry) string {
	t.Helper()
	var b strings.Builder
	cfg := r.Config()
	if err := cfg.Save(&b); err != nil {
		t.Fatal(err)
	}
	saved, err := emailconn.LoadConfig(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return string(saved.OAuth2Configs[0].RefreshToken)
}

// TestIssue12_OAuth2State_RotationBuildsNoSnapshot: the token cache owns
// the current refresh token. A rotation hands it to OnRefreshToken once
// and leaves the registry's snapshot alone; Config and Config.Save read
// the rotated literal from the cache.
func TestIssue12_OAuth2State_RotationBuildsNoSnapshot(t *testing.T) {
	t.Parallel()
	r, _, _, persisted := rotatingRegistry(t)
	before := emailconn.SnapshotOf(r)
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	if got := persisted(); !slices.Equal(got, []string{"rt-1"}) {
		t.Errorf("OnRefreshToken saw %q, want [rt-1]", got)
	}
	if emailconn.SnapshotOf(r) != before {
		t.Error("a rotation replaced the registry's snapshot")
	}
	if again, _ := r.Resolve("P"); emailconn.RouteEntry(again) != emailconn.RouteEntry(rt) {
		t.Error("a rotation replaced the route's connection entry")
	}
	if got := r.Config().OAuth2Configs[0].RefreshToken; got != "rt-1" {
		t.Errorf("Config refresh token = %q, want the rotated rt-1", string(got))
	}
	if got := savedRefreshToken(t, r); got != "rt-1" {
		t.Errorf("Save wrote refresh token %q, want the rotated rt-1", got)
	}
}

// TestIssue12_OAuth2State_ReplaceUnchangedKeepsCache: after a rotation, a
// Replace with an unchanged OAuth2 configuration — read back from Config
// (the rotated token) or the one the registry was made with (the original
// token) — keeps the token cache, its access token and its rotated
// refresh token. A new literal (the configuration was authorised again)
// makes a new cache that uses it.
func TestIssue12_OAuth2State_ReplaceUnchangedKeepsCache(t *testing.T) {
	t.Parallel()
	r, te, original, persisted := rotatingRegistry(t)
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  emailconn.Config
	}{{"read back", r.Config()}, {"original", original}} {
		c.cfg.Processes = map[string]string{"P": "m365", "Q": "m365"} // a change elsewhere
		if err := r.Replace(c.cfg); err != nil {
			t.Fatal(err)
		}
		if _, err := sendVia(t, r); err != nil {
			t.Fatalf("send after Replace with the %s configuration: %v", c.name, err)
		}
		if n := te.requests.Load(); n != 1 {
			t.Errorf("after Replace with the %s configuration: %d token requests, want 1 (the cache kept)", c.name, n)
		}
		if got := r.Config().OAuth2Configs[0].RefreshToken; got != "rt-1" {
			t.Errorf("after Replace with the %s configuration: refresh token %q, want the rotated rt-1", c.name, string(got))
		}
	}
	te.set(func(te *tokenEndpoint) { te.refresh = "rt-new" })
	cfg := r.Config()
	cfg.OAuth2Configs[0].RefreshToken = "rt-new"
	if err := r.Replace(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("send with a new refresh token: %v", err)
	}
	if n := te.requests.Load(); n != 2 {
		t.Errorf("after Replace with a new refresh token: %d token requests, want 2", n)
	}
	if got := persisted(); !slices.Equal(got, []string{"rt-1", "rt-2"}) {
		t.Errorf("OnRefreshToken saw %q, want [rt-1 rt-2]", got)
	}
	if got := savedRefreshToken(t, r); got != "rt-2" {
		t.Errorf("Save wrote refresh token %q, want rt-2", got)
	}
}

// TestIssue12_OAuth2State_UpdateDuringRotation: a rotation while Update's
// fn runs does not change the configuration, so fn runs once and its
// result, which shows the refresh token from before the rotation, keeps
// the cache and the newer token.
func TestIssue12_OAuth2State_UpdateDuringRotation(t *testing.T) {
	t.Parallel()
	r, te, _, _ := rotatingRegistry(t)
	calls := 0
	err := r.Update(func(cfg *emailconn.Config) error {
		calls++
		if rep := r.TestOAuth2(context.Background(), "contoso"); !rep.OK { // rotates rt-0 to rt-1
			t.Errorf("TestOAuth2 = %+v", rep)
		}
		cfg.Processes["Q"] = "m365"
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("Update = %v after %d calls of fn, want nil after 1", err, calls)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	if n := te.requests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1 (the tested token, cached)", n)
	}
	if got := r.Config().OAuth2Configs[0].RefreshToken; got != "rt-1" {
		t.Errorf("refresh token = %q, want the rotated rt-1", string(got))
	}
}

// sliceSource is a TokenSource whose values cannot be compared.
type sliceSource struct{ scopes []string }

func (sliceSource) Token() (*oauth2.Token, error) {
	return &oauth2.Token{AccessToken: "tok-custom", Expiry: time.Now().Add(time.Hour)}, nil
}

// TestIssue12_OAuth2State_UncomparableTokenSource: a Replace compares the
// OAuth2 configurations to keep their caches; a TokenSource that cannot be
// compared makes a new cache instead of a panic.
func TestIssue12_OAuth2State_UncomparableTokenSource(t *testing.T) {
	t.Parallel()
	cfg := emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{{Name: "custom", TokenSource: sliceSource{scopes: []string{"a"}}}}}
	r, err := emailconn.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := emailconn.TokenCacheOf(r, "custom")
	if err := r.Replace(cfg); err != nil {
		t.Fatal(err)
	}
	if emailconn.TokenCacheOf(r, "custom") == before {
		t.Error("an uncomparable TokenSource was taken for the same one")
	}
	if rep := r.TestOAuth2(context.Background(), "custom"); !rep.OK {
		t.Errorf("TestOAuth2 = %+v", rep)
	}
}

// TestIssue12_OAuth2State_ReferenceRefreshToken: a refresh token the
// configuration refers to ("env:NAME") is shown as the reference after a
// rotation — persisting the new one is OnRefreshToken's job, and without
// one a warning says it is kept in memory only — while the cache goes on
// with the rotated token; a Replace with the configuration read back
// keeps the cache.
func TestIssue12_OAuth2State_ReferenceRefreshToken(t *testing.T) {
	t.Setenv("EMAILCONN_TEST_RT", "rt-0")
	clock := useTokenClock(t)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	var logs syncBuffer
	r := oauthRegistry(t, xoauth2Server(t), te, "refresh_token", &emailconn.Options{IdleTimeout: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), References: emailconn.References{Env: []string{"EMAILCONN_TEST_RT"}}})
	cfg := r.Config()
	cfg.OAuth2Configs[0].RefreshToken = "env:EMAILCONN_TEST_RT"
	if err := r.Replace(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "kept in memory only") || strings.Contains(logs.String(), "rt-1") {
		t.Errorf("log = %q, want a warning that the rotated token is in memory only, without the token", logs.String())
	}
	if got := r.Config().OAuth2Configs[0].RefreshToken; got != "env:EMAILCONN_TEST_RT" {
		t.Errorf("Config refresh token = %q, want the reference", string(got))
	}
	clock.Advance(2 * time.Hour)
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("send after expiry = %v, want the rotated token from the cache", err)
	}
	if err := r.Replace(r.Config()); err != nil {
		t.Fatal(err)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatal(err)
	}
	if n := te.requests.Load(); n != 2 {
		t.Errorf("%d token requests, want 2 (the cache kept by the Replace)", n)
	}
}
