package emailconn

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/hostname"
	"github.com/emailconn/emailconn/internal/provider"
)

// The values of Connection.TLSMode and Connection.AuthType; the fields'
// comments say what each means.
const (
	tlsStartTLS      = "starttls"
	tlsImplicit      = "implicit"
	tlsOpportunistic = "opportunistic"
	tlsNone          = "none"

	authBasic  = "basic"
	authOAuth2 = "oauth2"
)

// Limits on timeouts: longer values are configuration mistakes.
const maxTimeout = 24 * time.Hour

// A Connection is an Email Connection: a named SMTP configuration through
// which a process sends its notifications. It is plain data; a Sender or a
// Registry uses it. Validate reports every problem at once.
//
// Each field's comment starts with its label on the product's Email
// Connection page (Mail Server, Enable TLS, SMTP Connection Timeout, SMTP
// Timeout, Auth Type, User Name, Password, OAuth2 Configuration, Email
// Actions Base URL); the fields the page does not show say "emailconn's
// own". The json tag is the field's name in the configuration file (see
// LoadConfig).
//
// The zero value is not usable (MailServer is required). A Connection never
// prints, logs or marshals its password: see Secret. A Connection is safe
// for concurrent use as long as nobody modifies it.
type Connection struct {
	// Name: the Email Connection's name, which processes select it by and
	// which a Registry and errors show. Zero means unnamed, which only a
	// Connection used on its own may be.
	Name string `json:"name,omitempty"`

	// Mail Server: the server as "host" or "host:port"; an IPv6 address
	// is written in brackets ("[2001:db8::1]:587"). Without a port, the
	// port is 465 for implicit TLS, 587 for STARTTLS and 25 otherwise.
	// Zero is invalid: the mail server is required.
	MailServer string `json:"mailServer"`

	// Enable TLS: when set, TLS is mandatory — implicit TLS when the port
	// is 465 (or TLSMode says so), STARTTLS otherwise, which the server
	// must offer and which must succeed. A session that cannot be secured
	// fails with ErrTLSUnavailable; nothing is sent in plaintext. False
	// means no TLS unless TLSMode says otherwise.
	EnableTLS bool `json:"enableTLS"`

	// TLS mode (emailconn's own, beside Enable TLS): the finer choice of
	// TLS behaviour, one of
	//   - "starttls": connect in plaintext and require the server to offer
	//     STARTTLS and the upgrade to succeed, with no fallback to
	//     plaintext; port 587 when the mail server names none;
	//   - "implicit": TLS before the first SMTP byte (SMTPS, RFC 8314);
	//     port 465 when the mail server names none;
	//   - "opportunistic": upgrade with STARTTLS when the server offers it
	//     and continue in plaintext otherwise; credentials are still only
	//     sent over verified TLS (see AllowInsecureAuth); port 25 when the
	//     mail server names none;
	//   - "none": never TLS; port 25 when the mail server names none.
	// Only "starttls" and "implicit" guarantee an encrypted, verified
	// session, and with EnableTLS set it must be one of them. Zero means it
	// follows EnableTLS and the port: "implicit" for EnableTLS on port 465,
	// "starttls" for EnableTLS on any other port, "none" without EnableTLS.
	// Any other value is invalid (Validate says so).
	TLSMode string `json:"tlsMode,omitempty"`

	// SMTP Connection Timeout: the bound on establishing a usable, secured
	// session (DNS, TCP connect, implicit TLS, the greeting, EHLO, STARTTLS
	// and its handshake, and the EHLO after it). Whole seconds in the
	// configuration file, at most one day. Zero means no timeout (the
	// caller's context still applies).
	ConnectTimeout time.Duration `json:"smtpConnectionTimeout,omitempty"`

	// SMTP Timeout: the bound on every wait for the server once the
	// session is established (each reply, and each stretch of the message
	// upload that makes no progress). A large upload that keeps moving is
	// never cut off. Whole seconds in the configuration file, at most one
	// day. Zero means no timeout (the caller's context still applies).
	SendTimeout time.Duration `json:"smtpTimeout,omitempty"`

	// Auth Type: "basic", a user name and password (SASL PLAIN, or LOGIN
	// when the server does not offer PLAIN; with no user name the
	// connection does not authenticate), or "oauth2", an access token from
	// OAuth2Config (SASL XOAUTH2 or OAUTHBEARER). Zero means "basic"; any
	// other value is invalid.
	AuthType string `json:"authType,omitempty"`

	// User Name: the user name for Basic auth, or the mailbox the token is
	// for with OAuth2. Zero means no authentication with Basic; OAuth2
	// requires it.
	Username string `json:"userName,omitempty"`

	// Password: the Basic auth password, a literal, "env:NAME" or
	// "file:PATH" (read only where Options.References allows it). Not
	// allowed with OAuth2. Zero means none.
	Password Secret `json:"password,omitempty"`

	// OAuth2 Configuration: the name of the OAuth2Config that provides
	// access tokens. Required with "oauth2", not allowed otherwise. Zero
	// means none.
	OAuth2Config string `json:"oauth2Configuration,omitempty"`

	// Email Actions Base URL: action links in messages get their scheme,
	// host and port from it. It must be an absolute http or https URL with
	// a host and nothing else. Zero means action links are left as they
	// are.
	ActionsBaseURL string `json:"emailActionsBaseURL,omitempty"`

	// From (emailconn's own): the sender address ("alerts@example.com" or
	// "Alerts <alerts@example.com>") used when a message names none. Zero
	// means messages must name their sender.
	From string `json:"from,omitempty"`

	// To (emailconn's own): the default recipients of notifications sent
	// through this connection, used when neither the message nor the
	// activity node names any. Zero means none.
	To []string `json:"to,omitempty"`

	// Local name (emailconn's own): the host name sent with EHLO, an RFC
	// 5321 domain of letters, digits and hyphens (servers such as Exim
	// refuse an underscore in EHLO). Zero means the machine's host name
	// when it is such a fully qualified domain name, else "localhost".
	LocalName string `json:"localName,omitempty"`

	// CA file (emailconn's own): a PEM file of certificate authorities to
	// trust instead of the system roots, for private relays. It is read
	// only under a directory that Options.References lists, like a "file:"
	// secret. Certificates are always verified; there is no way to skip
	// that. Zero means the system roots.
	CAFile string `json:"caFile,omitempty"`

	// Root CAs (emailconn's own, set in code): the certificate authorities
	// to trust instead of the system roots, given in code rather than as a
	// file (a test server's CA, a bundle embedded in the engine). It cannot
	// be combined with CAFile. It is not part of the JSON form: MarshalJSON
	// and Config.Save leave it out, so a connection written and read back
	// trusts the system roots again (and fails closed on a private CA).
	// Treat the pool as read-only once it is in a Connection; a Sender
	// works with a copy taken when it is made. Certificates are always
	// verified; there is no way to skip that. Nil means CAFile, else the
	// system roots.
	RootCAs *x509.CertPool `json:"-"`

	// Allow insecure auth (emailconn's own): credentials may be sent over
	// a session that is not protected by verified TLS. Zero means
	// credentials are only sent over verified TLS or to a server on a
	// loopback address.
	AllowInsecureAuth bool `json:"allowInsecureAuth,omitempty"`

	// Provider (emailconn's own): the mail provider behind MailServer,
	// "microsoft365", "google" or "ses", whose documented
	// submission limits the connection keeps (see the README's Provider
	// limits; each limit field below that is set wins). Zero means no
	// provider: only the limits set below apply.
	Provider string `json:"provider,omitempty"`

	// Max sessions (emailconn's own): the SMTP sessions this connection
	// holds open at once; further sends wait for a free one. Zero means
	// the provider's limit (Microsoft 365: 3), else Options.MaxSessions.
	// Negative is invalid.
	MaxSessions int `json:"maxSessions,omitempty"`

	// Messages per minute (emailconn's own): at most this many mail
	// transactions start in any 60 seconds; further sends wait for their
	// turn within their context. Zero means the provider's limit
	// (Microsoft 365: 30), else no limit. Negative is invalid.
	MessagesPerMinute int `json:"messagesPerMinute,omitempty"`

	// Max recipients per message (emailconn's own): a message to more
	// recipients is sent in several transactions of the same message (same
	// Message-ID), never twice to a recipient. Zero means the provider's
	// limit (Microsoft 365: 500, Google: 100, SES: 50), else no limit; a
	// server's 452 "too many recipients" splits the message either way.
	// Negative is invalid.
	MaxRecipientsPerMessage int `json:"maxRecipientsPerMessage,omitempty"`

	// Messages per day (emailconn's own): at most this many messages in
	// any 24 hours from this process; beyond it sends fail at once with
	// ErrThrottled and the time room frees. Zero means the provider's
	// limit (Google: 2,000), else no limit. Negative is invalid.
	MessagesPerDay int `json:"messagesPerDay,omitempty"`

	// Recipients per day (emailconn's own): like MessagesPerDay, counting
	// recipients. Zero means the provider's limit (Microsoft 365 and
	// Google: 10,000), else no limit. Negative is invalid.
	RecipientsPerDay int `json:"recipientsPerDay,omitempty"`

	// Disable pipelining (emailconn's own): send each command of a mail
	// transaction after the reply to the previous one, as if the server
	// did not offer PIPELINING (RFC 2920), for a server that offers it
	// and then misbehaves. It turns CHUNKING off too: BDAT is used only
	// in a pipelined transaction. Zero means a transaction's MAIL, RCPT
	// and DATA (or BDAT) go out in one write when the server offers
	// PIPELINING (see the README's Round trips).
	DisablePipelining bool `json:"disablePipelining,omitempty"`

	// Disable chunking (emailconn's own): send the message with DATA even
	// when the server offers CHUNKING (RFC 3030), for a server that offers
	// it and then misbehaves. Zero means a pipelined transaction sends the
	// message as BDAT when the server offers CHUNKING.
	DisableChunking bool `json:"disableChunking,omitempty"`
}

