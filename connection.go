package emailconn

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/hostname"
)

// TLSMode says how a connection protects its SMTP session.
type TLSMode string

// The TLS modes. Only TLSStartTLS and TLSImplicit guarantee an encrypted,
// verified session.
const (
	// TLSStartTLS connects in plaintext and requires the server to offer
	// STARTTLS and the upgrade to succeed; there is no fallback to
	// plaintext. Port 587 when the mail server names none.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit starts TLS before the first SMTP byte (SMTPS, RFC 8314).
	// Port 465 when the mail server names none.
	TLSImplicit TLSMode = "implicit"
	// TLSOpportunistic upgrades with STARTTLS when the server offers it and
	// continues in plaintext otherwise. Credentials are still only sent over
	// verified TLS (see Connection.AllowInsecureAuth). Port 25 when the
	// mail server names none.
	TLSOpportunistic TLSMode = "opportunistic"
	// TLSNone never uses TLS. Port 25 when the mail server names none.
	TLSNone TLSMode = "none"
)

// AuthType says how a connection authenticates.
type AuthType string

// The authentication types.
const (
	// AuthBasic authenticates with a user name and password (SASL PLAIN, or
	// LOGIN when the server does not offer PLAIN). With no user name, the
	// connection does not authenticate.
	AuthBasic AuthType = "basic"
	// AuthOAuth2 authenticates with an access token from a named OAuth2
	// configuration (SASL XOAUTH2 or OAUTHBEARER).
	AuthOAuth2 AuthType = "oauth2"
)

// Limits on timeouts: longer values are configuration mistakes.
const maxTimeout = 24 * time.Hour

// A Connection is an Email Connection: a named SMTP configuration through
// which a process sends its notifications. It is plain data; a Sender or a
// Registry uses it. Validate reports every problem at once.
//
// The zero value is not usable (MailServer is required). A Connection never
// prints, logs or marshals its password: see Secret.
type Connection struct {
	// Name identifies the connection in a Registry and in errors.
	// Zero means unnamed, which only a Connection used on its own may be.
	Name string

	// MailServer is the server as "host" or "host:port"; an IPv6 address
	// is written in brackets ("[2001:db8::1]:587"). Without a port, the
	// port is 465 for implicit TLS, 587 for STARTTLS and 25 otherwise.
	// Required.
	MailServer string

	// EnableTLS makes TLS mandatory: implicit TLS when the port is 465
	// (or TLSMode says so), STARTTLS otherwise, which the server must offer
	// and which must succeed. A session that cannot be secured fails with
	// ErrTLSUnavailable; nothing is sent in plaintext. False means no TLS
	// unless TLSMode says otherwise.
	EnableTLS bool

	// TLSMode is the finer choice of TLS behaviour. Zero means it follows
	// EnableTLS and the port: TLSImplicit for EnableTLS on port 465,
	// TLSStartTLS for EnableTLS on any other port, TLSNone without
	// EnableTLS. With EnableTLS set, TLSMode must be TLSStartTLS or
	// TLSImplicit.
	TLSMode TLSMode

	// ConnectTimeout bounds establishing a usable, secured session: DNS,
	// TCP connect, implicit TLS, the greeting, EHLO, STARTTLS and its
	// handshake, and the EHLO after it. Zero means no timeout (the caller's
	// context still applies).
	ConnectTimeout time.Duration

	// SendTimeout bounds every wait for the server once the session is
	// established: each reply, and each stretch of the message upload that
	// makes no progress. A large upload that keeps moving is never cut off.
	// Zero means no timeout (the caller's context still applies).
	SendTimeout time.Duration

	// AuthType selects Basic or OAuth2 authentication. Zero means AuthBasic.
	AuthType AuthType

	// Username is the user name for Basic auth, or the mailbox for OAuth2.
	// Zero means no authentication with Basic; OAuth2 requires it.
	Username string

	// Password is the Basic auth password: a literal, "env:NAME" or
	// "file:PATH" (read only where Options.References allows it). Zero
	// means none. Not allowed with OAuth2.
	Password Secret

	// OAuth2Config names the OAuth2 configuration that provides access
	// tokens. Required with AuthOAuth2, not allowed otherwise.
	OAuth2Config string

	// ActionsBaseURL is the Email Actions Base URL: when set, action links
	// in messages get their scheme, host and port from it. It must be an
	// absolute http or https URL with a host and nothing else. Zero means
	// action links are left as they are.
	ActionsBaseURL string

	// From is the sender address ("alerts@example.com" or
	// "Alerts <alerts@example.com>") used when a message names none. Zero
	// means messages must name their sender.
	From string

	// To lists the default recipients of notifications sent through this
	// connection, used when neither the message nor the activity node names
	// any. Zero means none.
	To []string

	// LocalName is the host name sent with EHLO: an RFC 5321 domain of
	// letters, digits and hyphens (servers such as Exim refuse an
	// underscore in EHLO). Zero means the machine's host name when it is
	// such a fully qualified domain name, else "localhost".
	LocalName string

	// CAFile is a PEM file of certificate authorities to trust instead of
	// the system roots, for private relays. It is read only under a
	// directory that Options.References lists, like a "file:" secret.
	// Zero means the system roots. Certificates are always verified;
	// there is no way to skip that.
	CAFile string

	// RootCAs are the certificate authorities to trust instead of the
	// system roots, given in code rather than as a file (a test server's
	// CA, a bundle embedded in the engine). It cannot be combined with
	// CAFile. It is not part of the JSON form: MarshalJSON and Config.Save
	// leave it out, so a connection written and read back trusts the
	// system roots again (and fails closed on a private CA). Treat the
	// pool as read-only once it is in a Connection; a Sender works with a
	// copy taken when it is made. Nil means CAFile, else the system roots.
	// Certificates are always verified; there is no way to skip that.
	RootCAs *x509.CertPool

	// AllowInsecureAuth allows sending credentials over a session that is
	// not protected by verified TLS. Zero means credentials are only sent
	// over verified TLS or to a server on a loopback address.
	AllowInsecureAuth bool
}

