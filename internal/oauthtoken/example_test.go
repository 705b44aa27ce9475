package oauthtoken_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"github.com/emailconn/emailconn/internal/oauthtoken"
	"golang.org/x/oauth2"
)

func ExampleCache() {
	// A token endpoint for the example: it numbers its tokens.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","token_type":"Bearer","expires_in":3600}`, n.Add(1))
	}))
	defer srv.Close()

	c := oauthtoken.New(oauthtoken.Config{
		Name:         "contoso",
		GrantType:    oauthtoken.GrantClientCredentials,
		TokenURL:     srv.URL,
		ClientID:     "00000000-0000-0000-0000-000000000001",
		ClientSecret: func() (string, error) { return "secret", nil },
		Scopes:       []string{"https://outlook.office365.com/.default"},
	})
	ctx := context.Background()
	tok, _ := c.Token(ctx)
	fmt.Println(tok.AccessToken)
	tok, _ = c.Token(ctx) // cached
	fmt.Println(tok.AccessToken)

	// The SMTP server rejected it: fetch another.
	c.Invalidate(tok.AccessToken)
	tok, _ = c.Token(ctx)
	fmt.Println(tok.AccessToken)
	fmt.Println(c)
	// Output:
	// token-1
	// token-1
	// token-2
	// oauthtoken.Cache{Config: "contoso"}
}

func ExampleError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired due to inactivity.","trace_id":"…"}`)
	}))
	defer srv.Close()

	c := oauthtoken.New(oauthtoken.Config{
		Name:         "contoso",
		GrantType:    oauthtoken.GrantRefreshToken,
		TokenURL:     srv.URL,
		ClientID:     "00000000-0000-0000-0000-000000000001",
		RefreshToken: func() (string, error) { return "stored refresh token", nil },
	})
	_, err := c.Token(context.Background())
	fmt.Println(err)
	fmt.Println(errors.Is(err, oauthtoken.ErrInvalidGrant))
	var e *oauthtoken.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Temporary)
	}
	// Output:
	// oauth2 configuration "contoso": token endpoint: invalid_grant: AADSTS70008: The refresh token has expired due to inactivity.
	// true
	// 400 invalid_grant false
}

func ExampleInspect() {
	enc := base64.RawURLEncoding.EncodeToString
	accessToken := enc([]byte(`{"typ":"JWT","alg":"RS256"}`)) + "." +
		enc([]byte(`{"aud":"https://graph.microsoft.com","scp":"Mail.Send","upn":"alice@contoso.com","tid":"contoso-tenant-id","exp":1772603900}`)) +
		".signature"
	tok := (&oauth2.Token{AccessToken: accessToken}).WithExtra(map[string]any{"scope": "https://graph.microsoft.com/Mail.Send"})

	info := oauthtoken.Inspect(tok)
	fmt.Println("granted:", info.GrantedScopes)
	fmt.Println("audience:", info.Audience) // Graph, not Exchange Online: SMTP AUTH will fail
	fmt.Println("scopes:", info.Scopes)
	fmt.Println("user:", info.User, "tenant:", info.TenantID)
	fmt.Println("expires:", info.ExpiresAt)
	// Output:
	// granted: [https://graph.microsoft.com/Mail.Send]
	// audience: [https://graph.microsoft.com]
	// scopes: [Mail.Send]
	// user: alice@contoso.com tenant: contoso-tenant-id
	// expires: 2026-03-04 05:58:20 +0000 UTC
}

func ExampleConfig_rotation() {
	// A token endpoint that rotates the refresh token on every use, as
	// Microsoft Entra ID may.
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%d","refresh_token":"refresh-%d","expires_in":3600}`, i, i)
	}))
	defer srv.Close()

	c := oauthtoken.New(oauthtoken.Config{
		Name:         "contoso",
		GrantType:    oauthtoken.GrantRefreshToken,
		TokenURL:     srv.URL,
		ClientID:     "00000000-0000-0000-0000-000000000001",
		RefreshToken: func() (string, error) { return "refresh-0", nil }, // read from storage
		OnRotate: func(ctx context.Context, newRefreshToken string) error {
			fmt.Println("save", newRefreshToken) // write it back to storage
			return errors.New("storage is read-only")
		},
	})
	tok, err := c.Token(context.Background())
	fmt.Println(tok.AccessToken, !c.Expiry().IsZero())
	fmt.Println(errors.Is(err, oauthtoken.ErrRotationNotSaved), err)
	// Output:
	// save refresh-1
	// token-1 true
	// true oauth2 configuration "contoso": saving the rotated refresh token: storage is read-only
}
