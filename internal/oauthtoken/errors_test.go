package oauthtoken

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/emailconn/emailconn/internal/smtptest"
)

const canary = "CANARY-7f3e9a1c"

func TestTokenEndpointErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        Error // Config is filled in; Err is checked with errors.Is
		wantMsg     string
	}{
		{"500 html", 500, "text/html", "<h1>oops " + canary + "</h1>",
			Error{Status: 500, Temporary: true}, "token endpoint: HTTP 500 Internal Server Error"},
		{"502", 502, "text/plain", "bad gateway " + canary, Error{Status: 502, Temporary: true}, "token endpoint: HTTP 502 Bad Gateway"},
		{"503", 503, "", "", Error{Status: 503, Temporary: true}, "token endpoint: HTTP 503 Service Unavailable"},
		{"504", 504, "", "", Error{Status: 504, Temporary: true}, "token endpoint: HTTP 504 Gateway Timeout"},
		{"429", 429, "", "", Error{Status: 429, Temporary: true}, "token endpoint: HTTP 429 Too Many Requests"},
		{"invalid_grant", 400, "application/json",
			`{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired"}`,
			Error{Status: 400, Code: "invalid_grant", Description: "AADSTS70008: The refresh token has expired", Err: ErrInvalidGrant},
			"token endpoint: invalid_grant: AADSTS70008: The refresh token has expired"},
		{"invalid_client", 401, "application/json", `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`,
			Error{Status: 401, Code: "invalid_client", Description: "AADSTS7000215: Invalid client secret provided.", Err: ErrInvalidClient},
			"token endpoint: invalid_client: AADSTS7000215: Invalid client secret provided."},
		{"unauthorized_client", 400, "application/json", `{"error":"unauthorized_client"}`,
			Error{Status: 400, Code: "unauthorized_client", Err: ErrInvalidClient}, "token endpoint: unauthorized_client"},
		{"other code", 400, "application/json",
			`{"error":"invalid_scope","error_description":"AADSTS70011: bad scope","error_uri":"https://login.microsoftonline.com/error?code=70011"}`,
			Error{Status: 400, Code: "invalid_scope", Description: "AADSTS70011: bad scope", URI: "https://login.microsoftonline.com/error?code=70011"},
			"token endpoint: invalid_scope: AADSTS70011: bad scope"},
		{"temporarily_unavailable", 503, "application/json", `{"error":"temporarily_unavailable"}`,
			Error{Status: 503, Code: "temporarily_unavailable", Temporary: true}, "token endpoint: temporarily_unavailable"},
		{"error code in a 200", 200, "application/json", `{"error":"invalid_request"}`,
			Error{Status: 200, Code: "invalid_request"}, "token endpoint: invalid_request"},
		{"non-JSON 400 with a canary", 400, "text/html", "<p>secret " + canary + "</p>",
			Error{Status: 400}, "token endpoint: HTTP 400 Bad Request"},
		{"form-encoded error", 400, "application/x-www-form-urlencoded", "error=invalid_grant&error_description=gone",
			Error{Status: 400, Code: "invalid_grant", Description: "gone", Err: ErrInvalidGrant}, "token endpoint: invalid_grant: gone"},
		{"control characters", 400, "application/json",
			`{"error":"bad\u0007code\"x","error_description":"line1\r\nline2\u001b[31m\u202eevil\tend"}`,
			Error{Status: 400, Code: "badcodex", Description: "line1 line2 [31m evil end"},
			"token endpoint: badcodex: line1 line2 [31m evil end"},
		{"long description", 400, "application/json", `{"error":"invalid_request","error_description":"` + long + `"}`,
			Error{Status: 400, Code: "invalid_request", Description: long[:200] + "…"},
			"token endpoint: invalid_request: " + long[:200] + "…"},
		{"secret echoed", 401, "application/json", `{"error":"invalid_client","error_description":"bad secret client-secret-` + canary + ` (client-secret-` + canary + `)"}`,
			Error{Status: 401, Code: "invalid_client", Description: "bad secret [redacted] ([redacted])", Err: ErrInvalidClient},
			"token endpoint: invalid_client: bad secret [redacted] ([redacted])"},
		{"HTML with 200", 200, "text/html", "<html>login page " + canary + "</html>",
			Error{}, "token endpoint: the response is not a token response"},
		{"no access token", 200, "application/json", `{"token_type":"Bearer","note":"` + canary + `"}`,
			Error{}, "token endpoint: the response is not a token response"},
		{"redirect not followed", 307, "", "", Error{Status: 307}, "token endpoint: HTTP 307 Temporary Redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var redirected atomic.Int32
			s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.URL.Path == "/elsewhere" {
					redirected.Add(1)
					writeToken(w, "at", 3600, "")
					return
				}
				if tt.status == 307 {
					http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
					return
				}
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, tt.body)
			})
			cfg := ccConfig(s, newClock())
			cfg.ClientSecret = secretFunc("client-secret-" + canary)
			_, err := New(cfg).Token(context.Background())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Token err = %v (%T), want an *Error", err, err)
			}
			tt.want.Config = "contoso"
			if e.Config != tt.want.Config || e.Status != tt.want.Status || e.Code != tt.want.Code ||
				e.Description != tt.want.Description || e.URI != tt.want.URI || e.Temporary != tt.want.Temporary {
				t.Errorf("Error = %#v\nwant    %#v", *e, tt.want)
			}
			if tt.want.Err != nil && !errors.Is(err, tt.want.Err) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want.Err)
			}
			for _, other := range []error{ErrInvalidGrant, ErrInvalidClient} {
				if other != tt.want.Err && errors.Is(err, other) {
					t.Errorf("errors.Is(%v, %v) = true, want false", err, other)
				}
			}
			if want := `oauth2 configuration "contoso": ` + tt.wantMsg; err.Error() != want {
				t.Errorf("Error() = %q\nwant      %q", err, want)
			}
			for _, form := range []string{"%v", "%+v", "%#v", "%s"} {
				if out := fmt.Sprintf(form, err); strings.Contains(out, canary) {
					t.Errorf("Sprintf(%q, err) = %q contains the canary", form, out)
				}
			}
			if n := redirected.Load(); n != 0 {
				t.Errorf("redirect followed %d times, want 0", n)
			}
		})
	}
}