// Validate reports every problem with c at once, joined with errors.Join;
// each is a *FieldError naming the Go field. It checks syntax and
// contradictions and does no I/O: whether Password's reference and CAFile
// are allowed and resolve depends on the References rule, which NewSender,
// a Registry and TestConnection apply (Options.References). It does not
// check references to OAuth2 configurations, which a Registry checks.
func (c *Connection) Validate() error {
	p := problems{}
	c.validate(&p, goNames)
	return p.err()
}

// field names of a Connection, in Go and in the JSON configuration.
type fieldNames struct {
	name, mailServer, enableTLS, tlsMode, connectTimeout, sendTimeout,
	authType, username, password, oauth2Config, actionsBaseURL, from, to,
	localName, caFile, allowInsecureAuth string
}

var goNames = fieldNames{
	name: "Name", mailServer: "MailServer", enableTLS: "EnableTLS", tlsMode: "TLSMode",
	connectTimeout: "ConnectTimeout", sendTimeout: "SendTimeout", authType: "AuthType",
	username: "Username", password: "Password", oauth2Config: "OAuth2Config",
	actionsBaseURL: "ActionsBaseURL", from: "From", to: "To", localName: "LocalName",
	caFile: "CAFile", allowInsecureAuth: "AllowInsecureAuth",
}

var jsonNames = fieldNames{
	name: "name", mailServer: "mailServer", enableTLS: "enableTLS", tlsMode: "tlsMode",
	connectTimeout: "smtpConnectionTimeout", sendTimeout: "smtpTimeout", authType: "authType",
	username: "userName", password: "password", oauth2Config: "oauth2Configuration",
	actionsBaseURL: "emailActionsBaseURL", from: "from", to: "to", localName: "localName",
	caFile: "caFile", allowInsecureAuth: "allowInsecureAuth",
}

