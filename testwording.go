package emailconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emailconn/emailconn/internal/oauthtoken"
	"github.com/emailconn/emailconn/internal/smtpconn"
	"github.com/emersion/go-smtp"
)

// A view is how a report is worded: in full, or restricted to what an
// untrusted caller may see (TestOptions.Restricted).
type view struct {
	s          *Sender
	restricted bool
	parent     context.Context // the caller's context
}

// detail is the text of err, the error of stage st, for the report.
func (v *view) detail(err error, st Stage) string {
	if v.restricted {
		return v.restrictedDetail(err, st)
	}
	return stageDetail(err)
}

// errorText is the report's Error in restricted mode: the package prefix,
// the connection (or the configured server) and the stage, then the
// restricted detail.
func (v *view) errorText(err error, st Stage) string {
	var b strings.Builder
	b.WriteString("emailconn: ")
	if v.s.conn.Name != "" {
		fmt.Fprintf(&b, "connection %q: ", v.s.conn.Name)
	} else {
		fmt.Fprintf(&b, "%s: ", v.s.ep.addr())
	}
	if st != "" {
		b.WriteString(string(st) + ": ")
	}
	b.WriteString(v.restrictedDetail(err, st))
	return b.String()
}

// unresolvable reports a failure to turn the mail server's name into an
// address the engine may connect to: the name did not resolve, or the dial
// policy refused every address it resolved to.
func (s *Sender) unresolvable(err error, at Stage) bool {
	if err == nil {
		return false
	}
	if _, perr := netip.ParseAddr(s.ep.host); perr == nil {
		return false // an IP address: nothing about names to hide
	}
	return at == StageResolve || at == StageConnect && errors.Is(err, ErrBlocked)
}

// restrictedDetail describes err from its typed cause alone, never with
// the text of a server reply, a certificate, the resolver or the network
// stack.
func (v *view) restrictedDetail(err error, at Stage) string {
	s := v.s
	var tle *testLimitError
	var se *SMTPError
	var mech *mechanismError
	var fe *FieldError
	var tre *tokenRejectedError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &tle):
		return tle.Error()
	case v.parent.Err() != nil && errors.Is(err, context.Canceled):
		return "the test was canceled"
	case v.parent.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return "the caller's deadline expired"
	case s.unresolvable(err, at):
		return "the mail server's name does not resolve to an address this engine may connect to"
	case at == StageToken && (errors.Is(err, ErrBlocked) || errors.As(err, &dnsErr)):
		return "the token endpoint's name does not resolve to an address this engine may connect to"
	case errors.Is(err, ErrBlocked):
		return "destination not allowed"
	case errors.Is(err, ErrTimeout) || errors.Is(err, context.DeadlineExceeded):
		return "no reply in time"
	case errors.As(err, &tre):
		return "the server rejected the OAuth2 access token"
	case errors.As(err, &se):
		if enh := se.Enhanced(); enh != "" {
			return fmt.Sprintf("the server replied %d %s", se.Code, enh)
		}
		return fmt.Sprintf("the server replied %d", se.Code)
	case errors.As(err, &mech):
		offered := saslNames(mech.offered)
		if len(offered) == 0 {
			return "server does not offer AUTH"
		}
		return fmt.Sprintf("server offers %s, none of which %s auth can use", strings.Join(offered, " "), mech.authType)
	case errors.Is(err, ErrInsecureAuth):
		return "credentials not sent: the session is not encrypted and the server is not on a loopback address"
	case errors.As(err, &fe):
		return fe.Field + " is not valid"
	}
	return v.causeDetail(err, at)
}