// connectionFields is the field table of Connection.
var connectionFields = newFieldTable[Connection]("emailconn.Connection")

// Validate reports every problem with c at once, joined with errors.Join;
// each is a *FieldError naming the Go field (see FieldError.Field). It
// checks syntax and contradictions and does no I/O: whether Password's
// reference and CAFile are allowed and resolve depends on the References
// rule, which NewSender, a Registry and TestConnection apply
// (Options.References). It does not check references to OAuth2
// configurations, which a Registry checks. It is safe for concurrent use.
func (c *Connection) Validate() error {
	p := problems{}
	c.validate(&p, goNames)
	return p.err()
}

// How problems name a Connection's fields: by Go name, or by JSON name in
// a Config.
var (
	goNames   fieldNames
	jsonNames = connectionFields.jsonNames
)

func (c *Connection) validate(p *problems, n fieldNames) {
	if c.Name != "" {
		if msg := checkName(c.Name); msg != "" {
			p.add(n.of("Name"), "%s", msg)
		}
	}
	host, port, hostErr := splitMailServer(c.MailServer)
	if hostErr != "" {
		p.add(n.of("MailServer"), "%s", hostErr)
	}
	c.validateTLS(p, n)
	checkTimeout(p, n.of("ConnectTimeout"), c.ConnectTimeout)
	checkTimeout(p, n.of("SendTimeout"), c.SendTimeout)
	c.validateAuth(p, n)
	if c.usesCredentials() && !c.AllowInsecureAuth && hostErr == "" &&
		c.tlsMode(port) == tlsNone && !isLoopbackHost(host) {
		p.add(n.of("TLSMode"), "TLS is off but credentials are configured: they would be sent in plaintext; turn %s on, or set %s if the network is trusted",
			n.of("EnableTLS"), n.of("AllowInsecureAuth"))
	}
	c.validateAddresses(p, n)
	if c.CAFile != "" && c.RootCAs != nil {
		p.add(n.of("CAFile"), "cannot be combined with RootCAs: trust one or the other")
	}
	if c.LocalName != "" {
		if msg := checkEHLOName(c.LocalName); msg != "" {
			p.add(n.of("LocalName"), "%s", msg)
		}
	}
	c.validateLimits(p, n)
}

