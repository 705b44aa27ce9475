package emailconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"

	"github.com/emailconn/emailconn/internal/oauthtoken"
)

// hints recognises causes and says what to change. A hint is chosen from
// the failing stage, the error's typed cause and what the session showed,
// never from the text of an error.
func (v *view) hints(rep *TestReport, tr *testRecorder, err error, at Stage, opts *TestOptions) []string {
	var hints []string
	var tle *testLimitError
	capped := errors.As(err, &tle)
	if capped {
		hints = append(hints, fmt.Sprintf("The test reached its time limit (%v) without a reply: configure smtpConnectionTimeout and smtpTimeout so that a silent server is reported at the stage where it stopped.", tle.limit))
	}
	if at == StageToken {
		// The token endpoint failed, not the mail server.
		return append(hints, v.tokenHints(err, capped)...)
	}
	h := &hintInput{rep: rep, tr: tr, err: err, at: at, capped: capped}
	h.hasSMTP = errors.As(err, &h.se)
	if h.hasSMTP {
		h.enh = h.se.Enhanced()
	}
	h.offersSTARTTLS = slices.ContainsFunc(rep.Server.Extensions, func(e string) bool { return strings.EqualFold(e, "STARTTLS") })
	// The first part that recognises the cause gives the hint.
	found := false
	for _, part := range []func(*hintInput) string{v.transportHint, v.authHint, v.replyHint} {
		if hint := part(h); hint != "" {
			hints, found = append(hints, hint), true
			break
		}
	}
	// A provider's throttling, quota or disabled-AUTH reply, in plain
	// words: after the hint above, or alone when none recognised it.
	var e *Error
	if hint := limitHint(err); hint != "" && (!found || errors.As(err, &e) && e.throttled) {
		hints = append(hints, hint)
	}
	return hints
}

// A hintInput is what the hints are chosen from.
type hintInput struct {
	rep            *TestReport
	tr             *testRecorder
	err            error
	at             Stage
	capped         bool // the test's own time limit expired
	se             *SMTPError
	hasSMTP        bool
	enh            string
	offersSTARTTLS bool
}

