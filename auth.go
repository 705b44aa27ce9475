package emailconn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The SASL mechanisms this package speaks.
const (
	mechPlain       = "PLAIN"
	mechLogin       = "LOGIN"
	mechXOAuth2     = "XOAUTH2"
	mechOAuthBearer = "OAUTHBEARER"
)

// errAuthMechanism reports a SASL exchange the client cannot follow.
var errUnexpectedChallenge = errors.New("unexpected server challenge")

// loginClient is SASL LOGIN, tolerant of the prompts servers actually send.
// go-sasl's LOGIN always sends the user name as an initial response and
// requires the challenge to be exactly "Password:"; servers differ
// ("Username:", "username:", "User Name", "Password", localised texts).
// This client sends no initial response and answers a prompt that mentions
// "user" with the user name and one that mentions "pass" with the password;
// other prompts get the user name first and the password second.
type loginClient struct {
	user, pass string
	step       int
	sentUser   bool
	sentPass   bool
}

func (c *loginClient) Start() (string, []byte, error) { return mechLogin, nil, nil }

func (c *loginClient) Next(challenge []byte) ([]byte, error) {
	c.step++
	if c.step > 3 {
		return nil, errUnexpectedChallenge
	}
	prompt := strings.ToLower(string(challenge))
	switch {
	case strings.Contains(prompt, "pass"):
		c.sentPass = true
		return []byte(c.pass), nil
	case strings.Contains(prompt, "user") || strings.Contains(prompt, "name"):
		c.sentUser = true
		return []byte(c.user), nil
	case !c.sentUser:
		c.sentUser = true
		return []byte(c.user), nil
	case !c.sentPass:
		c.sentPass = true
		return []byte(c.pass), nil
	}
	return nil, errUnexpectedChallenge
}

// offeredMechanisms returns the AUTH mechanisms of an EHLO reply, upper
// case, in the server's order.
func offeredMechanisms(ext map[string]string) []string {
	v, ok := ext["AUTH"]
	if !ok {
		return nil
	}
	var out []string
	for _, m := range strings.Fields(v) {
		m = strings.ToUpper(m)
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// chooseMechanism picks the mechanism for the connection's auth type among
// those offered: PLAIN, else LOGIN for Basic; XOAUTH2, else OAUTHBEARER for
// OAuth2 (Microsoft 365 offers only XOAUTH2).
func chooseMechanism(t AuthType, offered []string) (string, error) {
	prefs := []string{mechPlain, mechLogin}
	if t == AuthOAuth2 {
		prefs = []string{mechXOAuth2, mechOAuthBearer}
	}
	for _, m := range prefs {
		if slices.Contains(offered, m) {
			return m, nil
		}
	}
	if len(offered) == 0 {
		return "", &mechanismError{authType: t}
	}
	return "", &mechanismError{authType: t, offered: offered, wanted: prefs}
}

// mechanismError says the server offers no usable mechanism.
type mechanismError struct {
	authType AuthType
	offered  []string
	wanted   []string
}

func (e *mechanismError) Error() string {
	if len(e.offered) == 0 {
		return "server does not offer AUTH"
	}
	return fmt.Sprintf("server offers %s, none of which %s auth can use (%s)",
		strings.Join(e.offered, " "), e.authType, strings.Join(e.wanted, " or "))
}

func (e *mechanismError) Is(target error) bool { return target == ErrAuthUnsupported }

// credentialsAllowed reports whether credentials may be sent on a session:
// only over verified TLS (this package never skips verification), to a
// loopback address, or when the connection allows insecure auth.
func credentialsAllowed(c *Connection, tlsOn bool, remote net.Addr) bool {
	if tlsOn || c.AllowInsecureAuth {
		return true
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok && a.Unmap().IsLoopback() {
			return true
		}
	}
	return false
}

// basicClient returns the SASL client for Basic auth with mechanism mech.
func basicClient(mech, user, pass string) sasl.Client {
	if mech == mechLogin {
		return &loginClient{user: user, pass: pass}
	}
	return sasl.NewPlainClient("", user, pass)
}

// authError turns the error of an AUTH exchange into an error of kind
// ErrAuthFailed, keeping the server's reply.
func authError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return newSMTPError(se)
	}
	return err
}