func (c *Connection) validate(p *problems, n fieldNames) {
	if c.Name != "" {
		if msg := checkName(c.Name); msg != "" {
			p.add(n.name, "%s", msg)
		}
	}

	host, port, hostErr := splitMailServer(c.MailServer)
	if hostErr != "" {
		p.add(n.mailServer, "%s", hostErr)
	}

	switch c.TLSMode {
	case "", TLSStartTLS, TLSImplicit:
	case TLSOpportunistic, TLSNone:
		if c.EnableTLS {
			p.add(n.tlsMode, "%q contradicts %s (TLS is mandatory): use %q or %q, or turn %s off",
				c.TLSMode, n.enableTLS, TLSStartTLS, TLSImplicit, n.enableTLS)
		}
	default:
		p.add(n.tlsMode, "%q is not a TLS mode (use %q, %q, %q or %q)",
			c.TLSMode, TLSStartTLS, TLSImplicit, TLSOpportunistic, TLSNone)
	}

	checkTimeout(p, n.connectTimeout, c.ConnectTimeout)
	checkTimeout(p, n.sendTimeout, c.SendTimeout)

	if strings.ContainsAny(c.Username, "\r\n\x00") {
		p.add(n.username, "must not contain CR, LF or NUL")
	}
	switch c.AuthType {
	case "", AuthBasic:
		if c.OAuth2Config != "" {
			p.add(n.oauth2Config, "is set but %s is %q: set %s to %q or clear %s",
				n.authType, AuthBasic, n.authType, AuthOAuth2, n.oauth2Config)
		}
		if c.Password != "" && c.Username == "" {
			p.add(n.password, "is set but %s is empty", n.username)
		}
	case AuthOAuth2:
		if c.OAuth2Config == "" {
			p.add(n.oauth2Config, "is required when %s is %q", n.authType, AuthOAuth2)
		}
		if c.Password != "" {
			p.add(n.password, "is not used with %s %q (the OAuth2 configuration provides the token): clear it",
				n.authType, AuthOAuth2)
		}
		if c.Username == "" {
			p.add(n.username, "is required when %s is %q (the mailbox the token is for)", n.authType, AuthOAuth2)
		}
	default:
		p.add(n.authType, "%q is not an auth type (use %q or %q)", c.AuthType, AuthBasic, AuthOAuth2)
	}
	if c.Password != "" {
		if msg := c.Password.checkForm(); msg != "" {
			p.add(n.password, "%s", msg)
		}
	}

	if c.usesCredentials() && !c.AllowInsecureAuth && hostErr == "" &&
		c.tlsMode(port) == TLSNone && !isLoopbackHost(host) {
		p.add(n.tlsMode, "TLS is off but credentials are configured: they would be sent in plaintext; turn %s on, or set %s if the network is trusted",
			n.enableTLS, n.allowInsecureAuth)
	}

	if c.ActionsBaseURL != "" {
		if msg, ok := validateActionsBaseURL(c.ActionsBaseURL); !ok {
			p.add(n.actionsBaseURL, "%s", msg)
		}
	}
	if c.From != "" {
		if msg := checkAddress(c.From); msg != "" {
			p.add(n.from, "%s", msg)
		}
	}
	for i, to := range c.To {
		if msg := checkAddress(to); msg != "" {
			p.add(fmt.Sprintf("%s[%d]", n.to, i), "%s", msg)
		}
	}
	if c.CAFile != "" && c.RootCAs != nil {
		p.add(n.caFile, "cannot be combined with RootCAs: trust one or the other")
	}
	if c.LocalName != "" {
		if msg := checkEHLOName(c.LocalName); msg != "" {
			p.add(n.localName, "%s", msg)
		}
	}
}

// checkRefs reports the references of c — its Password and CAFile — that
// refs does not allow or that do not resolve. Only a valid form is checked
// (see validate).
func (c *Connection) checkRefs(p *problems, n fieldNames, refs *References) {
	if c.Password != "" && c.Password.checkForm() == "" {
		if _, msg := c.Password.reveal(refs); msg != "" {
			p.add(n.password, "%s", msg)
		}
	}
	if c.CAFile != "" {
		if _, msg := refs.loadCAFile(c.CAFile); msg != "" {
			p.add(n.caFile, "%s", msg)
		}
	}
}

func checkTimeout(p *problems, field string, d time.Duration) {
	switch {
	case d < 0:
		p.add(field, "must not be negative")
	case d > maxTimeout:
		p.add(field, "must be at most %d seconds (one day)", int(maxTimeout/time.Second))
	}
}