// causeDetail describes the causes of certificates, TLS, the network and
// the token endpoint, then the kind.
func (v *view) causeDetail(err error, at Stage) string {
	s := v.s
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var oe *oauthtoken.Error
	var protoErr textproto.ProtocolError
	var notSMTP *smtpconn.NotSMTPError
	var rootsErr x509.SystemRootsError
	switch {
	case errors.As(err, &hostErr):
		return "the server's certificate is not valid for " + s.ep.host
	case errors.As(err, &uaErr):
		return "the server's certificate is not signed by a trusted authority"
	case errors.As(err, &rootsErr):
		return "this machine has no trusted authorities to verify the certificate with"
	case errors.As(err, &invErr) && invErr.Reason == x509.Expired:
		return "the server's certificate has expired"
	case errors.As(err, &invErr):
		return "the server's certificate is not valid"
	case errors.As(err, &rh):
		return "the server did not answer with TLS"
	case errors.Is(err, errNoSTARTTLS):
		return errNoSTARTTLS.Error()
	case errors.Is(err, errSTARTTLSInjection):
		return "the server sent data after its reply to STARTTLS; TLS was not started"
	case errors.Is(err, errReplyTooLarge):
		return "a reply from the server was too large"
	case errors.Is(err, ErrReauthorize):
		return "the OAuth2 configuration must be authorised again"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case isConnReset(err):
		return "the connection was reset"
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "no route to the server"
	case errors.As(err, &notSMTP):
		return "the service does not speak SMTP"
	case errors.As(err, &protoErr) || errors.Is(err, smtp.ErrTooLongLine):
		return "the server's reply is not SMTP"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case at == StageToken && errors.As(err, &oe) && oe.Code != "":
		return "the token endpoint answered " + oe.Code
	case at == StageToken && errors.As(err, &oe) && oe.Status != 0:
		return fmt.Sprintf("the token endpoint answered HTTP %d", oe.Status)
	case at == StageToken:
		return "no access token could be obtained"
	case errors.Is(err, ErrTLSUnavailable):
		return "TLS could not be established"
	case errors.Is(err, ErrAuthUnsupported):
		return "no usable authentication mechanism"
	case errors.Is(err, ErrAuthFailed):
		return "authentication failed"
	case errors.Is(err, ErrRefused):
		return "the server refused the command"
	case errors.Is(err, ErrConnect):
		return "the connection failed"
	}
	return "the stage failed"
}

// skipReason is why stage st was skipped. A restricted report never
// repeats the traced reason, which may quote the server.
func (v *view) skipReason(st Stage, traced string, tr *testRecorder) string {
	if !v.restricted {
		return traced
	}
	switch st {
	case StageMail, StageRcpt, StageReset:
		return "no probe recipient was given"
	case StageSTARTTLS:
		if v.s.ep.mode == tlsOpportunistic {
			if slices.ContainsFunc(tr.ext, func(l string) bool { return strings.EqualFold(l, "STARTTLS") }) {
				return "the server refused STARTTLS; opportunistic mode continues in plaintext"
			}
			return "the server does not offer STARTTLS (opportunistic mode continues in plaintext)"
		}
	}
	return v.s.whySkipped(st)
}

// standardExtensions keeps the EHLO lines of standard extensions, without
// parameters except those the report reads (AUTH mechanisms, SIZE).
func standardExtensions(lines []string) []string {
	out := []string{}
	for _, l := range lines {
		k, param, _ := strings.Cut(strings.TrimSpace(l), " ")
		k = strings.ToUpper(k)
		switch k {
		case "AUTH":
			if names := saslNames(strings.Fields(param)); len(names) > 0 {
				out = append(out, "AUTH "+strings.Join(names, " "))
			} else {
				out = append(out, "AUTH")
			}
		case "SIZE":
			if n, err := strconv.ParseInt(strings.TrimSpace(param), 10, 64); err == nil && n > 0 {
				out = append(out, "SIZE "+strconv.FormatInt(n, 10))
			} else {
				out = append(out, "SIZE")
			}
		case "8BITMIME", "BINARYMIME", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES", "PIPELINING",
			"REQUIRETLS", "SMTPUTF8", "STARTTLS", "DELIVERBY", "MT-PRIORITY":
			out = append(out, k)
		}
	}
	return out
}

// saslNames keeps the names that are SASL mechanism names (RFC 4422 §3.1:
// 1 to 20 upper-case letters, digits, hyphens and underscores).
func saslNames(names []string) []string {
	var out []string
	for _, n := range names {
		n = strings.ToUpper(n)
		ok := len(n) > 0 && len(n) <= 20
		for _, r := range n {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				ok = false
			}
		}
		if ok {
			out = append(out, n)
		}
	}
	return out
}

func stageIndex(st Stage) int { return slices.Index(ladder, st) }

