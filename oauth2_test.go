package emailconn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/dialguard"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// acceptTokens returns a validator accepting the listed tokens and counting
// calls.
func acceptTokens(calls *atomic.Int32, ok func(token string) bool) func(user, token string) bool {
	return func(user, token string) bool {
		calls.Add(1)
		return user == "robot@contoso.com" && ok(token)
	}
}

func TestOAuth2Mechanisms(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			te := newTokenEndpoint(t)
			var auths atomic.Int32
			srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"LOGIN", mech}, RequireAuth: true,
				ValidateToken: acceptTokens(&auths, func(tok string) bool { return strings.HasPrefix(tok, "tok-") })})
			r := oauthRegistry(t, srv, te, "client_credentials", nil)
			for range 5 {
				rc, err := sendVia(t, r)
				if err != nil {
					t.Fatal(err)
				}
				if rc.Mechanism != mech {
					t.Errorf("Mechanism = %q, want %q", rc.Mechanism, mech)
				}
			}
			if n := te.requests.Load(); n != 1 {
				t.Errorf("token requests = %d, want 1 (cached)", n)
			}
			if m := srv.Messages(); len(m) != 5 || m[0].Mechanism != mech || m[0].AuthUser != "robot@contoso.com" {
				t.Errorf("server got %+v", m)
			}
		})
	}
}

func TestOAuth2RejectedTokenRefreshedOnce(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"XOAUTH2", "OAUTHBEARER"} {
		t.Run(mech, func(t *testing.T) {
			te := newTokenEndpoint(t)
			var auths atomic.Int32
			// The server rejects the first token (revoked early) and accepts later ones.
			srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{mech},
				ValidateToken: acceptTokens(&auths, func(tok string) bool { return tok != "tok-1" })})
			r := oauthRegistry(t, srv, te, "client_credentials", nil)
			if _, err := sendVia(t, r); err != nil {
				t.Fatalf("Send = %v, want success after one refresh", err)
			}
			if te.requests.Load() != 2 || auths.Load() != 2 {
				t.Errorf("token requests %d, AUTH attempts %d; want 2 and 2", te.requests.Load(), auths.Load())
			}
		})
	}
}

func TestOAuth2RejectedTwice(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	var auths atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(string) bool { return false })})
	r := oauthRegistry(t, srv, te, "client_credentials", nil)
	_, err := sendVia(t, r)
	if !errors.Is(err, emailconn.ErrAuthFailed) {
		t.Fatalf("Send = %v, want ErrAuthFailed", err)
	}
	var se *emailconn.SMTPError
	if !errors.As(err, &se) || se.Code != 535 {
		t.Errorf("Send = %v, want the server's 535", err)
	}
	if !strings.Contains(err.Error(), "token rejected: status 401, scope https://mail.google.com/") {
		t.Errorf("error %q does not surface the failure challenge", err)
	}
	if auths.Load() != 2 || te.requests.Load() != 2 {
		t.Errorf("AUTH attempts %d, token requests %d; want 2 and 2", auths.Load(), te.requests.Load())
	}
	for _, l := range srv.Transcript() {
		if l == "*" {
			t.Error("the client sent a SASL abort")
		}
	}
}

func TestOAuth2ConcurrentSendsOneRefresh(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	var auths atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(string) bool { return true })})
	r := oauthRegistry(t, srv, te, "client_credentials", &emailconn.Options{MaxSessions: 50})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := sendVia(t, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := te.requests.Load(); n != 1 {
		t.Errorf("50 concurrent sends made %d token requests, want 1", n)
	}
}

func TestOAuth2ExpiryMidRun(t *testing.T) {
	clock := useTokenClock(t)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.expires = 2 })
	var auths atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(string) bool { return true })})
	// New sessions every time, so each send authenticates.
	r := oauthRegistry(t, srv, te, "client_credentials", &emailconn.Options{IdleTimeout: -1})
	for range 4 {
		if _, err := sendVia(t, r); err != nil {
			t.Fatal(err)
		}
		clock.Advance(600 * time.Millisecond)
	}
	// Fetched at 0 s, refreshed at 1.2 s (past half the lifetime).
	if n := te.requests.Load(); n != 2 {
		t.Errorf("token requests = %d over 2.4 s of 2-second tokens, want 2 (one refresh)", n)
	}
}