func checkName(name string) string {
	switch {
	case strings.TrimSpace(name) != name:
		return "must not start or end with spaces"
	case len(name) > 200:
		return "must be at most 200 bytes"
	case !utf8.ValidString(name):
		return "must be valid UTF-8"
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

// checkAddress checks a configured From or To address with the composer's
// validator, the one the Sender uses on every message (compose.ParseAddress),
// so that a connection that validates can send.
func checkAddress(s string) string {
	if _, err := compose.ParseAddress(s); err != nil {
		return err.Error()
	}
	return ""
}

// splitMailServer parses "host", "host:port" or "[v6]:port" and returns the
// host (without brackets) and the port (0 when absent), or a problem.
func splitMailServer(s string) (host string, port int, problem string) {
	switch {
	case s == "":
		return "", 0, "is required"
	case strings.Contains(s, "://"):
		return "", 0, fmt.Sprintf("%q must be host or host:port, not a URL", s)
	case strings.TrimSpace(s) != s || strings.ContainsAny(s, " \t\r\n"):
		return "", 0, fmt.Sprintf("%q must not contain spaces", s)
	}
	hostPart, portPart := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Sprintf("%q has an unclosed '['", s)
		}
		hostPart, portPart = s[1:end], s[end+1:]
		if portPart != "" {
			if portPart[0] != ':' {
				return "", 0, fmt.Sprintf("%q has text after ']' that is not a port", s)
			}
			portPart = portPart[1:]
			if portPart == "" {
				return "", 0, fmt.Sprintf("%q has an empty port", s)
			}
		}
		addr, err := netip.ParseAddr(hostPart)
		if err != nil || !addr.Is6() {
			return "", 0, fmt.Sprintf("%q: only IPv6 addresses go in brackets", s)
		}
	} else {
		if strings.Count(s, ":") > 1 {
			return "", 0, fmt.Sprintf("%q: write an IPv6 address in brackets, as [2001:db8::1]:587", s)
		}
		if i := strings.IndexByte(s, ':'); i >= 0 {
			hostPart, portPart = s[:i], s[i+1:]
			if portPart == "" {
				return "", 0, fmt.Sprintf("%q has an empty port", s)
			}
		}
		if hostPart == "" {
			return "", 0, fmt.Sprintf("%q has no host", s)
		}
		if _, err := netip.ParseAddr(hostPart); err != nil {
			if msg := checkHostname(hostPart); msg != "" {
				return "", 0, fmt.Sprintf("%q: host %s", s, msg)
			}
		}
	}
	if portPart != "" {
		n, err := strconv.Atoi(portPart)
		if err != nil || n < 1 || n > 65535 || portPart[0] == '+' || portPart[0] == '0' {
			return "", 0, fmt.Sprintf("%q: port %q must be a number from 1 to 65535", s, portPart)
		}
		port = n
	}
	return strings.ToLower(hostPart), port, ""
}

// checkHostname checks the host name of a mail server or an OAuth2 tenant
// domain with the shared validator (internal/hostname): underscores and
// one trailing dot are allowed, as a resolver allows them.
func checkHostname(h string) string {
	return hostname.Check(h, hostname.Rules{Underscore: true, TrailingDot: true})
}