// validateLimits checks Provider and the limit fields.
func (c *Connection) validateLimits(p *problems, n fieldNames) {
	if c.Provider != "" && !provider.Known(string(c.Provider)) {
		p.add(n.of("Provider"), "%q is not a known provider (use %q, %q or %q, or leave it empty)",
			c.Provider, providerMicrosoft365, providerGoogle, providerSES)
	}
	for _, l := range [...]struct {
		name string
		v    int
	}{{"MaxSessions", c.MaxSessions}, {"MessagesPerMinute", c.MessagesPerMinute},
		{"MaxRecipientsPerMessage", c.MaxRecipientsPerMessage}, {"MessagesPerDay", c.MessagesPerDay},
		{"RecipientsPerDay", c.RecipientsPerDay}} {
		if l.v < 0 {
			p.add(n.of(l.name), "must not be negative (zero means the provider's limit, else none)")
		}
	}
}

// limits returns the limits in force: the provider's defaults with every
// limit field that is set instead. MaxSessions stays zero when neither
// sets it (the Options decide).
func (c *Connection) limits() provider.Limits {
	l, _ := provider.Defaults(string(c.Provider))
	return l.Override(provider.Limits{MaxSessions: c.MaxSessions, MessagesPerMinute: c.MessagesPerMinute,
		MaxRecipientsPerMessage: c.MaxRecipientsPerMessage, MessagesPerDay: c.MessagesPerDay,
		RecipientsPerDay: c.RecipientsPerDay})
}

