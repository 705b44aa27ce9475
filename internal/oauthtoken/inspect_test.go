package oauthtoken

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// makeJWT returns an unsigned-looking JWT with the given claims (raw JSON)
// and signature.
func makeJWT(claims, signature string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"typ":"JWT","alg":"RS256","kid":"k1"}`)) + "." + enc([]byte(claims)) + "." + signature
}

func TestInspect(t *testing.T) {
	expiry := time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)
	entraAppOnly := `{"aud":"https://outlook.office365.com","iss":"https://sts.windows.net/tid-1/","iat":1772600000,"nbf":1772600000,"exp":1772603900,` +
		`"appid":"app-1","roles":["SMTP.SendAsApp"],"tid":"tid-1","sub":"sp-object-id"}`
	entraDelegated := `{"aud":["https://outlook.office.com"],"iss":"https://login.microsoftonline.com/tid-2/v2.0","exp":1772603900.5,` +
		`"azp":"app-2","scp":"SMTP.Send offline_access","tid":"tid-2","upn":"alice@contoso.com","preferred_username":"alice@other","sub":"s"}`
	tests := []struct {
		name string
		tok  *oauth2.Token
		want Info
	}{
		{"nil", nil, Info{}},
		{"opaque Google token with scope", (&oauth2.Token{AccessToken: "ya29.a0AfB_opaque", Expiry: expiry}).
			WithExtra(map[string]any{"scope": "https://mail.google.com/"}),
			Info{TokenType: "Bearer", Expiry: expiry, GrantedScopes: []string{"https://mail.google.com/"}}},
		{"form-encoded scope", (&oauth2.Token{AccessToken: "opaque", TokenType: "bearer"}).
			WithExtra(url.Values{"scope": {"a b  c"}}),
			Info{TokenType: "Bearer", GrantedScopes: []string{"a", "b", "c"}}},
		{"Entra app-only", &oauth2.Token{AccessToken: makeJWT(entraAppOnly, "c2lnbmF0dXJl"), Expiry: expiry},
			Info{TokenType: "Bearer", Expiry: expiry, JWT: true, Issuer: "https://sts.windows.net/tid-1/",
				Audience: []string{"https://outlook.office365.com"}, Roles: []string{"SMTP.SendAsApp"}, AppID: "app-1",
				User: "sp-object-id", TenantID: "tid-1", IssuedAt: time.Unix(1772600000, 0).UTC(),
				NotBefore: time.Unix(1772600000, 0).UTC(), ExpiresAt: time.Unix(1772603900, 0).UTC()}},
		{"Entra delegated", &oauth2.Token{AccessToken: makeJWT(entraDelegated, "sig")},
			Info{TokenType: "Bearer", JWT: true, Issuer: "https://login.microsoftonline.com/tid-2/v2.0",
				Audience: []string{"https://outlook.office.com"}, Scopes: []string{"SMTP.Send", "offline_access"}, AppID: "app-2",
				User: "alice@contoso.com", TenantID: "tid-2", ExpiresAt: time.Unix(1772603900, 0).UTC()}},
		{"scp as array, preferred_username", &oauth2.Token{AccessToken: makeJWT(`{"scp":["a","b",3],"preferred_username":"bob"}`, "s")},
			Info{TokenType: "Bearer", JWT: true, Scopes: []string{"a", "b"}, User: "bob"}},
		{"claims of the wrong type", &oauth2.Token{AccessToken: makeJWT(`{"iss":5,"aud":{"x":1},"exp":"soon","iat":-1,"nbf":1e300,"roles":"R"}`, "s")},
			Info{TokenType: "Bearer", JWT: true, Roles: []string{"R"}}},
		{"control characters in claims", &oauth2.Token{AccessToken: makeJWT(`{"iss":"a\u001b[2Jb\nc","upn":"\u202eevil"}`, "s")},
			Info{TokenType: "Bearer", JWT: true, Issuer: "a [2Jb c", User: "evil"}},
		{"padded segments", &oauth2.Token{AccessToken: makeJWT(`{"tid":"t"}`, "s") + "=="},
			Info{TokenType: "Bearer", JWT: true, TenantID: "t"}},
		{"header without alg", &oauth2.Token{AccessToken: base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + "." +
			base64.RawURLEncoding.EncodeToString([]byte(`{"tid":"t"}`)) + ".s"}, Info{TokenType: "Bearer"}},
		{"payload not an object", &oauth2.Token{AccessToken: makeJWT(`["tid"]`, "s")}, Info{TokenType: "Bearer"}},
		{"JWE (five parts)", &oauth2.Token{AccessToken: "a.b.c.d.e"}, Info{TokenType: "Bearer"}},
		{"bad base64", &oauth2.Token{AccessToken: "!!.??.s"}, Info{TokenType: "Bearer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Inspect(tt.tok)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Inspect() =\n%+v\nwant\n%+v", got, tt.want)
			}
			if tt.tok != nil && tt.tok.AccessToken != "" {
				if out := fmt.Sprintf("%+v %#v", got, got); strings.Contains(out, tt.tok.AccessToken) {
					t.Errorf("Info output contains the access token: %s", out)
				}
			}
		})
	}
}

func TestInspectLimits(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprintf("r%d", i)
	}
	roles, _ := json.Marshal(many)
	long := strings.Repeat("u", 1000)
	info := Inspect(&oauth2.Token{AccessToken: makeJWT(`{"roles":`+string(roles)+`,"upn":"`+long+`"}`, "s")})
	if len(info.Roles) != maxItems || info.Roles[maxItems-1] != fmt.Sprintf("r%d", maxItems-1) {
		t.Errorf("Roles has %d entries, want the first %d", len(info.Roles), maxItems)
	}
	if want := long[:maxClaim] + "…"; info.User != want {
		t.Errorf("User has %d bytes, want %d", len(info.User), len(want))
	}
	huge := makeJWT(`{"tid":"t","pad":"`+strings.Repeat("x", maxJWT)+`"}`, "s")
	if info := Inspect(&oauth2.Token{AccessToken: huge}); info.JWT {
		t.Error("Inspect decoded a token larger than the limit")
	}
}
