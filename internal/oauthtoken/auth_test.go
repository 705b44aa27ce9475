package oauthtoken

import (
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestClientAuthentication(t *testing.T) {
	tests := []struct {
		name   string
		style  oauth2.AuthStyle
		public bool
		// onlyParams makes the server refuse the Authorization header, as
		// Google's does.
		onlyParams bool
		// wantHeader lists, per request of two fetches, whether the client
		// used the header.
		wantHeader []bool
	}{
		{"header", oauth2.AuthStyleInHeader, false, false, []bool{true, true}},
		{"body", oauth2.AuthStyleInParams, false, false, []bool{false, false}},
		{"auto, header accepted", oauth2.AuthStyleAutoDetect, false, false, []bool{true, true}},
		// The header is tried, refused, the parameters work and are
		// remembered for the second fetch.
		{"auto, header refused", oauth2.AuthStyleAutoDetect, false, true, []bool{true, false, false}},
		{"auto, public client", oauth2.AuthStyleAutoDetect, true, true, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tt.onlyParams && r.Header.Get("Authorization") != "" {
					writeError(w, http.StatusUnauthorized, "invalid_client", "use client_secret_post")
					return
				}
				writeToken(w, "at", 3600, "")
			})
			clock := newClock()
			cfg := ccConfig(s, clock)
			cfg.AuthStyle = tt.style
			cfg.Scopes = []string{"https://outlook.office365.com/.default", "offline_access"}
			cfg.EndpointParams = map[string]string{"resource": "res"}
			if tt.public {
				cfg.ClientSecret = nil
			}
			c := New(cfg)
			for range 2 {
				mustToken(t, c)
				clock.Advance(2 * time.Hour)
			}
			if s.count() != len(tt.wantHeader) {
				t.Fatalf("token requests = %d, want %d", s.count(), len(tt.wantHeader))
			}
			for i, header := range tt.wantHeader {
				r := s.request(i)
				f := r.form
				if r.authorizationFound != header {
					t.Errorf("request %d: Authorization header sent = %v, want %v", i, r.authorizationFound, header)
				}
				if header {
					if !r.basic || r.user != "client-id" || r.pass != "client-secret" {
						t.Errorf("request %d: Basic %q:%q (ok %v), want client-id:client-secret", i, r.user, r.pass, r.basic)
					}
					if f.Has("client_secret") {
						t.Errorf("request %d: client_secret in the body as well as the header", i)
					}
				} else {
					if f.Get("client_id") != "client-id" {
						t.Errorf("request %d: client_id = %q, want client-id", i, f.Get("client_id"))
					}
					wantSecret := "client-secret"
					if tt.public {
						wantSecret = ""
					}
					if f.Get("client_secret") != wantSecret || f.Has("client_secret") == tt.public {
						t.Errorf("request %d: client_secret = %q (present %v), want %q", i, f.Get("client_secret"), f.Has("client_secret"), wantSecret)
					}
				}
				if got, want := f.Get("scope"), "https://outlook.office365.com/.default offline_access"; got != want {
					t.Errorf("request %d: scope = %q, want %q", i, got, want)
				}
				if f.Get("resource") != "res" || f.Get("grant_type") != "client_credentials" {
					t.Errorf("request %d: form %v, want resource=res and grant_type=client_credentials", i, f)
				}
			}
		})
	}
}

func TestRefreshTokenGrantSendsScopesAndParams(t *testing.T) {
	s := newTokenServer(t, numberedTokens(3600))
	c := New(Config{
		Name:           "google",
		GrantType:      GrantRefreshToken,
		TokenURL:       s.tokenURL(),
		ClientID:       "client-id",
		ClientSecret:   secretFunc("client-secret"),
		RefreshToken:   secretFunc("stored-rt"),
		Scopes:         []string{"https://mail.google.com/"},
		EndpointParams: map[string]string{"audience": "aud"},
		AuthStyle:      oauth2.AuthStyleInParams,
	})
	mustToken(t, c)
	f := s.request(0).form
	want := map[string]string{
		"grant_type": "refresh_token", "refresh_token": "stored-rt", "scope": "https://mail.google.com/",
		"audience": "aud", "client_id": "client-id", "client_secret": "client-secret",
	}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("form %s = %q, want %q", k, f.Get(k), v)
		}
	}
	if len(f) != len(want) {
		t.Errorf("form has %d parameters, want %d: %v", len(f), len(want), f)
	}
}
