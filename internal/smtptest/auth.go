package smtptest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"
)

// The failure challenges of the OAuth mechanisms, before base64.
const (
	// XOAUTH2FailureJSON is the 334 challenge (before base64) a Server sends
	// for a rejected XOAUTH2 token, as Google does.
	XOAUTH2FailureJSON = `{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`
	// xoauth2MalformedJSON is sent for a response that is not XOAUTH2.
	xoauth2MalformedJSON = `{"status":"400","schemes":"bearer","scope":"https://mail.google.com/"}`
	// OAuthBearerFailureJSON is the 334 challenge (before base64) a Server
	// sends for a rejected OAUTHBEARER token (RFC 7628 §3.2.2).
	OAuthBearerFailureJSON = `{"status":"invalid_token","schemes":"bearer","scope":"https://mail.google.com/"}`
)

// authOutcome is how a SASL exchange ended, before any AuthResult fault.
type authOutcome struct {
	user string // the user the client claimed
	ok   bool   // credentials accepted
	// final is the reply to send when the exchange ended early (cancelled,
	// bad base64, unsupported): no AuthResult fault applies then.
	final []byte
	// answered reports that the final reply was already sent, ahead of the
	// responses (Options.PipelinedLogin).
	answered bool
}

var (
	replyOK         = []byte("235 2.7.0 Authentication successful\r\n")
	replyBadCreds   = []byte("535 5.7.8 Authentication credentials invalid\r\n")
	replyGoogleBad  = []byte("535 5.7.8 Username and Password not accepted\r\n")
	replyCancelled  = []byte("501 5.0.0 Authentication cancelled\r\n")
	replyBadBase64  = []byte("501 5.5.2 Invalid base64 data\r\n")
	replyNotImpl    = []byte("504 5.7.4 Mechanism not implemented by smtptest\r\n")
	errCancelled    = errors.New("cancelled")
	errBadBase64    = errors.New("bad base64")
	errUnknownValue = errors.New("invalid")
)

func (s *session) cmdAuth(arg string) error {
	switch {
	case !s.ehlo:
		return s.reply(503, "5.5.1", "Error: send EHLO first")
	case s.authUser != "":
		return s.reply(503, "5.5.1", "Error: already authenticated")
	case s.inTx:
		return s.reply(503, "5.5.1", "Error: MAIL transaction in progress")
	}
	fields := strings.Fields(arg)
	if len(fields) == 0 || len(fields) > 2 {
		return s.reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
	}
	if !s.authAllowed() {
		return s.reply(538, "5.7.11", "Encryption required for requested authentication mechanism")
	}
	mech := strings.ToUpper(fields[0])
	if !slices.Contains(s.srv.mechs, mech) {
		return s.reply(504, "5.7.4", "Unrecognized authentication type")
	}
	var ir []byte
	if len(fields) == 2 {
		var err error
		if ir, err = decodeSASL(fields[1]); err != nil {
			return s.write(replyBadBase64)
		}
	}

	var out authOutcome
	var err error
	switch mech {
	case "PLAIN":
		out, err = s.authPlain(ir)
	case "LOGIN":
		out, err = s.authLogin(ir)
	case "XOAUTH2":
		out, err = s.authXOAUTH2(ir)
	case "OAUTHBEARER":
		out, err = s.authOAuthBearer(ir)
	default:
		out.final = replyNotImpl
	}
	switch {
	case errors.Is(err, errCancelled):
		return s.write(replyCancelled)
	case errors.Is(err, errBadBase64):
		return s.write(replyBadBase64)
	case err != nil:
		return err
	case out.final != nil:
		return s.write(out.final)
	case out.answered:
		if !out.ok {
			s.logf("LOGIN credentials wrong after an early 235, closing")
			return errClose
		}
		s.authUser, s.authMech = out.user, mech
		return nil
	}

	final := replyBadCreds
	if out.ok {
		final = replyOK
	} else if mech == "XOAUTH2" {
		final = replyGoogleBad
	}
	return s.atReplyPoint(s.srv.takeFault(AuthResult, false, s.id), "235",
		func() error {
			if out.ok {
				s.authUser, s.authMech = out.user, mech
			}
			return s.write(final)
		},
		func(f *Fault) {
			if f.sendsSuccess() {
				s.authUser, s.authMech = out.user, mech
			}
		})
}

