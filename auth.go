package emailconn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/session"
)

// The SASL mechanisms this package speaks.
const (
	mechPlain       = "PLAIN"
	mechLogin       = "LOGIN"
	mechXOAuth2     = "XOAUTH2"
	mechOAuthBearer = "OAUTHBEARER"
)

// errUnexpectedChallenge reports a SASL exchange the client cannot follow.
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

// offeredMechanisms returns the AUTH mechanisms the session's server
// offered, upper case, in the server's order.
func offeredMechanisms(sess *session.Session) []string {
	v, _ := sess.Extension("AUTH")
	return mechanismsIn(v)
}

// mechanismsIn returns the mechanisms of an AUTH extension's parameters.
func mechanismsIn(v string) []string {
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
func chooseMechanism(t string, offered []string) (string, error) {
	prefs := []string{mechPlain, mechLogin}
	if t == authOAuth2 {
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
	authType string
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

// maxAuthLine is the longest AUTH command line with an initial response
// (RFC 5321 §4.5.3.1.4 limits command lines to 512 octets, CRLF included).
// A longer initial response is sent after the server's empty challenge
// instead, as RFC 4954 §4 and Postfix's documentation ask.
const maxAuthLine = 512

// fitsInline reports whether "AUTH <mech> <base64 ir>\r\n" fits.
func fitsInline(mech string, ir []byte) bool {
	return len("AUTH ")+len(mech)+1+base64.StdEncoding.EncodedLen(len(ir))+2 <= maxAuthLine
}

// tokenFailure is what a server said about a rejected bearer token in its
// failure challenge (the base64 JSON of XOAUTH2 and OAUTHBEARER).
type tokenFailure struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

func (f *tokenFailure) String() string {
	var parts []string
	if f.Status != "" {
		parts = append(parts, "status "+f.Status)
	}
	if f.Scope != "" {
		parts = append(parts, "scope "+f.Scope)
	}
	if f.Schemes != "" {
		parts = append(parts, "schemes "+f.Schemes)
	}
	return strings.Join(parts, ", ")
}

// bearerClient is a SASL client for XOAUTH2 or OAUTHBEARER that
//   - sends the initial response inline only when the AUTH line stays
//     within 512 octets, else after the server's empty challenge;
//   - on the server's failure challenge (a JSON document), records it and
//     answers as the mechanism asks — an empty response for XOAUTH2
//     (Google, Microsoft), a single 0x01 for OAUTHBEARER (RFC 7628
//     §3.2.3) — so that the server ends the exchange with its final reply.
type bearerClient struct {
	mech     string
	ir       []byte
	deferred bool
	sent     bool
	failure  *tokenFailure
}

func newBearerClient(mech, user, token, host string, port int) *bearerClient {
	var ir []byte
	if mech == mechXOAuth2 {
		ir = []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01")
	} else {
		_, ir, _ = sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
			Username: gs2Escape(user), Token: token, Host: host, Port: port,
		}).Start()
	}
	return &bearerClient{mech: mech, ir: ir}
}

// gs2Escape escapes a GS2 authorization identity (RFC 5801 §4): "," and "="
// become "=2C" and "=3D". go-sasl does not escape it.
func gs2Escape(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *bearerClient) Start() (string, []byte, error) {
	if fitsInline(c.mech, c.ir) {
		c.sent = true
		return c.mech, c.ir, nil
	}
	c.deferred = true
	return c.mech, nil, nil
}

func (c *bearerClient) Next(challenge []byte) ([]byte, error) {
	if c.deferred && !c.sent && len(challenge) == 0 {
		c.sent = true
		return c.ir, nil
	}
	if c.failure != nil || !c.sent {
		return nil, errUnexpectedChallenge
	}
	var f tokenFailure
	if err := json.Unmarshal(challenge, &f); err != nil {
		f = tokenFailure{Status: "unreadable failure challenge"}
	}
	c.failure = &f
	if c.mech == mechOAuthBearer {
		return []byte{0x01}, nil
	}
	return []byte{}, nil
}

// A tokenRejectedError is an AUTH failure with a bearer token: the server's
// reply and what its failure challenge said.
type tokenRejectedError struct {
	reply   error
	failure *tokenFailure
	token   string // to drop it from the cache; never printed
}

func (e *tokenRejectedError) Error() string {
	msg := e.reply.Error()
	if e.failure != nil {
		msg += " (token rejected: " + e.failure.String() + ")"
	}
	return msg
}

func (e *tokenRejectedError) Unwrap() error { return e.reply }

// authenticate runs AUTH on sess with the connection's credentials.
// retry says that the server rejected the access token fetched before.
func (o *opener) authenticate(ctx context.Context, sess *session.Session, retry bool) error {
	s := o.s
	t := time.Now()
	refuse := func(cause error) error {
		e := &session.Error{Stage: session.StageAuth, Err: cause, Remote: sess.Remote, Usable: true}
		sess.Stage(ctx, session.StageAuth, t, e)
		return e
	}
	if !credentialsAllowed(&s.conn, sess.TLS != nil, sess.Conn.RemoteAddr()) {
		return refuse(errCleartextAuth)
	}
	offered := offeredMechanisms(sess)
	mech, err := chooseMechanism(s.conn.authType(), offered)
	if err != nil {
		return refuse(err)
	}
	var client sasl.Client
	var secret string
	var bearer *bearerClient
	if s.conn.authType() == authOAuth2 {
		tok, err := o.token(ctx, sess, retry)
		if err != nil {
			return err
		}
		t = time.Now()
		bearer = newBearerClient(mech, s.conn.Username, tok, s.ep.host, s.ep.port)
		client, secret = bearer, tok
	} else {
		pw, msg := s.conn.Password.reveal(&s.opts.References)
		if msg != "" {
			return refuse(&FieldError{Field: "Password", Problem: msg})
		}
		client, secret = basicClient(mech, s.conn.Username, pw), pw
	}
	if err := sess.Auth(mech, client, secret); err != nil {
		e := sess.Fail(session.StageAuth, err)
		var se *smtp.SMTPError
		if bearer != nil && errors.As(e.Err, &se) && se.Code != 530 && se.Code != 538 && (bearer.failure != nil || se.Code == 535) {
			e.Err = &tokenRejectedError{reply: newSMTPError(se), failure: bearer.failure, token: secret}
		}
		sess.Stage(ctx, session.StageAuth, t, e)
		return e
	}
	if o.trace != nil && o.trace.Authenticated != nil {
		o.trace.Authenticated(ctx, mech)
	}
	sess.Stage(ctx, session.StageAuth, t, nil)
	return nil
}

// token obtains an access token from the connection's token cache.
func (o *opener) token(ctx context.Context, sess *session.Session, retry bool) (string, error) {
	t := time.Now()
	tok, err := o.s.tokens.token(ctx)
	var e error
	if err != nil {
		e = &session.Error{Stage: session.StageToken, Err: err, Remote: sess.Remote, Usable: true}
	}
	if o.trace != nil && o.trace.TokenFetched != nil {
		info := TokenInfo{OAuth2Config: o.s.conn.OAuth2Config, Duration: time.Since(t), Retry: retry}
		if e != nil {
			info.Err = o.s.classify(ctx, e)
		}
		o.trace.TokenFetched(ctx, info)
	}
	sess.Stage(ctx, session.StageToken, t, e)
	return tok, e
}