// checkEHLOName checks a LocalName, sent in EHLO, with the shared
// validator's strict rules: an RFC 5321 domain, without the underscore that
// servers such as Exim refuse in EHLO.
func checkEHLOName(h string) string {
	return hostname.Check(h, hostname.Rules{})
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// usesCredentials reports whether the connection authenticates.
func (c *Connection) usesCredentials() bool {
	return c.authType() == AuthOAuth2 || c.Username != ""
}

func (c *Connection) authType() AuthType {
	if c.AuthType == "" {
		return AuthBasic
	}
	return c.AuthType
}

// tlsMode returns the effective TLS mode for the given explicit port (0 when
// the mail server names none).
func (c *Connection) tlsMode(port int) TLSMode {
	if c.TLSMode != "" {
		return c.TLSMode
	}
	switch {
	case c.EnableTLS && port == 465:
		return TLSImplicit
	case c.EnableTLS:
		return TLSStartTLS
	}
	return TLSNone
}

// endpoint is the effective address of a connection's server.
type endpoint struct {
	host string // without brackets
	port int
	mode TLSMode
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// endpoint returns the effective host, port and TLS mode. c must be valid.
func (c *Connection) endpoint() endpoint {
	host, port, _ := splitMailServer(c.MailServer)
	mode := c.tlsMode(port)
	if port == 0 {
		switch mode {
		case TLSImplicit:
			port = 465
		case TLSStartTLS:
			port = 587
		default:
			port = 25
		}
	}
	return endpoint{host: host, port: port, mode: mode}
}

func (c *Connection) localName() string {
	if c.LocalName != "" {
		return c.LocalName
	}
	return defaultLocalName
}

var defaultLocalName = func() string {
	h, err := os.Hostname()
	if err != nil || !strings.Contains(h, ".") || checkEHLOName(h) != "" {
		return "localhost"
	}
	return h
}()

// String describes the connection without secrets, for logs and errors.
func (c Connection) String() string {
	var b strings.Builder
	b.WriteString("emailconn.Connection{")
	if c.Name != "" {
		fmt.Fprintf(&b, "Name: %q, ", c.Name)
	}
	fmt.Fprintf(&b, "MailServer: %q", c.MailServer)
	if c.EnableTLS {
		b.WriteString(", EnableTLS: true")
	}
	if c.TLSMode != "" {
		fmt.Fprintf(&b, ", TLSMode: %q", c.TLSMode)
	}
	if c.ConnectTimeout != 0 {
		fmt.Fprintf(&b, ", ConnectTimeout: %v", c.ConnectTimeout)
	}
	if c.SendTimeout != 0 {
		fmt.Fprintf(&b, ", SendTimeout: %v", c.SendTimeout)
	}
	fmt.Fprintf(&b, ", AuthType: %q", c.authType())
	if c.Username != "" {
		fmt.Fprintf(&b, ", Username: %q", c.Username)
	}
	if c.Password != "" {
		fmt.Fprintf(&b, ", Password: %s", c.Password.String())
	}
	if c.OAuth2Config != "" {
		fmt.Fprintf(&b, ", OAuth2Config: %q", c.OAuth2Config)
	}
	if c.ActionsBaseURL != "" {
		fmt.Fprintf(&b, ", ActionsBaseURL: %q", c.ActionsBaseURL)
	}
	if c.From != "" {
		fmt.Fprintf(&b, ", From: %q", c.From)
	}
	if len(c.To) > 0 {
		fmt.Fprintf(&b, ", To: %q", c.To)
	}
	if c.LocalName != "" {
		fmt.Fprintf(&b, ", LocalName: %q", c.LocalName)
	}
	if c.CAFile != "" {
		fmt.Fprintf(&b, ", CAFile: %q", c.CAFile)
	}
	if c.RootCAs != nil {
		b.WriteString(", RootCAs: (set in code)")
	}
	if c.AllowInsecureAuth {
		b.WriteString(", AllowInsecureAuth: true")
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so that %#v does not print the password either.
func (c Connection) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb prints the password.
func (c Connection) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue describes the connection for log/slog without secrets.
func (c Connection) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("name", c.Name),
		slog.String("mailServer", c.MailServer),
		slog.Bool("enableTLS", c.EnableTLS),
		slog.String("authType", string(c.authType())),
	}
	if c.Username != "" {
		attrs = append(attrs, slog.String("userName", c.Username))
	}
	if c.Password != "" {
		attrs = append(attrs, slog.String("password", c.Password.String()))
	}
	if c.OAuth2Config != "" {
		attrs = append(attrs, slog.String("oauth2Configuration", c.OAuth2Config))
	}
	return slog.GroupValue(attrs...)
}

// connectionJSON is the JSON form of a Connection (DESIGN.md): the product's
// labels as field names, timeouts in whole seconds.
type connectionJSON struct {
	Name              string   `json:"name,omitempty"`
	MailServer        string   `json:"mailServer"`
	EnableTLS         bool     `json:"enableTLS"`
	TLSMode           TLSMode  `json:"tlsMode,omitempty"`
	ConnectTimeout    int64    `json:"smtpConnectionTimeout,omitempty"`
	SendTimeout       int64    `json:"smtpTimeout,omitempty"`
	AuthType          AuthType `json:"authType,omitempty"`
	Username          string   `json:"userName,omitempty"`
	Password          string   `json:"password,omitempty"`
	OAuth2Config      string   `json:"oauth2Configuration,omitempty"`
	ActionsBaseURL    string   `json:"emailActionsBaseURL,omitempty"`
	From              string   `json:"from,omitempty"`
	To                []string `json:"to,omitempty"`
	LocalName         string   `json:"localName,omitempty"`
	CAFile            string   `json:"caFile,omitempty"`
	AllowInsecureAuth bool     `json:"allowInsecureAuth,omitempty"`
}

// toJSON returns the JSON form; reveal writes literal secrets as they are,
// otherwise they are redacted.
func (c *Connection) toJSON(reveal bool) connectionJSON {
	pw := c.Password.String()
	if reveal {
		pw = string(c.Password)
	}
	return connectionJSON{
		Name: c.Name, MailServer: c.MailServer, EnableTLS: c.EnableTLS, TLSMode: c.TLSMode,
		ConnectTimeout: seconds(c.ConnectTimeout), SendTimeout: seconds(c.SendTimeout),
		AuthType: c.AuthType, Username: c.Username, Password: pw, OAuth2Config: c.OAuth2Config,
		ActionsBaseURL: c.ActionsBaseURL, From: c.From, To: c.To, LocalName: c.LocalName,
		CAFile: c.CAFile, AllowInsecureAuth: c.AllowInsecureAuth,
	}
}

// seconds converts a timeout to whole seconds, rounding a fraction up so
// that a short timeout never becomes "none".
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// MarshalJSON writes the JSON form of the configuration file, with a literal
// password written as "[redacted]". Config.Save writes it as it is.
func (c Connection) MarshalJSON() ([]byte, error) { return json.Marshal(c.toJSON(false)) }

// UnmarshalJSON reads the JSON form of the configuration file. Unknown
// fields, values of the wrong type, fractional or negative timeouts are
// errors naming the field. It does not validate: call Validate.
func (c *Connection) UnmarshalJSON(data []byte) error {
	return unmarshalStrict(c, data, (*Connection).decode)
}

// decode reads the JSON form into c, reporting every problem to p.
func (c *Connection) decode(data []byte, p *problems) {
	fields, ok := decodeObject(data, p)
	if !ok {
		return
	}
	for _, f := range fields {
		switch f.key {
		case "name":
			decodeString(p, f, &c.Name)
		case "mailServer":
			decodeString(p, f, &c.MailServer)
		case "enableTLS":
			decodeBool(p, f, &c.EnableTLS)
		case "tlsMode":
			decodeString(p, f, (*string)(&c.TLSMode))
		case "smtpConnectionTimeout":
			decodeSeconds(p, f, &c.ConnectTimeout)
		case "smtpTimeout":
			decodeSeconds(p, f, &c.SendTimeout)
		case "authType":
			decodeString(p, f, (*string)(&c.AuthType))
		case "userName":
			decodeString(p, f, &c.Username)
		case "password":
			decodeString(p, f, (*string)(&c.Password))
		case "oauth2Configuration":
			decodeString(p, f, &c.OAuth2Config)
		case "emailActionsBaseURL":
			decodeString(p, f, &c.ActionsBaseURL)
		case "from":
			decodeString(p, f, &c.From)
		case "to":
			decodeStrings(p, f, &c.To)
		case "localName":
			decodeString(p, f, &c.LocalName)
		case "caFile":
			decodeString(p, f, &c.CAFile)
		case "allowInsecureAuth":
			decodeBool(p, f, &c.AllowInsecureAuth)
		default:
			unknownField(p, f.key, connectionKeys)
		}
	}
}

// unmarshalStrict decodes data with decode into a fresh value and stores it
// in dst only when there was no problem.
func unmarshalStrict[T any](dst *T, data []byte, decode func(*T, []byte, *problems)) error {
	var p problems
	var out T
	decode(&out, data, &p)
	if err := p.err(); err != nil {
		return err
	}
	*dst = out
	return nil
}

// jsonField is one member of a JSON object, in document order.
type jsonField struct {
	key string
	raw json.RawMessage
}

// decodeObject splits a JSON object into its members, in order, reporting
// invalid JSON (data after the object included, with its line and column),
// a value that is not an object, and a key that appears twice (readers
// disagree on which one wins, so "enableTLS":true,"enableTLS":false must
// not load either way).
func decodeObject(data []byte, p *problems) ([]jsonField, bool) {
	if err := json.Unmarshal(data, new(json.RawMessage)); err != nil {
		// Unmarshal checks the whole document first, with offsets from its
		// start.
		p.add("", "is not valid JSON: %s", jsonProblem(data, err))
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		p.add("", "is not valid JSON: %s", jsonProblem(data, err))
		return nil, false
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		p.add("", "must be a JSON object")
		return nil, false
	}
	var fields []jsonField
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			p.add("", "is not valid JSON: %s", jsonProblem(data, err))
			return nil, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			p.add(key, "is not valid JSON: %s", jsonProblem(data, err))
			return nil, false
		}
		if seen[key] {
			p.add(key, "appears more than once: keep one")
			continue
		}
		seen[key] = true
		fields = append(fields, jsonField{key: key, raw: raw})
	}
	return fields, true
}