// transportHint recognises causes in resolving, connecting, TLS and the
// greeting.
func (v *view) transportHint(h *hintInput) string {
	s, err, at := v.s, h.err, h.at
	host, port, mode := s.ep.host, s.ep.port, s.ep.mode
	var dnsErr *net.DNSError
	var rh tls.RecordHeaderError
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var rootsErr x509.SystemRootsError
	switch {
	case v.restricted && s.unresolvable(err, at):
		// The same whether the name does not exist or the dial policy
		// refuses what it resolves to.
		return fmt.Sprintf("Check the spelling of the mail server's name %s: this engine connects only to addresses it is allowed to reach.", host)
	case errors.Is(err, ErrBlocked):
		return "The dial policy does not allow this destination."
	case at == StageResolve && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("The host name %s does not resolve: check its spelling, and that this machine's DNS can see it.", host)
	case at == StageResolve && errors.As(err, &dnsErr):
		return fmt.Sprintf("The host name %s could not be resolved right now (DNS %s): check this machine's DNS.", host, dnsErr.Err)
	case at == StageConnect && errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("Nothing accepts connections on %s port %d: check the port (465 for implicit TLS, 587 for STARTTLS, 25 for relays) and any firewall.", host, port)
	case at == StageConnect && (errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)):
		return fmt.Sprintf("No route to %s: check the network path and firewalls.", host)
	case at == StageConnect && errors.Is(err, ErrTimeout):
		return fmt.Sprintf("No answer from %s port %d: a firewall may drop the connection, or the host is down.", host, port)
	case (at == StageGreeting || at == StageEHLO) && errors.Is(err, ErrTimeout) && mode != tlsImplicit:
		if port == 465 {
			return "The server did not greet: port 465 expects implicit TLS. Set tlsMode to \"implicit\" (or keep Enable TLS on with port 465)."
		}
		return fmt.Sprintf("The server accepted the connection but sent no greeting: if port %d expects implicit TLS, set tlsMode to \"implicit\"; otherwise the server is overloaded or a firewall interferes.", port)
	case at == StageTLS && errors.As(err, &rh):
		return fmt.Sprintf("The server does not speak TLS on port %d: it is probably a plaintext or STARTTLS port. Use STARTTLS (Enable TLS on port 587) instead of implicit TLS, or the server's implicit-TLS port (465).", port)
	case at == StageTLS && errors.Is(err, ErrTimeout):
		return fmt.Sprintf("The TLS handshake did not complete: check that port %d expects implicit TLS.", port)
	case errors.As(err, &hostErr) && v.restricted:
		return fmt.Sprintf("The server's certificate is not valid for %s: use a name the certificate is issued for as the mail server.", host)
	case errors.As(err, &hostErr):
		return fmt.Sprintf("The certificate is for %s, not %s: use one of those names as the mail server.", certNames(hostErr.Certificate), host)
	case errors.As(err, &uaErr):
		issuer := ""
		if uaErr.Cert != nil && !v.restricted {
			issuer = " (issued by " + uaErr.Cert.Issuer.String() + ")"
		}
		if s.conn.CAFile != "" {
			return fmt.Sprintf("The certificate%s is not signed by an authority in caFile: caFile replaces the system's trusted authorities, so it must hold the CA certificate that issued the server's certificate (or leave caFile empty for a server whose certificate is publicly trusted).", issuer)
		} else {
			return fmt.Sprintf("The certificate is signed by an authority this machine does not trust%s: for a private relay, set caFile to the relay's CA certificate.", issuer)
		}
	case errors.As(err, &rootsErr):
		return "This machine has no trusted certificate authorities to verify the server's certificate with: install the system's CA certificates, or set caFile to the CA that issued the server's certificate."
	case errors.As(err, &invErr) && invErr.Reason == x509.Expired:
		return fmt.Sprintf("The server's certificate has expired (on %s): the server's administrator must renew it.", invErr.Cert.NotAfter.UTC().Format("2006-01-02"))
	case at == StageSTARTTLS && errors.Is(err, errNoSTARTTLS):
		return fmt.Sprintf("The server does not offer STARTTLS on port %d: check the port (587 usually offers it; use 465 with implicit TLS), or whether something between strips STARTTLS.", port)
	case at == StageSTARTTLS && errors.Is(err, errSTARTTLSInjection):
		return "Something between this machine and the server tampers with the connection (data injected before TLS): do not send through it."
	case errors.Is(err, errReplyTooLarge) || (at == StageGreeting || at == StageEHLO) && errors.Is(err, ErrConnect) && !h.hasSMTP && isPermanentConnect(err):
		return fmt.Sprintf("The service on %s port %d does not speak SMTP: check the host and port.", host, port)
	}
	return ""
}