// stageDetail is an error's text without the package prefix, connection
// and stage.
func stageDetail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.detail()
	}
	return strings.TrimPrefix(err.Error(), "emailconn: ")
}

// whySkipped says why a stage that was not reached by the trace was not
// needed.
func (s *Sender) whySkipped(st Stage) string {
	switch st {
	case StageTLS:
		return fmt.Sprintf("implicit TLS is not used (TLS mode %s)", s.ep.mode)
	case StageSTARTTLS:
		if s.ep.mode == tlsImplicit {
			return "the session is already encrypted (implicit TLS)"
		}
		return "TLS is off (TLS mode none)"
	case StageToken:
		return "the connection does not use OAuth2"
	case StageAuth:
		return "the connection has no user name"
	case StageResolve:
		return "the mail server is an IP address"
	}
	return ""
}

func certInfo(c *x509.Certificate, verified bool) *CertificateInfo {
	ci := &CertificateInfo{Subject: c.Subject.String(), DNSNames: c.DNSNames, Issuer: c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Verified: verified, IPs: []string{}}
	if ci.DNSNames == nil {
		ci.DNSNames = []string{}
	}
	for _, ip := range c.IPAddresses {
		ci.IPs = append(ci.IPs, ip.String())
	}
	return ci
}

// warnings adds what does not fail the test but deserves attention.
func (v *view) warnings(rep *TestReport, tr *testRecorder, seen map[Stage]StageResult, err error, failedAt Stage) {
	s := v.s
	add := func(format string, a ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, a...)) }
	c := &s.conn
	if c.ConnectTimeout == 0 && c.SendTimeout == 0 {
		add("No timeouts are configured: a mail server that stops answering would hang a process forever. Set smtpConnectionTimeout and smtpTimeout (for example 15 and 60 seconds).")
	} else if c.ConnectTimeout == 0 {
		add("No connect timeout is configured: a server that accepts connections but never greets would hang a process (set smtpConnectionTimeout).")
	} else if c.SendTimeout == 0 {
		add("No send timeout is configured: a server that stops answering during a send would hang a process (set smtpTimeout).")
	}
	// Only the well-known ports say which TLS mode a server expects; any
	// other port says nothing.
	switch {
	case s.ep.mode == tlsImplicit && (s.ep.port == 587 || s.ep.port == 25):
		add("Implicit TLS on port %d: port %d usually expects STARTTLS; implicit TLS is usually on port 465.", s.ep.port, s.ep.port)
	case (s.ep.mode == tlsStartTLS || s.ep.mode == tlsOpportunistic) && s.ep.port == 465:
		add("STARTTLS on port 465: port 465 usually expects implicit TLS (tlsMode \"implicit\").")
	}
	if rep.Certificate != nil && rep.Certificate.Verified {
		if left := time.Until(rep.Certificate.NotAfter); left < 14*24*time.Hour {
			in := "in less than a day"
			if days := int(left.Hours() / 24); days == 1 {
				in = "in 1 day"
			} else if days > 1 {
				in = fmt.Sprintf("in %d days", days)
			}
			add("The server's certificate expires on %s (%s).", rep.Certificate.NotAfter.Format("2006-01-02"), in)
		}
	}
	if tr.remote != "" && tr.tls == nil && (err == nil || stageIndex(failedAt) > stageIndex(StageSTARTTLS)) {
		if credentialsSent(seen, err, failedAt) {
			add("The session is not encrypted: the credentials were sent in plaintext (allowed only because the server is on a loopback address or allowInsecureAuth is set).")
		} else {
			add("The session is not encrypted: messages travel in plaintext. Turn Enable TLS on if the server supports it.")
		}
	}
	if c.usesCredentials() && len(rep.Server.AuthMechanisms) > 0 {
		var unused []string
		for _, m := range rep.Server.AuthMechanisms {
			if m != tr.mech && !slices.Contains([]string{mechPlain, mechLogin, mechXOAuth2, mechOAuthBearer}, m) {
				unused = append(unused, m)
			}
		}
		if len(unused) > 0 {
			add("The server also offers %s, which this library does not use.", strings.Join(unused, " "))
		}
	}
	if tr.retried != nil {
		add("The server rejected the cached OAuth2 access token (%s); it was dropped and a fresh one was used.", v.detail(tr.retried, StageAuth))
	}
	if ts, ok := seen[StageSTARTTLS]; ok && ts.Outcome == OutcomeSkipped && s.ep.mode == tlsOpportunistic {
		add("Opportunistic TLS fell back to plaintext: %s.", v.skipReason(StageSTARTTLS, ts.Detail, tr))
	}
}