// jsonProblem describes a decoding error, with the line and column of a
// syntax error.
func jsonProblem(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(len(data)) {
			return "it ends before the value is complete"
		}
		return fmt.Sprintf("%v (at %s)", se, position(data, se.Offset-1)) // Offset counts the bad byte
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it ends before the value is complete"
	}
	return err.Error()
}

// position returns "line L, column C" of a byte offset into data; columns
// count bytes from 1.
func position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

// unknownField reports a member no field has, suggesting the known field
// closest to it.
func unknownField(p *problems, key string, known []string) {
	if p.full() {
		p.dropped++
		return
	}
	if c := closest(key, known); c != "" {
		p.add(key, "unknown field (did you mean %q?)", c)
		return
	}
	p.add(key, "unknown field")
}

// jsonKeys returns the member names of a JSON form struct, from its tags.
func jsonKeys(v any) []string {
	t := reflect.TypeOf(v)
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

var connectionKeys = jsonKeys(connectionJSON{})

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

func decodeString(p *problems, f jsonField, dst *string) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		p.add(f.key, "must be a string")
	}
}

func decodeBool(p *problems, f jsonField, dst *bool) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		p.add(f.key, "must be true or false")
	}
}

// decodeStringMap reads an object of string values, such as processes or
// endpointParams, refusing a repeated key; what describes the object for
// the problem of a value that is not one.
func decodeStringMap(p *problems, f jsonField, dst *map[string]string, what string) {
	if isNull(f.raw) {
		return
	}
	if len(f.raw) == 0 || f.raw[0] != '{' {
		p.add(f.key, "must be %s", what)
		return
	}
	var sub problems
	fields, _ := decodeObject(f.raw, &sub)
	for _, e := range sub.errs {
		fe := e.(*FieldError)
		field := f.key
		if fe.Field != "configuration" {
			field += "[" + jsonQuote(fe.Field) + "]"
		}
		p.add(field, "%s", fe.Problem)
	}
	m := make(map[string]string, len(fields))
	for _, mf := range fields {
		var v string
		if err := json.Unmarshal(mf.raw, &v); err != nil {
			p.add(f.key, "must be %s", what)
			return
		}
		m[mf.key] = v
	}
	if len(sub.errs) == 0 {
		*dst = m
	}
}