// authHint recognises causes in authentication.
func (v *view) authHint(h *hintInput) string {
	s, err, se, enh, hasSMTP, port, tr, offersSTARTTLS := v.s, h.err, h.se, h.enh, h.hasSMTP, v.s.ep.port, h.tr, h.offersSTARTTLS
	var mech *mechanismError
	var tre *tokenRejectedError
	switch {
	case errors.As(err, &mech) && len(mech.offered) == 0:
		switch {
		case tr.tls != nil:
			return fmt.Sprintf("The server offers no AUTH, although the session is encrypted: it does not accept authentication from this client on port %d (relay ports such as 25 often do not; submission is on 587 or 465), or it accepts mail without it — then leave the user name empty.", port)
		case offersSTARTTLS:
			return "The server offers STARTTLS and no AUTH before it: turn Enable TLS on, so that AUTH is offered on the encrypted session."
		default:
			return fmt.Sprintf("The server offers neither AUTH nor STARTTLS on port %d: it does not accept authentication here. Check the port (587 for submission), or leave the user name empty if it accepts mail without authentication.", port)
		}
	case errors.As(err, &mech):
		offered := strings.Join(saslNames(mech.offered), " ")
		if s.conn.authType() == authOAuth2 {
			return fmt.Sprintf("The server offers %s but not XOAUTH2 or OAUTHBEARER: it does not accept OAuth2 here.", offered)
		} else {
			return fmt.Sprintf("The server offers %s but not PLAIN or LOGIN: it does not accept a user name and password here (try OAuth2 if it offers XOAUTH2).", offered)
		}
	case errors.Is(err, ErrInsecureAuth):
		return "Turn Enable TLS on, so that the credentials travel encrypted; set allowInsecureAuth only on a trusted network."
	case errors.Is(err, ErrReauthorize):
		return fmt.Sprintf("The OAuth2 configuration %q must be authorised again: its refresh token was revoked or expired.", s.conn.OAuth2Config)
	case hasSMTP && se.Code == 535 && enh == "5.7.139":
		return fmt.Sprintf("SMTP AUTH (Basic authentication) is disabled for this Microsoft 365 tenant or mailbox: enable Authenticated SMTP for the mailbox %s, or switch the connection to OAuth2.", s.conn.Username)
	case hasSMTP && se.Code == 535 && enh == "5.7.3" || errors.As(err, &tre) && strings.Contains(strings.ToLower(s.ep.host), "office365"):
		return fmt.Sprintf("Microsoft 365 rejected the login: for OAuth2, the app needs the SMTP.SendAsApp permission with admin consent, its service principal registered in Exchange with access to the mailbox %s, and a token for https://outlook.office365.com; for Basic auth, check the password and that Authenticated SMTP is enabled.", s.conn.Username)
	case errors.As(err, &tre):
		detail := ""
		if tre.failure != nil && !v.restricted {
			detail = " (" + tre.failure.String() + ")"
		}
		return fmt.Sprintf("The server rejected the OAuth2 access token for %s%s: check that the token's scope covers SMTP (Google: https://mail.google.com/) and that it was issued for this mailbox.", s.conn.Username, detail)
	case hasSMTP && se.Code == 534 && enh == "5.7.9":
		return "Google requires an app password or OAuth2 for this account: create an app password, or switch the connection to OAuth2."
	}
	return ""
}

// replyHint recognises the server's refusals.
func (v *view) replyHint(h *hintInput) string {
	s, err, se, enh, hasSMTP, at, rep, offersSTARTTLS := v.s, h.err, h.se, h.enh, h.hasSMTP, h.at, h.rep, h.offersSTARTTLS
	switch {
	case hasSMTP && rep.Server.TLSVersion == "" && (se.Code == 538 || se.Code == 530 && (at == StageAuth || offersSTARTTLS)):
		// 530 to AUTH is "STARTTLS first" (RFC 3207); 538 is "encryption
		// required" (RFC 4954).
		return "The server requires STARTTLS before this command: turn Enable TLS on."
	case hasSMTP && se.Code == 530 && !s.conn.usesCredentials():
		return "The server requires authentication before sending: set a user name and password (or OAuth2)."
	case hasSMTP && se.Code == 530 && v.restricted:
		return "The server refused the command before authentication succeeded."
	case hasSMTP && se.Code == 530:
		return fmt.Sprintf("The server refused the command before authentication succeeded (%s).", se.Message)
	case hasSMTP && se.Code == 550 && enh == "5.7.30":
		return "Basic authentication is retired for client submission on this server: switch the connection to OAuth2."
	case hasSMTP && se.Code == 504 && enh == "5.7.4":
		return fmt.Sprintf("The server does not recognise the authentication mechanism: it offers %s; Microsoft 365 accepts only LOGIN and XOAUTH2.", strings.Join(rep.Server.AuthMechanisms, " "))
	case hasSMTP && se.Code == 535:
		return fmt.Sprintf("The server rejected the credentials of %s: check the user name and password.", s.conn.Username)
	case hasSMTP && at == StageMail && enh == "5.7.60" || hasSMTP && at == StageRcpt && enh == "5.7.60":
		return fmt.Sprintf("The user %s may not send as %s: grant it Send As permission for that address, or change the connection's sender.", s.conn.Username, s.conn.From)
	case hasSMTP && (at == StageRcpt || at == StageMail) && enh == "5.7.1":
		return fmt.Sprintf("The server refuses to relay from %s to the probe recipient: the account may not send for this sender, or the server does not accept mail for that domain from this client.", s.conn.From)
	case hasSMTP && at == StageRcpt && enh == "5.1.1":
		return "The probe recipient does not exist on that server."
	case hasSMTP && se.Code == 421:
		return "The server closed the session (421): it may be overloaded or refuse this client; try again later."
	case hasSMTP && (at == StageMail || at == StageRcpt) && se.Temporary():
		what := "the probe recipient"
		if at == StageMail {
			what = "the sender " + s.conn.From
		}
		switch {
		case se.Code == 452 || enh == "4.2.2" || enh == "4.3.1":
			return fmt.Sprintf("The server temporarily refused %s (%d): the mailbox or the server is out of space, or a limit was reached. A send is retried later; if this lasts, ask the server's administrator.", what, se.Code)
		default:
			return fmt.Sprintf("The server temporarily refused %s (%d): greylisting, a rate limit or a passing problem on the server. A send is retried later; run the test again in a few minutes, and if the refusal lasts, ask the server's administrator.", what, se.Code)
		}
	case hasSMTP && at == StageRcpt:
		return fmt.Sprintf("The server refuses the probe recipient (%d): check the address, and that the server accepts mail for its domain from this sender.", se.Code)
	case hasSMTP && at == StageMail:
		return fmt.Sprintf("The server refuses the sender %s (%d): check the connection's sender address, and that the account may send as it.", s.conn.From, se.Code)
	case errors.Is(err, ErrTimeout) && !h.capped:
		return "The server did not reply in time: it may be overloaded, or a firewall interferes."
	}
	return ""
}