func TestOAuth2RefreshTokenRotation(t *testing.T) {
	clock := useTokenClock(t)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate, te.expires = true, 2 })
	var auths atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(string) bool { return true })})
	var mu sync.Mutex
	var persisted []string
	r := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{IdleTimeout: -1, OnRefreshToken: func(_ context.Context, name, rt string) error {
		mu.Lock()
		defer mu.Unlock()
		if name != "contoso" {
			t.Errorf("OnRefreshToken for %q", name)
		}
		persisted = append(persisted, rt)
		return nil
	}})
	for range 3 {
		if _, err := sendVia(t, r); err != nil {
			t.Fatal(err)
		}
		clock.Advance(1100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	te.mu.Lock()
	current := te.refresh
	te.mu.Unlock()
	if len(persisted) < 2 || persisted[len(persisted)-1] != current {
		t.Fatalf("persisted %v, the server's current refresh token is %s", persisted, current)
	}
	// The registry's own configuration holds the latest literal, so Save
	// writes a token that still works.
	if got := r.Config().OAuth2Configs[0].RefreshToken; string(got) != current {
		t.Errorf("registry refresh token = %q, want %q", string(got), current)
	}
}

func TestOAuth2TokenEndpointFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fail string
		want error
		temp bool
	}{
		{"invalid_grant", emailconn.ErrReauthorize, false},
		{"invalid_client", emailconn.ErrAuthFailed, false},
		{"500", emailconn.ErrConnect, true}, // issue10-1: the endpoint is unavailable
	}
	for _, tt := range tests {
		t.Run(tt.fail, func(t *testing.T) {
			te := newTokenEndpoint(t)
			te.set(func(te *tokenEndpoint) { te.fail = tt.fail })
			srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return true }})
			r := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			_, err := sendVia(t, r)
			var e *emailconn.Error
			if !errors.As(err, &e) || e.Stage != emailconn.StageToken {
				t.Fatalf("Send = %v, want a failure at the token stage", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
			if e.Temporary() != tt.temp {
				t.Errorf("Temporary() = %v, want %v", e.Temporary(), tt.temp)
			}
			if strings.Contains(err.Error(), te.secret) {
				t.Errorf("error %q contains the client secret", err)
			}
			for _, l := range srv.Transcript() {
				if strings.HasPrefix(l, "AUTH") {
					t.Errorf("AUTH sent without a token: %q", l)
				}
			}
		})
	}
}

func TestOAuth2HungEndpointDoesNotBlockOthers(t *testing.T) {
	// Not parallel: the test bounds the wall time of a send tightly.
	hung, ok := newTokenEndpoint(t), newTokenEndpoint(t)
	hung.set(func(te *tokenEndpoint) { te.fail = "hang" })
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return true }})
	ca := caFile(t)
	conn := func(name, oauth string) emailconn.Connection {
		return emailconn.Connection{Name: name, MailServer: srv.Addr(), EnableTLS: true, CAFile: ca, AuthType: "oauth2",
			Username: "robot@contoso.com", OAuth2Config: oauth, From: "robot@contoso.com"}
	}
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{conn("a", "hung"), conn("b", "ok")},
		OAuth2Configs: []emailconn.OAuth2Config{
			{Name: "hung", GrantType: "client_credentials", TokenURL: hung.URL, ClientID: "app", ClientSecret: emailconn.Secret(hung.secret)},
			{Name: "ok", GrantType: "client_credentials", TokenURL: ok.URL, ClientID: "app", ClientSecret: emailconn.Secret(ok.secret)},
		},
	}, allowCA(conn("a", "hung"), &emailconn.Options{HTTPClient: &http.Client{Timeout: 500 * time.Millisecond}, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sa, _ := r.Sender("a")
	sb, _ := r.Sender("b")
	errA := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := sa.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}})
		errA <- err
	}()
	<-hung.hung // the hung request reached the endpoint
	if _, err := sb.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}}); err != nil {
		t.Fatalf("the other configuration: %v", err)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("the other configuration's send took %v: blocked by the hung endpoint", d)
	}
	select {
	case err := <-errA:
		if err == nil || time.Since(start) > 3*time.Second {
			t.Errorf("the hung configuration: %v after %v", err, time.Since(start))
		}
		t.Log(err)
	case <-time.After(5 * time.Second):
		t.Fatal("the hung token endpoint was not cut off")
	}
}

