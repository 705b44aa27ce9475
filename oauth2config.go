package emailconn

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sort"
	"strings"

	"golang.org/x/oauth2"
)

// The values of OAuth2Config.GrantType, ClientAuth and Provider (and
// Connection.Provider); the fields' comments say what each means.
const (
	grantClientCredentials = "client_credentials"
	grantRefreshToken      = "refresh_token"

	clientAuthHeader = "header"
	clientAuthBody   = "body"

	providerMicrosoft365 = "microsoft365"
	providerGoogle       = "google"
	providerSES          = "ses"
)

// An OAuth2Config is a named OAuth2 configuration. Connections with
// AuthType "oauth2" name one; every connection naming it shares its
// cached access token. The json tag is the field's name in the
// configuration file (see LoadConfig).
//
// The zero value is not usable (Name, GrantType and ClientID are
// required). An OAuth2Config never prints, logs or marshals its client
// secret or refresh token: see Secret. It is safe for concurrent use as
// long as nobody modifies it.
type OAuth2Config struct {
	// Name identifies the configuration; connections name it in
	// OAuth2Config. Zero is invalid: the name is required.
	Name string `json:"name"`

	// Provider presets TokenURL and Scopes for a known mail provider,
	// so that a configuration can name it instead of spelling them out;
	// fields that are set win. "microsoft365" (Exchange Online) presets
	// Microsoft Entra ID: TokenURL
	// https://login.microsoftonline.com/<Tenant>/oauth2/v2.0/token and,
	// for client credentials, the scope
	// https://outlook.office365.com/.default (the app needs the
	// SMTP.SendAsApp permission); for a refresh token, the scopes
	// https://outlook.office.com/SMTP.Send and offline_access. "google"
	// (Google Workspace and Gmail) presets TokenURL
	// https://oauth2.googleapis.com/token and the scope
	// https://mail.google.com/. Zero means no preset: TokenURL is
	// required. Any other value is invalid ("ses", a Connection's
	// provider, has no OAuth2 preset).
	Provider string `json:"provider,omitempty"`

	// Tenant is the Microsoft Entra tenant (ID or domain) used to build the
	// token URL with "microsoft365". Zero means TokenURL must be set.
	Tenant string `json:"tenant,omitempty"`

	// GrantType is how tokens are obtained: "client_credentials" for the
	// application itself (RFC 6749 §4.4), as Microsoft 365 app-only SMTP
	// does, or "refresh_token" with a stored refresh token (RFC 6749 §6),
	// as delegated Microsoft 365 and Google configurations do; when the
	// server rotates the refresh token, the new one is handed to
	// Options.OnRefreshToken before the new access token is used. Zero
	// and any other value are invalid unless TokenSource is set.
	GrantType string `json:"grantType,omitempty"`

	// TokenURL is the token endpoint: an https URL (http only on a loopback
	// address). Zero means the provider preset's.
	TokenURL string `json:"tokenURL,omitempty"`

	// ClientID is the application (client) ID. Zero is invalid unless
	// TokenSource is set.
	ClientID string `json:"clientID,omitempty"`

	// ClientSecret is the client secret: a literal, "env:NAME" or
	// "file:PATH" (read only where Options.References allows it). Required
	// with "client_credentials". Zero means none, which suits
	// "refresh_token" for a public client.
	ClientSecret Secret `json:"clientSecret,omitempty"`

	// RefreshToken is the stored refresh token for "refresh_token": a
	// literal, "env:NAME" or "file:PATH" (read only where
	// Options.References allows it). Required with "refresh_token",
	// not allowed otherwise. Zero means none.
	RefreshToken Secret `json:"refreshToken,omitempty"`

	// Scopes are the scopes to request. Zero means the provider preset's,
	// or none.
	Scopes []string `json:"scopes,omitempty"`

	// EndpointParams are extra form parameters for the token request, for
	// example {"resource": "…"}. String and LogValue show how many there
	// are, never their values. Zero means none.
	EndpointParams map[string]string `json:"endpointParams,omitempty"`

	// ClientAuth is how the client authenticates to the token endpoint:
	// "header" sends the client ID and secret in an HTTP Basic
	// Authorization header (client_secret_basic), "body" as form
	// parameters (client_secret_post). Zero means try the header first
	// and remember what works; any other value is invalid.
	ClientAuth string `json:"clientAuth,omitempty"`

	// TokenSource supplies tokens instead of the fields above, for grants
	// this package does not implement (for example a Google service account
	// with domain-wide delegation from golang.org/x/oauth2/google). It must
	// be safe for concurrent use; tokens are still cached and refreshed
	// ahead of expiry here. It is not part of the JSON form. Zero means use
	// the grant above.
	TokenSource oauth2.TokenSource `json:"-"`
}

