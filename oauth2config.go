package emailconn

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"

	"golang.org/x/oauth2"
)

// GrantType is how an OAuth2 configuration obtains access tokens.
type GrantType string

// The grant types.
const (
	// GrantClientCredentials obtains tokens for the application itself
	// (RFC 6749 §4.4), as Microsoft 365 app-only SMTP does.
	GrantClientCredentials GrantType = "client_credentials"
	// GrantRefreshToken obtains tokens with a stored refresh token (RFC 6749
	// §6), as delegated Microsoft 365 and Google configurations do. When
	// the server rotates the refresh token, the new one is handed to
	// Options.OnRefreshToken before the new access token is used.
	GrantRefreshToken GrantType = "refresh_token"
)

// ClientAuth is how the client authenticates to the token endpoint.
type ClientAuth string

// The client authentication methods.
const (
	// ClientAuthHeader sends the client ID and secret in an HTTP Basic
	// Authorization header (client_secret_basic).
	ClientAuthHeader ClientAuth = "header"
	// ClientAuthBody sends them as form parameters (client_secret_post).
	ClientAuthBody ClientAuth = "body"
)

// Providers whose token endpoint and scopes an OAuth2Config can take from a
// preset instead of spelling them out.
const (
	// ProviderMicrosoft365 presets Microsoft Entra ID for Exchange Online:
	// TokenURL https://login.microsoftonline.com/<Tenant>/oauth2/v2.0/token
	// and, for client credentials, the scope
	// https://outlook.office365.com/.default (the app needs the
	// SMTP.SendAsApp permission); for a refresh token, the scopes
	// https://outlook.office.com/SMTP.Send and offline_access.
	ProviderMicrosoft365 = "microsoft365"
	// ProviderGoogle presets Google: TokenURL
	// https://oauth2.googleapis.com/token and the scope
	// https://mail.google.com/.
	ProviderGoogle = "google"
)

// An OAuth2Config is a named OAuth2 configuration. Connections with
// AuthType AuthOAuth2 name one; every connection naming it shares its
// cached access token.
//
// An OAuth2Config never prints, logs or marshals its client secret or
// refresh token: see Secret.
type OAuth2Config struct {
	// Name identifies the configuration. Required.
	Name string

	// Provider presets TokenURL and Scopes for a known provider
	// (ProviderMicrosoft365 or ProviderGoogle); fields that are set win.
	// Zero means no preset: TokenURL is required.
	Provider string

	// Tenant is the Microsoft Entra tenant (ID or domain) used to build the
	// token URL with ProviderMicrosoft365. Zero means TokenURL must be set.
	Tenant string

	// GrantType is GrantClientCredentials or GrantRefreshToken. Required
	// unless TokenSource is set.
	GrantType GrantType

	// TokenURL is the token endpoint: an https URL (http only on a loopback
	// address). Zero means the provider preset's.
	TokenURL string

	// ClientID is the application (client) ID. Required unless TokenSource
	// is set.
	ClientID string

	// ClientSecret is the client secret: a literal, "env:NAME" or
	// "file:PATH" (read only where Options.References allows it). Required with GrantClientCredentials; optional with
	// GrantRefreshToken (public clients have none).
	ClientSecret Secret

	// RefreshToken is the stored refresh token for GrantRefreshToken: a
	// literal, "env:NAME" or "file:PATH" (read only where
	// Options.References allows it). Required with GrantRefreshToken,
	// not allowed otherwise.
	RefreshToken Secret

	// Scopes are the scopes to request. Zero means the provider preset's,
	// or none.
	Scopes []string

	// EndpointParams are extra form parameters for the token request, for
	// example {"resource": "…"}. Zero means none.
	EndpointParams map[string]string

	// ClientAuth is how the client authenticates to the token endpoint.
	// Zero means try the header first and remember what works.
	ClientAuth ClientAuth

	// TokenSource supplies tokens instead of the fields above, for grants
	// this package does not implement (for example a Google service account
	// with domain-wide delegation from golang.org/x/oauth2/google). It must
	// be safe for concurrent use; tokens are still cached and refreshed
	// ahead of expiry here. It is not part of the JSON form. Zero means use
	// the grant above.
	TokenSource oauth2.TokenSource
}

var oauth2GoNames = oauth2FieldNames{
	name: "Name", provider: "Provider", tenant: "Tenant", grantType: "GrantType",
	tokenURL: "TokenURL", clientID: "ClientID", clientSecret: "ClientSecret",
	refreshToken: "RefreshToken", scopes: "Scopes", endpointParams: "EndpointParams",
	clientAuth: "ClientAuth",
}

var oauth2JSONNames = oauth2FieldNames{
	name: "name", provider: "provider", tenant: "tenant", grantType: "grantType",
	tokenURL: "tokenURL", clientID: "clientID", clientSecret: "clientSecret",
	refreshToken: "refreshToken", scopes: "scopes", endpointParams: "endpointParams",
	clientAuth: "clientAuth",
}

type oauth2FieldNames struct {
	name, provider, tenant, grantType, tokenURL, clientID, clientSecret,
	refreshToken, scopes, endpointParams, clientAuth string
}