func TestOAuth2LongTokenDeferredInitialResponse(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.padding = 1500 }) // a 1.5 kB token, like Entra's
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, MaxLineLength: 512,
		ValidateToken: func(_, tok string) bool { return len(tok) > 1500 }})
	r := oauthRegistry(t, srv, te, "client_credentials", nil)
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("Send = %v", err)
	}
	var auth string
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "AUTH") {
			auth = l
		}
	}
	if auth != "AUTH XOAUTH2" {
		t.Errorf("AUTH line = %q, want the initial response deferred", auth)
	}
}

func TestOAuth2TokenNotSentInPlaintext(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	srv := smtptest.NewServer(t, smtptest.Options{Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return true }})
	c := connFor(t, srv, "none")
	c.AuthType, c.Username, c.OAuth2Config = "oauth2", "robot@contoso.com", "contoso"
	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}, OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials", TokenURL: te.URL, ClientID: "app", ClientSecret: emailconn.Secret(te.secret)}}},
		emailconn.WithDial(&emailconn.Options{References: emailconn.References{Dirs: []string{filepath.Dir(c.CAFile)}}}, func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return fakeRemote{conn}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, _ := r.Sender("test")
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrInsecureAuth) {
		t.Fatalf("Send = %v, want ErrInsecureAuth", err)
	}
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "AUTH") {
			t.Errorf("bearer token sent in plaintext: %q", l)
		}
	}
}

// TestOAuth2CanaryNeverLeaks extends the canary test to client secrets,
// refresh tokens and access tokens, including their XOAUTH2 and
// OAUTHBEARER payloads.
func TestOAuth2CanaryNeverLeaks(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) {
		te.prefix, te.rotate, te.refresh = "access-canary-Vb3-", true, "refresh-canary-Kq8"
	})
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen strings.Builder
	for _, scenario := range []string{"ok", "rejected", "invalid_grant", "500"} {
		var auths atomic.Int32
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2", "OAUTHBEARER"},
			ValidateToken: acceptTokens(&auths, func(string) bool { return scenario != "rejected" })})
		te.set(func(te *tokenEndpoint) {
			te.fail = ""
			if scenario == "invalid_grant" || scenario == "500" {
				te.fail = scenario
			}
		})
		oc := emailconn.OAuth2Config{Name: "contoso", GrantType: "refresh_token", TokenURL: te.URL, ClientID: "app", ClientSecret: emailconn.Secret(te.secret), RefreshToken: "refresh-canary-Kq8"}
		c := connFor(t, srv, "starttls")
		c.AuthType, c.Username, c.OAuth2Config = "oauth2", "robot@contoso.com", "contoso"
		r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}, OAuth2Configs: []emailconn.OAuth2Config{oc}}, allowCA(c, &emailconn.Options{Logger: logger}))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := r.Sender("test")
		rc, err := s.Send(context.Background(), basicMessage())
		fmt.Fprintf(&seen, "%v %+v %#v %v %+v %v\n", err, err, rc, r.Config(), oc, c)
		b, _ := json.Marshal(r.Config())
		seen.Write(b)
		r.Close()
	}
	out := logs.String() + seen.String()
	var secrets canaries = []string{te.secret, "refresh-canary-Kq8", "access-canary-Vb3-"}
	for _, f := range secrets.forms("robot@contoso.com") {
		if strings.Contains(out, f) {
			t.Errorf("output contains a secret or its encoding %q", f)
		}
	}
	if !strings.Contains(logs.String(), "AUTH XOAUTH2 [redacted]") {
		t.Errorf("the debug transcript lacks the redacted AUTH line")
	}
}