// oauth2Fields is the field table of OAuth2Config.
var oauth2Fields = newFieldTable[OAuth2Config]("emailconn.OAuth2Config")

// How problems name an OAuth2Config's fields: by Go name, or by JSON name
// in a Config.
var (
	oauth2GoNames   fieldNames
	oauth2JSONNames = oauth2Fields.jsonNames
)

// Validate reports every problem with o at once, joined with errors.Join;
// each is a *FieldError naming the Go field (see FieldError.Field). With a
// TokenSource, only Name is checked. It does no I/O: whether secret
// references are allowed and resolve depends on Options.References, which
// a Registry and TestOAuth2 apply. It does not check that connections
// name o, which a Registry checks. It is safe for concurrent use.
func (o *OAuth2Config) Validate() error {
	var p problems
	o.validate(&p, oauth2GoNames)
	return p.err()
}

func (o *OAuth2Config) validate(p *problems, n fieldNames) {
	if o.Name == "" {
		p.add(n.of("Name"), "is required")
	} else if msg := checkName(o.Name); msg != "" {
		p.add(n.of("Name"), "%s", msg)
	}
	if o.TokenSource != nil {
		return
	}
	o.validateProvider(p, n)
	o.validateGrant(p, n)
	if o.ClientID == "" {
		p.add(n.of("ClientID"), "is required")
	}
	oauth2Fields.checkSecretForms(o, p, n)
	if o.TokenURL == "" {
		if o.Provider == "" {
			p.add(n.of("TokenURL"), "is required")
		}
	} else if msg := checkTokenURL(o.TokenURL); msg != "" {
		p.add(n.of("TokenURL"), "%s", msg)
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			p.add(fmt.Sprintf("%s[%d]", n.of("Scopes"), i), "%q is not a scope (no spaces, quotes or backslashes)", s)
		}
	}
	for _, k := range sortedKeys(o.EndpointParams) {
		switch k {
		case "grant_type", "client_id", "client_secret", "refresh_token", "scope":
			p.add(n.of("EndpointParams"), "must not set %q, which the configuration's own fields set", k)
		}
	}
	switch o.ClientAuth {
	case "", clientAuthHeader, clientAuthBody:
	default:
		p.add(n.of("ClientAuth"), "%q is not a client authentication method (use %q or %q)", o.ClientAuth, clientAuthHeader, clientAuthBody)
	}
}

// validateProvider checks Provider and Tenant.
func (o *OAuth2Config) validateProvider(p *problems, n fieldNames) {
	switch o.Provider {
	case "", providerGoogle:
	case providerMicrosoft365:
		if o.Tenant == "" && o.TokenURL == "" {
			p.add(n.of("Tenant"), "is required with provider %q (or set %s)", providerMicrosoft365, n.of("TokenURL"))
		}
	default:
		p.add(n.of("Provider"), "%q is not a known provider (use %q or %q, or leave it empty and set %s)",
			o.Provider, providerMicrosoft365, providerGoogle, n.of("TokenURL"))
	}
	if o.Tenant != "" {
		if o.Provider != providerMicrosoft365 {
			p.add(n.of("Tenant"), "is only used with provider %q", providerMicrosoft365)
		} else if msg := checkHostname(o.Tenant); msg != "" {
			p.add(n.of("Tenant"), "must be a tenant ID or domain: %s", msg)
		}
	}
}