func decodeStrings(p *problems, f jsonField, dst *[]string) {
	if isNull(f.raw) {
		return
	}
	if err := json.Unmarshal(f.raw, dst); err != nil {
		var one string
		if json.Unmarshal(f.raw, &one) == nil {
			*dst = []string{one}
			return
		}
		p.add(f.key, "must be a list of strings")
	}
}

// decodeSeconds reads a timeout: a whole, non-negative number of seconds,
// at most one day; absent, null or 0 mean no timeout.
func decodeSeconds(p *problems, f jsonField, dst *time.Duration) {
	if isNull(f.raw) {
		return
	}
	if len(f.raw) > 0 && f.raw[0] == '"' {
		p.add(f.key, "must be a number of seconds, not a string")
		return
	}
	var n json.Number
	dec := json.NewDecoder(strings.NewReader(string(f.raw)))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		p.add(f.key, "must be a number of seconds")
		return
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	switch {
	case err != nil && strings.ContainsAny(string(n), ".eE"):
		if fv, ferr := strconv.ParseFloat(string(n), 64); ferr == nil && fv < 0 {
			p.add(f.key, "must not be negative")
		} else {
			p.add(f.key, "must be a whole number of seconds")
		}
	case err != nil, v > int64(maxTimeout/time.Second):
		p.add(f.key, "must be at most %d seconds (one day)", int(maxTimeout/time.Second))
	case v < 0:
		p.add(f.key, "must not be negative")
	default:
		*dst = time.Duration(v) * time.Second
	}
}