func jwtFor(claims map[string]any) string {
	b64 := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return b64(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + b64(claims) + ".c2lnbmF0dXJlLWNhbmFyeQ"
}

func TestOAuth2Report(t *testing.T) {
	t.Parallel()
	claims := map[string]any{"iss": "https://sts.windows.net/tenant-id/", "aud": "https://graph.microsoft.com", "roles": []string{"Mail.Send"},
		"appid": "app-id", "tid": "tenant-id", "exp": time.Now().Add(time.Hour).Unix()}
	token := jwtFor(claims)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599,"scope":"https://graph.microsoft.com/.default"}`, token)
	}))
	defer srv.Close()
	r, err := emailconn.NewRegistry(emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials", TokenURL: srv.URL, ClientID: "app", ClientSecret: "s"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rep := r.TestOAuth2(context.Background(), "contoso")
	if !rep.OK || rep.Claims == nil || rep.Claims.AppID != "app-id" || rep.Expiry.IsZero() {
		t.Fatalf("report %+v", rep)
	}
	if len(rep.Hints) != 2 || !strings.Contains(rep.Hints[0], "not Exchange Online") || !strings.Contains(rep.Hints[1], "SMTP.SendAsApp") {
		t.Errorf("hints = %q", rep.Hints)
	}
	if !strings.Contains(rep.Sentence, "Obtained an access token") || strings.Contains(strings.ToLower(rep.Sentence), "fail") {
		t.Errorf("sentence = %q", rep.Sentence)
	}
	b, _ := json.Marshal(rep)
	if strings.Contains(string(b), token) || strings.Contains(string(b), "c2lnbmF0dXJlLWNhbmFyeQ") || !strings.Contains(string(b), `"aud":["https://graph.microsoft.com"]`) {
		t.Errorf("JSON = %s", b)
	}

	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.fail = "invalid_client" })
	rep = emailconn.OAuth2Config{Name: "x", GrantType: "client_credentials", TokenURL: te.URL, ClientID: "app", ClientSecret: "wrong"}.Test(context.Background(), nil)
	if rep.OK || !strings.Contains(rep.Sentence, "invalid_client") || len(rep.Hints) != 1 || !strings.Contains(rep.Hints[0], "client secret") {
		t.Errorf("report %+v", rep)
	}
	if !errors.Is(rep.Err, emailconn.ErrAuthFailed) || errors.Is(rep.Err, emailconn.ErrConnect) {
		t.Errorf("report error %v, want ErrAuthFailed as a send would get", rep.Err)
	}
	if rep := r.TestOAuth2(context.Background(), "contso"); rep.OK || !strings.Contains(rep.Error, `did you mean "contoso"`) {
		t.Errorf("unknown name: %+v", rep)
	}
}

// TestOAuth2TokenEndpointUnderDialPolicy: the dial policy applies to the
// token endpoint too (T14): a loopback token URL is refused before any
// request, while the SMTP server is allowed explicitly.
func TestOAuth2TokenEndpointUnderDialPolicy(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"}, ValidateToken: func(string, string) bool { return true }})
	smtpPort := srv.Port()
	policy := &emailconn.DialPolicy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Ports: []int{smtpPort}}
	r := oauthRegistry(t, srv, te, "client_credentials", &emailconn.Options{DialPolicy: policy, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := sendVia(t, r)
	if !errors.Is(err, emailconn.ErrBlocked) {
		t.Fatalf("Send = %v, want ErrBlocked for the token endpoint", err)
	}
	if n := te.requests.Load(); n != 0 {
		t.Errorf("the token endpoint got %d requests, want 0", n)
	}
	rep := r.TestOAuth2(context.Background(), "contoso")
	if rep.OK || !errors.Is(rep.Err, dialguard.ErrBlocked) {
		t.Errorf("TestOAuth2 = %+v, want a refusal", rep)
	}
}