// validateGrant checks GrantType against the secrets it needs.
func (o *OAuth2Config) validateGrant(p *problems, n fieldNames) {
	switch o.GrantType {
	case grantClientCredentials:
		if o.ClientSecret == "" {
			p.add(n.of("ClientSecret"), "is required with grant type %q", grantClientCredentials)
		}
		if o.RefreshToken != "" {
			p.add(n.of("RefreshToken"), "is only used with grant type %q", grantRefreshToken)
		}
	case grantRefreshToken:
		if o.RefreshToken == "" {
			p.add(n.of("RefreshToken"), "is required with grant type %q", grantRefreshToken)
		}
	case "":
		p.add(n.of("GrantType"), "is required (%q or %q)", grantClientCredentials, grantRefreshToken)
	default:
		p.add(n.of("GrantType"), "%q is not supported (use %q or %q)", o.GrantType, grantClientCredentials, grantRefreshToken)
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
	case o.Provider == providerMicrosoft365:
		return "https://login.microsoftonline.com/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/token"
	case o.Provider == providerGoogle:
		return "https://oauth2.googleapis.com/token"
	}
	return ""
}

// scopes returns the effective scopes.
func (o *OAuth2Config) scopes() []string {
	switch {
	case len(o.Scopes) > 0:
		return o.Scopes
	case o.Provider == providerMicrosoft365 && o.GrantType == grantRefreshToken:
		return []string{"https://outlook.office.com/SMTP.Send", "offline_access"}
	case o.Provider == providerMicrosoft365:
		return []string{"https://outlook.office365.com/.default"}
	case o.Provider == providerGoogle:
		return []string{"https://mail.google.com/"}
	}
	return nil
}

// toJSON returns the JSON form; reveal writes literal secrets as they are,
// otherwise they are redacted.
func (o *OAuth2Config) toJSON(reveal bool) jsonObject { return oauth2Fields.jsonForm(o, reveal) }

// MarshalJSON writes the JSON form: the fields by their json tags, empty
// optional fields left out, TokenSource never, and literal secrets as
// "[redacted]" (Config.Save writes them as they are). It returns no error.
func (o OAuth2Config) MarshalJSON() ([]byte, error) { return json.Marshal(o.toJSON(false)) }

// UnmarshalJSON reads the JSON form. Unknown fields (with the closest known
// field suggested), a repeated field and values of the wrong type are
// errors naming the field, every problem at once; on error o is left
// unchanged. It does not validate: call Validate.
func (o *OAuth2Config) UnmarshalJSON(data []byte) error {
	return unmarshalStrict(o, data, (*OAuth2Config).decode)
}

// decode reads the JSON form into o, reporting every problem to p.
func (o *OAuth2Config) decode(data []byte, p *problems) { oauth2Fields.decode(o, data, p) }

// String describes the configuration in Go syntax without secrets: the
// fields that are set, and Name always; literal secrets are shown as
// [redacted], references as they are written, EndpointParams by their
// number, TokenSource as "(set in code)". It is safe for concurrent use.
func (o OAuth2Config) String() string { return oauth2Fields.describe(&o) }

// Format writes String for every verb and flag, so that no verb prints a
// secret.
func (o OAuth2Config) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, o.String()) }

// LogValue describes the configuration for log/slog without secrets: the
// fields String shows, by their JSON names.
func (o OAuth2Config) LogValue() slog.Value { return oauth2Fields.logValue(&o) }

// checkRefs reports the secrets of o that refs does not allow or that do
// not resolve. Only a valid form is checked (see validate).
func (o *OAuth2Config) checkRefs(p *problems, n fieldNames, refs *References) {
	oauth2Fields.checkSecretRefs(o, p, n, refs)
}
