package oauthtoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Info describes an access token for diagnosis: what the token response
// said and, when the access token is a JWT, what its claims say. It answers
// questions such as "was the SMTP scope granted?", "is the audience
// Exchange Online?" and "which tenant and app issued it?".
//
// The claims are decoded without verifying the signature: an Info must never
// be used for an authorisation decision. It holds no token and no
// signature. Its strings are cleaned of control characters and truncated
// to 256 characters; lists are cut at 64 entries.
type Info struct {
	// TokenType is the token type, "Bearer" when the response had none.
	TokenType string

	// Expiry is the token's expiry. Zero means none.
	Expiry time.Time

	// GrantedScopes are the scopes of the token response's scope
	// parameter. Zero means the response had none (the requested scopes
	// were granted, RFC 6749 §5.1).
	GrantedScopes []string

	// JWT reports whether the access token is a JWT whose claims were
	// decoded. When false, the fields below are zero: the token is opaque
	// (Google's are) or malformed.
	JWT bool

	// Issuer is the iss claim.
	Issuer string

	// Audience is the aud claim: for SMTP at Microsoft 365,
	// https://outlook.office.com or https://outlook.office365.com.
	Audience []string

	// Scopes is the scp claim: delegated permissions, such as SMTP.Send.
	Scopes []string

	// Roles is the roles claim: application permissions, such as
	// SMTP.SendAsApp.
	Roles []string

	// AppID is the appid claim, or azp when there is none.
	AppID string

	// User is the upn claim, or preferred_username, or sub.
	User string

	// TenantID is the tid claim.
	TenantID string

	// IssuedAt, NotBefore and ExpiresAt are the iat, nbf and exp claims,
	// in UTC. Zero means absent or out of range.
	IssuedAt, NotBefore, ExpiresAt time.Time
}

// Limits on what Inspect decodes and keeps.
const (
	maxJWT   = 64 << 10
	maxItems = 64
)

// Inspect describes tok for diagnosis. A nil tok gives the zero Info. It
// never fails: what cannot be decoded is left out.
func Inspect(tok *oauth2.Token) Info {
	if tok == nil {
		return Info{}
	}
	info := Info{
		TokenType:     clean(tok.Type(), maxClaim, nil),
		Expiry:        tok.Expiry,
		GrantedScopes: scopeList(tok.Extra("scope")),
	}
	claims, ok := decodeJWT(tok.AccessToken)
	if !ok {
		return info
	}
	info.JWT = true
	info.Issuer = claimString(claims, "iss")
	info.Audience = claimList(claims, "aud")
	info.Scopes = claimList(claims, "scp")
	info.Roles = claimList(claims, "roles")
	info.AppID = firstClaim(claims, "appid", "azp")
	info.User = firstClaim(claims, "upn", "preferred_username", "sub")
	info.TenantID = claimString(claims, "tid")
	info.IssuedAt = claimTime(claims, "iat")
	info.NotBefore = claimTime(claims, "nbf")
	info.ExpiresAt = claimTime(claims, "exp")
	return info
}

// decodeJWT returns the claims of a JWS compact serialisation whose header
// and payload are JSON objects.
func decodeJWT(s string) (map[string]json.RawMessage, bool) {
	if len(s) > maxJWT || strings.Count(s, ".") != 2 {
		return nil, false
	}
	parts := strings.SplitN(s, ".", 3)
	var header map[string]json.RawMessage
	if !decodeSegment(parts[0], &header) {
		return nil, false
	}
	if _, ok := header["alg"]; !ok {
		return nil, false
	}
	var claims map[string]json.RawMessage
	if !decodeSegment(parts[1], &claims) || claims == nil {
		return nil, false
	}
	return claims, true
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return false
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func claimString(claims map[string]json.RawMessage, name string) string {
	var s string
	if raw, ok := claims[name]; !ok || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return clean(s, maxClaim, nil)
}

func firstClaim(claims map[string]json.RawMessage, names ...string) string {
	for _, n := range names {
		if s := claimString(claims, n); s != "" {
			return s
		}
	}
	return ""
}

// claimList decodes a claim that is a string of space-separated values or
// an array of strings.
func claimList(claims map[string]json.RawMessage, name string) []string {
	raw, ok := claims[name]
	if !ok {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return scopeList(s)
	}
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	return scopeList(list)
}

// scopeList turns a space-separated string, or a list of strings, into a
// cleaned list.
func scopeList(v any) []string {
	var items []string
	switch v := v.(type) {
	case string:
		items = strings.Fields(v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				items = append(items, s)
			}
		}
	case int64: // x/oauth2 parses a form-encoded "scope=123" as a number
		items = []string{strconv.FormatInt(v, 10)}
	case float64:
		items = []string{strconv.FormatFloat(v, 'f', -1, 64)}
	}
	var out []string
	for _, s := range items {
		if len(out) == maxItems {
			break
		}
		if s = clean(s, maxClaim, nil); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// latestTime is the last second of year 9999, the last a NumericDate here
// may be.
const latestTime = 253402300799

// claimTime decodes a NumericDate claim (RFC 7519 §2).
func claimTime(claims map[string]json.RawMessage, name string) time.Time {
	var f float64
	if raw, ok := claims[name]; !ok || json.Unmarshal(raw, &f) != nil {
		return time.Time{}
	}
	if math.IsNaN(f) || f <= 0 || f > latestTime {
		return time.Time{}
	}
	return time.Unix(int64(f), 0).UTC()
}