// Validate reports every problem with o at once, joined with errors.Join;
// each is a *FieldError naming the Go field. It does no I/O: whether secret
// references are allowed and resolve depends on Options.References, which
// a Registry and TestOAuth2 apply.
func (o *OAuth2Config) Validate() error {
	var p problems
	o.validate(&p, oauth2GoNames)
	return p.err()
}

func (o *OAuth2Config) validate(p *problems, n oauth2FieldNames) {
	if o.Name == "" {
		p.add(n.name, "is required")
	} else if msg := checkName(o.Name); msg != "" {
		p.add(n.name, "%s", msg)
	}
	if o.TokenSource != nil {
		return
	}
	switch o.Provider {
	case "", ProviderGoogle:
	case ProviderMicrosoft365:
		if o.Tenant == "" && o.TokenURL == "" {
			p.add(n.tenant, "is required with provider %q (or set %s)", ProviderMicrosoft365, n.tokenURL)
		}
	default:
		p.add(n.provider, "%q is not a known provider (use %q or %q, or leave it empty and set %s)",
			o.Provider, ProviderMicrosoft365, ProviderGoogle, n.tokenURL)
	}
	if o.Tenant != "" {
		if o.Provider != ProviderMicrosoft365 {
			p.add(n.tenant, "is only used with provider %q", ProviderMicrosoft365)
		} else if msg := checkHostname(o.Tenant); msg != "" {
			p.add(n.tenant, "must be a tenant ID or domain: %s", msg)
		}
	}
	switch o.GrantType {
	case GrantClientCredentials:
		if o.ClientSecret == "" {
			p.add(n.clientSecret, "is required with grant type %q", GrantClientCredentials)
		}
		if o.RefreshToken != "" {
			p.add(n.refreshToken, "is only used with grant type %q", GrantRefreshToken)
		}
	case GrantRefreshToken:
		if o.RefreshToken == "" {
			p.add(n.refreshToken, "is required with grant type %q", GrantRefreshToken)
		}
	case "":
		p.add(n.grantType, "is required (%q or %q)", GrantClientCredentials, GrantRefreshToken)
	default:
		p.add(n.grantType, "%q is not supported (use %q or %q)", o.GrantType, GrantClientCredentials, GrantRefreshToken)
	}
	if o.ClientID == "" {
		p.add(n.clientID, "is required")
	}
	if msg := o.ClientSecret.checkForm(); msg != "" {
		p.add(n.clientSecret, "%s", msg)
	}
	if msg := o.RefreshToken.checkForm(); msg != "" {
		p.add(n.refreshToken, "%s", msg)
	}
	if o.TokenURL == "" {
		if o.Provider == "" {
			p.add(n.tokenURL, "is required")
		}
	} else if msg := checkTokenURL(o.TokenURL); msg != "" {
		p.add(n.tokenURL, "%s", msg)
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.add(fmt.Sprintf("%s[%d]", n.scopes, i), "%q is not a scope (no spaces, quotes or backslashes)", s)
		}
	}
	for _, k := range sortedKeys(o.EndpointParams) {
		switch k {
		case "grant_type", "client_id", "client_secret", "refresh_token", "scope":
			p.add(n.endpointParams, "must not set %q, which the configuration's own fields set", k)
		}
	}
	switch o.ClientAuth {
	case "", ClientAuthHeader, ClientAuthBody:
	default:
		p.add(n.clientAuth, "%q is not a client authentication method (use %q or %q)", o.ClientAuth, ClientAuthHeader, ClientAuthBody)
	}
}

func checkTokenURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", s)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http", u.Host == "":
		return fmt.Sprintf("%q must be an absolute https URL", s)
	case u.User != nil:
		return "must not contain user info (put the client secret in clientSecret)"
	case u.Fragment != "":
		return "must not have a fragment"
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Sprintf("%q must use https (http is only allowed on a loopback address)", s)
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// tokenURL returns the effective token endpoint.
func (o *OAuth2Config) tokenURL() string {
	switch {
	case o.TokenURL != "":
		return o.TokenURL
	case o.Provider == ProviderMicrosoft365:
		return "https://login.microsoftonline.com/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/token"
	case o.Provider == ProviderGoogle:
		return "https://oauth2.googleapis.com/token"
	}
	return ""
}

// scopes returns the effective scopes.
func (o *OAuth2Config) scopes() []string {
	switch {
	case len(o.Scopes) > 0:
		return o.Scopes
	case o.Provider == ProviderMicrosoft365 && o.GrantType == GrantRefreshToken:
		return []string{"https://outlook.office.com/SMTP.Send", "offline_access"}
	case o.Provider == ProviderMicrosoft365:
		return []string{"https://outlook.office365.com/.default"}
	case o.Provider == ProviderGoogle:
		return []string{"https://mail.google.com/"}
	}
	return nil
}