// decodeSASL decodes a base64 SASL response; "=" is the empty response.
func decodeSASL(v string) ([]byte, error) {
	if v == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, errBadBase64
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// challenge sends "334 base64(c)" and returns the decoded response. A "*"
// response is errCancelled.
func (s *session) challenge(c []byte) ([]byte, error) {
	if err := s.write([]byte("334 " + base64.StdEncoding.EncodeToString(c) + "\r\n")); err != nil {
		return nil, err
	}
	text, err := s.readClientLine(true)
	if err != nil {
		return nil, err
	}
	if text == "*" {
		return nil, errCancelled
	}
	return decodeSASL(text)
}

func (s *session) checkPassword(user, pass string) bool {
	want, ok := s.srv.opts.Users[user]
	return ok && want == pass
}

func (s *session) authPlain(ir []byte) (authOutcome, error) {
	var out authOutcome
	srv := sasl.NewPlainServer(func(identity, user, pass string) error {
		out.user = user
		if (identity == "" || identity == user) && s.checkPassword(user, pass) {
			out.ok = true
			return nil
		}
		return errUnknownValue
	})
	resp := ir
	for range 2 {
		chal, done, err := srv.Next(resp)
		if done || err != nil {
			return out, nil
		}
		if resp, err = s.challenge(chal); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (s *session) authLogin(ir []byte) (authOutcome, error) {
	prompts := s.srv.opts.LoginPrompts
	if prompts[0] == "" {
		prompts[0] = "Username:"
	}
	if prompts[1] == "" {
		prompts[1] = "Password:"
	}
	if s.srv.opts.PipelinedLogin {
		return s.authLoginAhead(ir, prompts)
	}
	user := ir
	if user == nil {
		var err error
		if user, err = s.challenge([]byte(prompts[0])); err != nil {
			return authOutcome{}, err
		}
	}
	pass, err := s.challenge([]byte(prompts[1]))
	if err != nil {
		return authOutcome{}, err
	}
	return authOutcome{user: string(user), ok: s.checkPassword(string(user), string(pass))}, nil
}

// authLoginAhead is LOGIN answered ahead: the challenges still due and the
// final 235 in one write, then the responses.
func (s *session) authLoginAhead(ir []byte, prompts [2]string) (authOutcome, error) {
	var ahead []byte
	if ir == nil {
		ahead = append(ahead, "334 "+base64.StdEncoding.EncodeToString([]byte(prompts[0]))+"\r\n"...)
	}
	ahead = append(ahead, "334 "+base64.StdEncoding.EncodeToString([]byte(prompts[1]))+"\r\n"...)
	ahead = append(ahead, replyOK...)
	if err := s.write(ahead); err != nil {
		return authOutcome{}, err
	}
	user := ir
	var resp [][]byte
	n := 2
	if ir != nil {
		n = 1
	}
	for range n {
		text, err := s.readClientLine(true)
		if err != nil {
			return authOutcome{}, err
		}
		b, err := decodeSASL(text)
		if err != nil || text == "*" {
			b = nil
		}
		resp = append(resp, b)
	}
	if ir == nil {
		user = resp[0]
	}
	pass := resp[len(resp)-1]
	ok := user != nil && pass != nil && s.checkPassword(string(user), string(pass))
	return authOutcome{user: string(user), ok: ok, answered: true}, nil
}

func (s *session) validToken(user, token string) bool {
	v := s.srv.opts.ValidateToken
	return v != nil && v(user, token)
}

// parseXOAUTH2 parses "user=U\x01auth=Bearer T\x01\x01".
func parseXOAUTH2(b []byte) (user, token string, ok bool) {
	if !bytes.HasSuffix(b, []byte("\x01\x01")) {
		return "", "", false
	}
	var haveUser, haveAuth bool
	for _, f := range strings.Split(string(b[:len(b)-2]), "\x01") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "user":
			user, haveUser = v, true
		case "auth":
			scheme, tok, found := strings.Cut(v, " ")
			if !found || !strings.EqualFold(scheme, "Bearer") {
				return "", "", false
			}
			token, haveAuth = tok, true
		default:
			return "", "", false
		}
	}
	return user, token, haveUser && haveAuth
}

func (s *session) authXOAUTH2(ir []byte) (authOutcome, error) {
	payload := ir
	if payload == nil {
		var err error
		if payload, err = s.challenge(nil); err != nil {
			return authOutcome{}, err
		}
	}
	user, token, ok := parseXOAUTH2(payload)
	out := authOutcome{user: user}
	if ok && s.validToken(user, token) {
		out.ok = true
		return out, nil
	}
	status := XOAUTH2FailureJSON
	if !ok {
		status = xoauth2MalformedJSON
	}
	// Google: 334 <error JSON>, the client answers with an empty line, 535.
	if _, err := s.challenge([]byte(status)); err != nil && !errors.Is(err, errBadBase64) {
		return out, err
	}
	return out, nil
}

func (s *session) authOAuthBearer(ir []byte) (authOutcome, error) {
	var out authOutcome
	srv := sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
		out.user = o.Username
		if s.validToken(o.Username, o.Token) {
			return nil
		}
		return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer", Scope: "https://mail.google.com/"}
	})
	resp := ir
	chal, done, err := srv.Next(resp)
	if !done && err == nil && resp == nil {
		// No initial response: go-sasl asks for it with an empty challenge.
		if resp, err = s.challenge(chal); err != nil {
			return out, err
		}
		chal, done, err = srv.Next(resp)
	}
	if done || err != nil {
		out.ok = done && err == nil
		return out, nil
	}
	// RFC 7628 §3.2.2: 334 <error JSON>; the client answers "\x01" (or "*",
	// which challenge reports as errCancelled); then the exchange fails.
	// go-sasl's server is not asked again: it indexes an empty response.
	if _, err := s.challenge(chal); err != nil && !errors.Is(err, errBadBase64) {
		return out, err
	}
	return out, nil
}
