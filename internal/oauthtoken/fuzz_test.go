package oauthtoken

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// FuzzInspect checks that Inspect never panics, never returns the token,
// and returns a signature only where the claims themselves hold it.
func FuzzInspect(f *testing.F) {
	f.Add(makeJWT(`{"aud":"https://outlook.office.com","scp":"SMTP.Send","exp":1772603900,"upn":"a@b"}`, "c2lnbmF0dXJl"))
	f.Add(makeJWT(`{"roles":["SMTP.SendAsApp"],"appid":"x","iat":1.5e9,"tid":"t"}`, "AAAA"))
	f.Add(makeJWT(`{"aud":["a","b"],"iss":"\u0000\u202e"}`, ""))
	f.Add("ya29.a0AfB_opaque")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		info := Inspect(&oauth2.Token{AccessToken: token})
		strs := infoStrings(info)
		if token != "" && strings.Count(token, ".") == 2 {
			for _, s := range strs {
				if strings.Contains(s, token) {
					t.Fatalf("Info holds the token: %q", s)
				}
			}
		}
		if !info.JWT {
			if len(strs) != 1 { // TokenType only
				t.Fatalf("Info of a non-JWT holds claims: %+v", info)
			}
			return
		}
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			t.Fatalf("JWT with %d parts", len(parts))
		}
		sig := parts[2]
		if sig == "" {
			return
		}
		claimText := payloadStrings(parts[1])
		for _, s := range strs[1:] {
			if strings.Contains(s, sig) && !strings.Contains(claimText, sig) {
				t.Fatalf("Info string %q holds the signature %q, which no claim holds", s, sig)
			}
		}
	})
}

// infoStrings returns every string of info, TokenType first.
func infoStrings(info Info) []string {
	rest := slices.Concat([]string{info.Issuer, info.AppID, info.User, info.TenantID},
		info.GrantedScopes, info.Audience, info.Scopes, info.Roles)
	rest = slices.DeleteFunc(rest, func(s string) bool { return s == "" })
	return append([]string{info.TokenType}, rest...)
}

// payloadStrings returns every string in the decoded payload, joined, in the
// forms Inspect may give them: cleaned whole, cleaned and truncated, and
// split into space-separated items.
func payloadStrings(seg string) string {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return ""
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	var sb strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			forms := []string{clean(v, 1<<30, nil), clean(v, maxClaim, nil)}
			for _, item := range strings.Fields(v) {
				forms = append(forms, clean(item, maxClaim, nil))
			}
			for _, s := range forms {
				sb.WriteString(s)
				sb.WriteByte('\n')
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	return sb.String()
}