// credentialsSent reports whether the test sent credentials: AUTH passed,
// or failed after the exchange began — not when no usable mechanism was
// offered, the session was not secure enough, or the password could not be
// read.
func credentialsSent(seen map[Stage]StageResult, err error, failedAt Stage) bool {
	ts, ok := seen[StageAuth]
	if !ok || ts.Outcome == OutcomeSkipped {
		return false
	}
	if ts.Err == nil {
		return true
	}
	cause := ts.Err
	if failedAt == StageAuth && err != nil {
		cause = err
	}
	var mech *mechanismError
	return !errors.As(cause, &mech) && !errors.Is(cause, ErrInsecureAuth) && !errors.Is(cause, ErrInvalid)
}

// notProven says what the test cannot show.
func (s *Sender) notProven(rep *TestReport, opts *TestOptions) []string {
	out := []string{"That the server accepts a message's content: size limits, content filters and some send-as checks apply only after the message is sent."}
	if opts.ProbeRecipient == "" {
		out = append(out, "That the server accepts the sender and recipients: give a probe recipient to check MAIL FROM and RCPT TO.")
	} else {
		out = append(out, "That other recipients are accepted: only the probe recipient was checked.")
	}
	if !s.conn.usesCredentials() {
		out = append(out, "Anything about authentication: the connection does not authenticate.")
	}
	switch sv := rep.Server; {
	case sv.ChunkingUsed:
		out = append(out, "That the server handles what it advertises: sends pipeline their commands (PIPELINING) and send each message with BDAT (CHUNKING), which the test does not do; if sends fail where this test passes, set disablePipelining or disableChunking on the connection.")
	case sv.PipeliningUsed:
		out = append(out, "That the server handles what it advertises: sends pipeline their commands (PIPELINING), which the test does not do; if sends fail where this test passes, set disablePipelining on the connection.")
	}
	return out
}

// sentence builds the one human sentence of the report.
func (v *view) sentence(rep *TestReport, err error, failedAt Stage) string {
	s := v.s
	where := s.ep.addr()
	if err == nil {
		var b strings.Builder
		fmt.Fprintf(&b, "Connected to %s", where)
		switch {
		case s.ep.mode == tlsImplicit:
			fmt.Fprintf(&b, ", implicit TLS (%s)", rep.Server.TLSVersion)
		case rep.Server.TLSVersion != "":
			fmt.Fprintf(&b, ", STARTTLS (%s)", rep.Server.TLSVersion)
		default:
			b.WriteString(", without TLS")
		}
		if rep.Server.Mechanism != "" {
			fmt.Fprintf(&b, ", authenticated as %s with %s", s.conn.Username, rep.Server.Mechanism)
		}
		for _, st := range rep.Stages {
			if st.Stage == StageRcpt && st.Outcome == OutcomePassed {
				from := s.conn.From
				if a, err := mail.ParseAddress(from); err == nil {
					from = a.Address
				}
				fmt.Fprintf(&b, ", and the server accepts mail from %s to the probe recipient", from)
			}
		}
		fmt.Fprintf(&b, " in %d ms.", max(rep.Duration.Milliseconds(), 1))
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Test Connection to %s stopped at %s: %s.", where, stageName(failedAt), v.detail(err, failedAt))
	if len(rep.Hints) > 0 {
		b.WriteString(" " + rep.Hints[0])
	}
	return b.String()
}

func stageName(st Stage) string {
	switch st {
	case StageTLS:
		return "the TLS handshake"
	case StageEHLO:
		return "EHLO"
	case StageSTARTTLS:
		return "STARTTLS"
	case StageToken:
		return "the OAuth2 token"
	case StageAuth:
		return "authentication"
	case StageMail:
		return "MAIL FROM"
	case StageRcpt:
		return "RCPT TO"
	case StageReset:
		return "RSET"
	case StageQuit:
		return "QUIT"
	case "":
		return "an unknown stage"
	}
	return "the " + string(st) + " stage"
}