// tokenHints says what to change when no OAuth2 access token could be
// obtained: the token endpoint failed, not the mail server.
func (v *view) tokenHints(err error, capped bool) []string {
	s := v.s
	name := s.conn.OAuth2Config
	var dnsErr *net.DNSError
	var oe *oauthtoken.Error
	errors.As(err, &oe)
	switch {
	case v.restricted && (errors.Is(err, ErrBlocked) || errors.As(err, &dnsErr)):
		return []string{fmt.Sprintf("Check the tokenURL of OAuth2 configuration %q: this engine connects only to addresses it is allowed to reach.", name)}
	case errors.Is(err, ErrBlocked):
		return []string{fmt.Sprintf("The dial policy does not allow the token endpoint of OAuth2 configuration %q.", name)}
	case errors.Is(err, ErrReauthorize):
		return []string{fmt.Sprintf("The OAuth2 configuration %q must be authorised again: its refresh token was revoked or expired.", name)}
	case errors.Is(err, oauthtoken.ErrInvalidClient) || oe != nil && oe.Code == "invalid_client":
		return []string{fmt.Sprintf("The token endpoint refused the client of OAuth2 configuration %q: check its client ID and secret (secrets expire).", name)}
	case errors.As(err, &dnsErr):
		return []string{fmt.Sprintf("The host name of the token endpoint of OAuth2 configuration %q does not resolve: check its tokenURL, and that this machine's DNS can see it.", name)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return []string{fmt.Sprintf("Nothing accepts connections at the token endpoint of OAuth2 configuration %q: check its tokenURL, and that the identity provider is reachable from this machine (proxies, firewalls).", name)}
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return []string{fmt.Sprintf("No route to the token endpoint of OAuth2 configuration %q: check the network path, proxies and firewalls.", name)}
	case capped:
		return nil
	case errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded) && v.parent.Err() == nil:
		return []string{fmt.Sprintf("The token endpoint of OAuth2 configuration %q did not answer in time: it may be overloaded, or a proxy or firewall interferes; try again later.", name)}
	}
	if ct, ok := s.tokens.(cacheTokens); ok && ct.e != nil {
		ct.e.mu.Lock()
		cfg := ct.e.cfg
		ct.e.mu.Unlock()
		if h := oauth2Hints(&cfg, err); len(h) > 0 && oe != nil {
			out := make([]string, len(h))
			for i, x := range h {
				out[i] = fmt.Sprintf("OAuth2 configuration %q: %s", name, x)
			}
			return out
		}
	}
	return []string{fmt.Sprintf("No access token could be obtained from OAuth2 configuration %q: test it on its own for details.", name)}
}

func certNames(c *x509.Certificate) string {
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		names = append(names, c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

// A testRecorder keeps the events of one Test Connection, from which its