// validateTLS checks TLSMode against EnableTLS.
func (c *Connection) validateTLS(p *problems, n fieldNames) {
	switch c.TLSMode {
	case "", tlsStartTLS, tlsImplicit:
	case tlsOpportunistic, tlsNone:
		if c.EnableTLS {
			p.add(n.of("TLSMode"), "%q contradicts %s (TLS is mandatory): use %q or %q, or turn %s off",
				c.TLSMode, n.of("EnableTLS"), tlsStartTLS, tlsImplicit, n.of("EnableTLS"))
		}
	default:
		p.add(n.of("TLSMode"), "%q is not a TLS mode (use %q, %q, %q or %q)",
			c.TLSMode, tlsStartTLS, tlsImplicit, tlsOpportunistic, tlsNone)
	}
}

// validateAuth checks AuthType, Username, Password and OAuth2Config
// against each other, and the form of Password.
func (c *Connection) validateAuth(p *problems, n fieldNames) {
	authType, username, password, oauth2Config := n.of("AuthType"), n.of("Username"), n.of("Password"), n.of("OAuth2Config")
	if strings.ContainsAny(c.Username, "\r\n\x00") {
		p.add(username, "must not contain CR, LF or NUL")
	}
	switch c.AuthType {
	case "", authBasic:
		if c.OAuth2Config != "" {
			p.add(oauth2Config, "is set but %s is %q: set %s to %q or clear %s",
				authType, authBasic, authType, authOAuth2, oauth2Config)
		}
		if c.Password != "" && c.Username == "" {
			p.add(password, "is set but %s is empty", username)
		}
	case authOAuth2:
		if c.OAuth2Config == "" {
			p.add(oauth2Config, "is required when %s is %q", authType, authOAuth2)
		}
		if c.Password != "" {
			p.add(password, "is not used with %s %q (the OAuth2 configuration provides the token): clear it",
				authType, authOAuth2)
		}
		if c.Username == "" {
			p.add(username, "is required when %s is %q (the mailbox the token is for)", authType, authOAuth2)
		}
	default:
		p.add(authType, "%q is not an auth type (use %q or %q)", c.AuthType, authBasic, authOAuth2)
	}
	connectionFields.checkSecretForms(c, p, n)
}