// oauth2ConfigJSON is the JSON form of an OAuth2Config.
type oauth2ConfigJSON struct {
	Name           string            `json:"name"`
	Provider       string            `json:"provider,omitempty"`
	Tenant         string            `json:"tenant,omitempty"`
	GrantType      GrantType         `json:"grantType,omitempty"`
	TokenURL       string            `json:"tokenURL,omitempty"`
	ClientID       string            `json:"clientID,omitempty"`
	ClientSecret   string            `json:"clientSecret,omitempty"`
	RefreshToken   string            `json:"refreshToken,omitempty"`
	Scopes         []string          `json:"scopes,omitempty"`
	EndpointParams map[string]string `json:"endpointParams,omitempty"`
	ClientAuth     ClientAuth        `json:"clientAuth,omitempty"`
}

func (o *OAuth2Config) toJSON(reveal bool) oauth2ConfigJSON {
	cs, rt := o.ClientSecret.String(), o.RefreshToken.String()
	if reveal {
		cs, rt = string(o.ClientSecret), string(o.RefreshToken)
	}
	return oauth2ConfigJSON{
		Name: o.Name, Provider: o.Provider, Tenant: o.Tenant, GrantType: o.GrantType,
		TokenURL: o.TokenURL, ClientID: o.ClientID, ClientSecret: cs, RefreshToken: rt,
		Scopes: o.Scopes, EndpointParams: o.EndpointParams, ClientAuth: o.ClientAuth,
	}
}

// MarshalJSON writes the JSON form with literal secrets written as
// "[redacted]"; Config.Save writes them as they are. TokenSource is not
// written.
func (o OAuth2Config) MarshalJSON() ([]byte, error) { return json.Marshal(o.toJSON(false)) }

// UnmarshalJSON reads the JSON form. Unknown fields and values of the wrong
// type are errors naming the field. It does not validate: call Validate.
func (o *OAuth2Config) UnmarshalJSON(data []byte) error {
	return unmarshalStrict(o, data, (*OAuth2Config).decode)
}

func (o *OAuth2Config) decode(data []byte, p *problems) {
	fields, ok := decodeObject(data, p)
	if !ok {
		return
	}
	for _, f := range fields {
		switch f.key {
		case "name":
			decodeString(p, f, &o.Name)
		case "provider":
			decodeString(p, f, &o.Provider)
		case "tenant":
			decodeString(p, f, &o.Tenant)
		case "grantType":
			decodeString(p, f, (*string)(&o.GrantType))
		case "tokenURL":
			decodeString(p, f, &o.TokenURL)
		case "clientID":
			decodeString(p, f, &o.ClientID)
		case "clientSecret":
			decodeString(p, f, (*string)(&o.ClientSecret))
		case "refreshToken":
			decodeString(p, f, (*string)(&o.RefreshToken))
		case "scopes":
			decodeStrings(p, f, &o.Scopes)
		case "endpointParams":
			decodeStringMap(p, f, &o.EndpointParams, "an object of string values")
		case "clientAuth":
			decodeString(p, f, (*string)(&o.ClientAuth))
		default:
			unknownField(p, f.key, jsonKeys(oauth2ConfigJSON{}))
		}
	}
}

// String describes the configuration without secrets.
func (o OAuth2Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "emailconn.OAuth2Config{Name: %q", o.Name)
	if o.TokenSource != nil {
		b.WriteString(", TokenSource: (custom)}")
		return b.String()
	}
	if o.Provider != "" {
		fmt.Fprintf(&b, ", Provider: %q", o.Provider)
	}
	if o.Tenant != "" {
		fmt.Fprintf(&b, ", Tenant: %q", o.Tenant)
	}
	fmt.Fprintf(&b, ", GrantType: %q, TokenURL: %q, ClientID: %q", o.GrantType, o.tokenURL(), o.ClientID)
	if o.ClientSecret != "" {
		fmt.Fprintf(&b, ", ClientSecret: %s", o.ClientSecret.String())
	}
	if o.RefreshToken != "" {
		fmt.Fprintf(&b, ", RefreshToken: %s", o.RefreshToken.String())
	}
	if s := o.scopes(); len(s) > 0 {
		fmt.Fprintf(&b, ", Scopes: %q", s)
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so that %#v prints no secret either.
func (o OAuth2Config) GoString() string { return o.String() }

// Format prints String for every verb.
func (o OAuth2Config) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(o.String())) }

// LogValue describes the configuration for log/slog without secrets.
func (o OAuth2Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", o.Name),
		slog.String("grantType", string(o.GrantType)),
		slog.String("tokenURL", o.tokenURL()),
		slog.String("clientID", o.ClientID),
	)
}

// checkRefs reports the secrets of o that refs does not allow or that do
// not resolve. Only a valid form is checked (see validate).
func (o *OAuth2Config) checkRefs(p *problems, n oauth2FieldNames, refs *References) {
	for _, f := range []struct {
		s     Secret
		field string
	}{{o.ClientSecret, n.clientSecret}, {o.RefreshToken, n.refreshToken}} {
		if f.s != "" && f.s.checkForm() == "" {
			if _, msg := f.s.reveal(refs); msg != "" {
				p.add(f.field, "%s", msg)
			}
		}
	}
}