func TestTokenEndpointUnreachable(t *testing.T) {
	addr := smtptest.RefusedAddr(t) // nothing listens, nor will in this test
	c := New(Config{Name: "contoso", GrantType: GrantClientCredentials, TokenURL: "http://" + addr + "/token",
		ClientID: "id", ClientSecret: secretFunc(canary)})
	_, err := c.Token(context.Background())
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Token err = %v, want an *Error", err)
	}
	var ue *url.Error
	if !e.Temporary || e.Status != 0 || !errors.As(err, &ue) {
		t.Errorf("Error = %#v, want Temporary, no status, a *url.Error inside", *e)
	}
	// issue10-1: a sentinel to branch on.
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTimeout) {
		t.Errorf("Token err = %v, want ErrUnreachable and not ErrTimeout", err)
	}
	if want := `oauth2 configuration "contoso": token endpoint: Post "http://` + addr + `/token": dial tcp`; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want it to start with %q", err, want)
	}
}

func TestClean(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"", 10, ""},
		{"plain", 10, "plain"},
		{"a\x00b\x7fc\u0085d", 10, "a b c d"},
		{"  many   spaces\n\n", 20, "many spaces"},
		{"\xff\xfebad", 10, "\uFFFDbad"},
		{"héllo wörld", 5, "héllo…"},
		{"bidi \u202Eevil\u2066", 20, "bidi evil"},
		{"a short secret is kept", 30, "a short secret is kept"},
		{"token SECRET-VALUE and " + url.QueryEscape("SECRET VALUE/+") + " end", 60, "token [redacted] and [redacted] end"},
	}
	for _, tt := range tests {
		if got := clean(tt.in, tt.max, []string{"SECRET-VALUE", "SECRET VALUE/+", "short"}); got != tt.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