// validateAddresses checks ActionsBaseURL, From and To.
func (c *Connection) validateAddresses(p *problems, n fieldNames) {
	if c.ActionsBaseURL != "" {
		if msg, ok := validateActionsBaseURL(c.ActionsBaseURL); !ok {
			p.add(n.of("ActionsBaseURL"), "%s", msg)
		}
	}
	if c.From != "" {
		if msg := checkAddress(c.From); msg != "" {
			p.add(n.of("From"), "%s", msg)
		}
	}
	for i, to := range c.To {
		if msg := checkAddress(to); msg != "" {
			p.add(fmt.Sprintf("%s[%d]", n.of("To"), i), "%s", msg)
		}
	}
}

// checkRefs reports the references of c — its Password and CAFile — that
// refs does not allow or that do not resolve, and returns the CAFile's
// certificates (nil without a CAFile or when it is refused): the file is
// read here, once, and the Sender made from c trusts what was read. Only a
// valid form is checked (see validate).
func (c *Connection) checkRefs(p *problems, n fieldNames, refs *References) *x509.CertPool {
	connectionFields.checkSecretRefs(c, p, n, refs)
	if c.CAFile == "" {
		return nil
	}
	pool, msg := refs.loadCAFile(c.CAFile)
	if msg != "" {
		p.add(n.of("CAFile"), "%s", msg)
	}
	return pool
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
	return c.authType() == authOAuth2 || c.Username != ""
}

func (c *Connection) authType() string {
	if c.AuthType == "" {
		return authBasic
	}
	return c.AuthType
}

// tlsMode returns the effective TLS mode for the given explicit port (0 when
// the mail server names none).
func (c *Connection) tlsMode(port int) string {
	if c.TLSMode != "" {
		return c.TLSMode
	}
	switch {
	case c.EnableTLS && port == 465:
		return tlsImplicit
	case c.EnableTLS:
		return tlsStartTLS
	}
	return tlsNone
}

// endpoint is the effective address of a connection's server.
type endpoint struct {
	host string // without brackets
	port int
	mode string
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

// endpoint returns the effective host, port and TLS mode. c must be valid.
func (c *Connection) endpoint() endpoint {
	host, port, _ := splitMailServer(c.MailServer)
	mode := c.tlsMode(port)
	if port == 0 {
		switch mode {
		case tlsImplicit:
			port = 465
		case tlsStartTLS:
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

// String describes the connection in Go syntax without secrets, for logs
// and errors: the fields that are set, and MailServer and EnableTLS
// always; a literal password is shown as [redacted], a reference as it is
// written, RootCAs as "(set in code)". It is safe for concurrent use.
func (c Connection) String() string { return connectionFields.describe(&c) }

// Format writes String for every verb and flag (%v, %+v, %#v, %s, %q…), so
// that no verb prints the password.
func (c Connection) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue describes the connection for log/slog without secrets: the
// fields String shows, by their JSON names.
func (c Connection) LogValue() slog.Value { return connectionFields.logValue(&c) }

// toJSON returns the JSON form; reveal writes literal secrets as they are,
// otherwise they are redacted.
func (c *Connection) toJSON(reveal bool) jsonObject { return connectionFields.jsonForm(c, reveal) }

// MarshalJSON writes the JSON form of the configuration file: the fields
// by their json tags, timeouts in whole seconds (a fraction rounded up),
// empty optional fields left out, RootCAs never, and a literal password as
// "[redacted]" (Config.Save writes it as it is). It returns no error.
func (c Connection) MarshalJSON() ([]byte, error) { return json.Marshal(c.toJSON(false)) }

// UnmarshalJSON reads the JSON form of the configuration file. Unknown
// fields (with the closest known field suggested), a repeated field,
// values of the wrong type, fractional or negative timeouts are errors
// naming the field, every problem at once; on error c is left unchanged.
// It does not validate: call Validate.
func (c *Connection) UnmarshalJSON(data []byte) error {
	return unmarshalStrict(c, data, (*Connection).decode)
}

// decode reads the JSON form into c, reporting every problem to p.
func (c *Connection) decode(data []byte, p *problems) { connectionFields.decode(c, data, p) }
