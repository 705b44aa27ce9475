package emailconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/oauthtoken"
	"github.com/emailconn/emailconn/internal/session"
	"github.com/emailconn/emailconn/internal/smtpconn"
)

// DefaultTestTimeout bounds a whole Test Connection when
// TestOptions.Timeout is zero, so that a button in a UI never spins
// forever, even for a connection without timeouts.
const DefaultTestTimeout = 30 * time.Second

// defaultTestTimeout is DefaultTestTimeout; tests lower it.
var defaultTestTimeout = DefaultTestTimeout

// TestOptions configures a Test Connection. The zero value runs the
// protocol up to AUTH and QUIT, without a probe, within DefaultTestTimeout.
type TestOptions struct {
	// ProbeRecipient, when set, adds a probe after AUTH: MAIL FROM the
	// connection's sender, RCPT TO this address, then RSET. No message is
	// sent. Zero means no probe.
	ProbeRecipient string

	// Timeout bounds the whole test. Zero means DefaultTestTimeout.
	Timeout time.Duration

	// SampleActionLink is the action link rewritten for the preview of the
	// Email Actions Base URL. Zero means a sample under
	// Options.ActionOrigin.
	SampleActionLink string

	// OAuth2Config is the OAuth2 configuration an OAuth2 connection names,
	// for the package function TestConnection. A Registry uses its own.
	OAuth2Config *OAuth2Config

	// Options are the Sender options for the package function
	// TestConnection (DialPolicy, HTTPClient, Logger, ActionOrigin). A
	// Registry uses its own. Nil means the defaults.
	Options *Options

	// Restricted makes the report fit for a caller who is not trusted with
	// the engine's network, such as a tenant testing a connection it
	// entered. It keeps what an administrator of the connection needs —
	// each stage's outcome, reply codes, the TLS version, whether the
	// certificate verified and when it expires, the standard extensions
	// and AUTH mechanisms, hints and warnings — and leaves out what the
	// engine's position reveals: the text of every server reply (banners,
	// host names, software versions), the address a name resolved to, the
	// certificate's names and issuer, resolver addresses and error texts
	// of the network stack and of the token endpoint. A name that does
	// not resolve and one that resolves to an address the dial policy
	// refuses are reported identically, at the resolve stage, so that a
	// tenant cannot tell internal names that exist from names that do not.
	// Err's message is the restricted text; errors.Unwrap(Err) is the full
	// error, for the engine's own logs. Durations are still reported, and
	// a destination the dial policy allows answers as it does; see the
	// README's security section. Zero means the full report, for
	// administrators of the engine.
	Restricted bool
}

// An Outcome is what happened at one stage of a Test Connection.
type Outcome string

// The outcomes of a stage.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped" // not needed for this connection; Detail says why
	NotRun  Outcome = "not run" // an earlier stage failed
)

// A StageResult is one rung of the Test Connection ladder.
type StageResult struct {
	Stage    Stage         `json:"stage"`   // which stage
	Outcome  Outcome       `json:"outcome"` // what happened
	Duration time.Duration `json:"-"`       // how long it took; zero when it did not run
	// DurationMS is Duration in milliseconds, with microsecond precision.
	DurationMS float64 `json:"durationMs"`
	// Detail is the error of a failed stage, why a stage was skipped, or
	// what a passed stage found.
	Detail string `json:"detail,omitempty"`
}

// ServerInfo is what the server offered and what the test used.
type ServerInfo struct {
	// Host and Port are the configured server; Address is the address
	// that was dialled.
	Host    string `json:"host"`
	Port    int    `json:"port"`
	Address string `json:"address,omitempty"`
	// TLSMode is the mode used; TLSVersion and CipherSuite describe the
	// TLS session, when there was one.
	TLSMode     TLSMode `json:"tlsMode"`
	TLSVersion  string  `json:"tlsVersion,omitempty"`
	CipherSuite string  `json:"cipherSuite,omitempty"`
	// Extensions are the EHLO keywords with their parameters, from the
	// last EHLO (after STARTTLS when there was one).
	Extensions []string `json:"extensions"`
	// AuthMechanisms are the SASL mechanisms offered; Mechanism is the one
	// used.
	AuthMechanisms []string `json:"authMechanisms"`
	Mechanism      string   `json:"mechanism,omitempty"`
	// MaxMessageSize is the SIZE the server announced; zero when none.
	MaxMessageSize int64 `json:"maxMessageSize,omitempty"`
}

// CertificateInfo describes the server's certificate.
type CertificateInfo struct {
	Subject   string    `json:"subject"`     // the subject's distinguished name
	DNSNames  []string  `json:"dnsNames"`    // the DNS names it is valid for
	IPs       []string  `json:"ipAddresses"` // the IP addresses it is valid for
	Issuer    string    `json:"issuer"`      // the issuer's distinguished name
	NotBefore time.Time `json:"notBefore"`   // start of validity
	NotAfter  time.Time `json:"notAfter"`    // end of validity
	// Verified reports whether the certificate was verified for the
	// configured host; a certificate that failed verification is shown to
	// explain why.
	Verified bool `json:"verified"`
}

// A TestReport is the result of a Test Connection: every stage with its
// outcome and duration, what the server offered and what was used, the
// certificate, warnings, hints and one sentence for the administrator. It
// never contains a credential or token, and marshals to stable JSON for an
// engine's UI.
type TestReport struct {
	// Connection is the connection's name.
	Connection string `json:"connection"`
	// OK reports whether every stage that ran passed.
	OK bool `json:"ok"`
	// Sentence says in one sentence what was proven, or where the test
	// stopped and what to change. On success it contains no word of error
	// or failure.
	Sentence string `json:"sentence"`
	// Stages are the stages in order: resolve, connect, tls, greeting,
	// ehlo, starttls, oauth2 token, auth, mail, rcpt, rset, quit.
	Stages []StageResult `json:"stages"`
	// Server is what the server offered and what was used.
	Server ServerInfo `json:"server"`
	// Certificate is the server's certificate, when there was TLS.
	Certificate *CertificateInfo `json:"certificate,omitempty"`
	// Hints say what to change, where the cause is recognisable.
	Hints []string `json:"hints"`
	// Warnings are problems that did not fail the test.
	Warnings []string `json:"warnings"`
	// NotProven says what the test cannot show.
	NotProven []string `json:"notProven"`
	// ActionLinkPreview is a sample action link rewritten with the Email
	// Actions Base URL, when the connection has one.
	ActionLinkPreview string `json:"actionLinkPreview,omitempty"`
	// Duration is how long the test took.
	Duration time.Duration `json:"-"`
	// DurationMS is Duration in milliseconds.
	DurationMS int64 `json:"durationMs"`
	// Err is the error that stopped the test, nil when it passed. In a
	// restricted report (TestOptions.Restricted) its message is the
	// restricted text and errors.Unwrap(Err) is the full error.
	Err error `json:"-"`
	// Error is Err's text.
	Error string `json:"error,omitempty"`
}

// JSON is json.Marshal of the report, indented.
func (r *TestReport) JSON() []byte {
	b, _ := json.MarshalIndent(r, "", "  ")
	return b
}

// ladder is the order of the stages in a report.
var ladder = []Stage{StageResolve, StageConnect, StageTLS, StageGreeting, StageEHLO, StageSTARTTLS,
	StageToken, StageAuth, StageMail, StageRcpt, StageReset, StageQuit}

// TestConnection runs the real protocol against c's mail server up to, and
// never including, sending a message: resolve, connect, TLS, greeting,
// EHLO, STARTTLS with its handshake, OAuth2 token, AUTH, an optional
// MAIL FROM / RCPT TO probe followed by RSET, and QUIT. c need not be saved
// anywhere. It always returns within opts.Timeout (DefaultTestTimeout).
//
// An OAuth2 connection needs opts.OAuth2Config; a Registry's
// TestConnection uses its own configurations and token cache. A caller
// that is not trusted with the engine's network — a tenant — should get a
// report made with opts.Restricted.
func TestConnection(ctx context.Context, c Connection, opts *TestOptions) *TestReport {
	var to TestOptions
	if opts != nil {
		to = *opts
	}
	var o Options
	if to.Options != nil {
		o = *to.Options
	}
	rep := newReport(&c)
	var p problems
	c.validate(&p, goNames)
	c.checkRefs(&p, goNames, &o.References)
	if c.authType() == AuthOAuth2 {
		switch {
		case to.OAuth2Config == nil:
			p.add("OAuth2Config", "TestOptions.OAuth2Config is needed to test an OAuth2 connection")
		case to.OAuth2Config.Name != c.OAuth2Config:
			p.add("OAuth2Config", "names %q but TestOptions.OAuth2Config is %q", c.OAuth2Config, to.OAuth2Config.Name)
		default:
			sub := problems{prefix: "TestOptions.OAuth2Config."}
			to.OAuth2Config.validate(&sub, oauth2GoNames)
			to.OAuth2Config.checkRefs(&sub, oauth2GoNames, &o.References)
			p.errs = append(p.errs, sub.errs...)
		}
	}
	if err := p.err(); err != nil {
		rep.invalid(err)
		return rep
	}
	s, err := newSender(c, o)
	if err != nil {
		rep.invalid(err)
		return rep
	}
	if c.authType() == AuthOAuth2 {
		s.tokens = cacheTokens{e: newOAuthEntry(*to.OAuth2Config, &o, func(ctx context.Context, _ *oauthEntry, rt string) error {
			if o.OnRefreshToken != nil {
				return o.OnRefreshToken(ctx, to.OAuth2Config.Name, rt)
			}
			return nil
		}), logger: o.Logger}
	}
	defer s.Close()
	return s.test(ctx, &to, rep)
}

// TestConnection tests the named connection, or the grid settings when name
// is "", with the registry's options and OAuth2 token caches. See the
// package function TestConnection.
func (r *Registry) TestConnection(ctx context.Context, name string, opts *TestOptions) *TestReport {
	var to TestOptions
	if opts != nil {
		to = *opts
	}
	s, err := r.Sender(name)
	if err != nil {
		rep := &TestReport{Connection: name, Hints: []string{}, Warnings: []string{}, NotProven: []string{}}
		if to.Restricted && !errors.Is(err, ErrClosed) {
			// The full error suggests similar names: other tenants'
			// connections.
			err = &restrictedError{msg: fmt.Sprintf("emailconn: connection %q is not available", name), err: err}
		}
		rep.invalid(err)
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrNoRoute) {
			rep.Sentence = "The connection was not tested: " + strings.TrimPrefix(err.Error(), "emailconn: ") + "."
		}
		return rep
	}
	return s.test(ctx, &to, newReport(&s.conn))
}

func newReport(c *Connection) *TestReport {
	rep := &TestReport{Connection: c.Name, Hints: []string{}, Warnings: []string{}, NotProven: []string{}}
	if host, _, prob := splitMailServer(c.MailServer); prob == "" {
		ep := c.endpoint()
		rep.Server = ServerInfo{Host: host, Port: ep.port, TLSMode: ep.mode}
	}
	rep.Server.Extensions, rep.Server.AuthMechanisms = []string{}, []string{}
	return rep
}

// invalid reports a configuration that cannot be tested.
func (rep *TestReport) invalid(err error) {
	rep.OK, rep.Err, rep.Error = false, err, err.Error()
	rep.Stages = make([]StageResult, len(ladder))
	for i, st := range ladder {
		rep.Stages[i] = StageResult{Stage: st, Outcome: NotRun}
	}
	msgs := []string{}
	var multi interface{ Unwrap() []error }
	if errors.As(err, &multi) {
		for _, e := range multi.Unwrap() {
			msgs = append(msgs, strings.TrimPrefix(e.Error(), "emailconn: "))
		}
	} else {
		msgs = append(msgs, strings.TrimPrefix(err.Error(), "emailconn: "))
	}
	rep.Sentence = "The connection was not tested because its settings are not valid: " + strings.Join(msgs, "; ") + "."
}

// test runs the stages on a new session and builds the report.
func (s *Sender) test(ctx context.Context, opts *TestOptions, rep *TestReport) *TestReport {
	start := time.Now()
	limit := opts.Timeout
	if limit <= 0 {
		limit = defaultTestTimeout
	}
	testCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	rec := &testRecorder{}
	sess, err := s.newOpener(rec.trace()).open(testCtx)
	if err == nil {
		release := sess.Conn.Bind(testCtx)
		err = s.probe(testCtx, sess, opts.ProbeRecipient)
		if err == nil {
			// Everything was proven before QUIT; a QUIT without a reply
			// takes nothing away from that.
			t := time.Now()
			_ = sess.Client.Quit()
			sess.Stage(testCtx, string(StageQuit), t, nil)
			sess.Close()
		} else {
			sess.End(err)
		}
		release()
	}
	// The test's own limit expired (the connection's deadline, which is
	// the same, may notice a moment before the context does), not the
	// caller's context.
	deadline, _ := testCtx.Deadline()
	parentDeadline, parentHas := ctx.Deadline()
	if err != nil && ctx.Err() == nil && (!parentHas || parentDeadline.After(deadline)) && !time.Now().Before(deadline) {
		err = testLimitExpired(err, limit)
	}
	rep.Duration = time.Since(start)
	rep.DurationMS = rep.Duration.Milliseconds()
	s.fillReport(rep, rec, err, opts, ctx)
	return rep
}

// A testLimitError is the expiry of the test's own time limit
// (TestOptions.Timeout or DefaultTestTimeout): a timeout of this package,
// reported as ErrTimeout, not as the caller's context error.
type testLimitError struct{ limit time.Duration }

func (e *testLimitError) Error() string {
	return fmt.Sprintf("no reply within the test's time limit (%v)", e.limit)
}

// testLimitExpired turns the context error that the test's time limit
// caused into a timeout of the stage that was running.
func testLimitExpired(err error, limit time.Duration) error {
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return limitError(e, limit)
}

// A restrictedError is the error of a restricted report: its message holds
// only what the restricted report shows; it unwraps to the full error, for
// the engine.
type restrictedError struct {
	msg string
	err error
}

func (e *restrictedError) Error() string { return e.msg }
func (e *restrictedError) Unwrap() error { return e.err }

// probe sends MAIL FROM and RCPT TO, then RSET.
func (s *Sender) probe(ctx context.Context, sess *session.Session, rcpt string) error {
	if rcpt == "" {
		for _, st := range []Stage{StageMail, StageRcpt, StageReset} {
			sess.Skip(string(st), "no probe recipient was given")
		}
		return nil
	}
	var p problems
	var from string
	if s.conn.From == "" {
		p.add("From", "the connection has no sender address to probe with")
	} else if a, ok := parseAddress(&p, "From", s.conn.From); ok {
		from = a.Address
	}
	to, _ := parseAddress(&p, "ProbeRecipient", rcpt)
	if err := p.err(); err != nil {
		e := &session.Error{Stage: string(StageMail), Err: err, Remote: sess.Remote, Usable: true}
		sess.Stage(ctx, e.Stage, time.Now(), e)
		return s.classify(ctx, e)
	}
	var opts *smtp.MailOptions
	if compose.NeedsSMTPUTF8(from, to.Address) {
		opts = &smtp.MailOptions{UTF8: true}
	}
	steps := []struct {
		stage Stage
		do    func() error
	}{
		{StageMail, func() error { return sess.Client.Mail(from, opts) }},
		{StageRcpt, func() error { return sess.Client.Rcpt(to.Address, nil) }},
		{StageReset, sess.Client.Reset},
	}
	for _, st := range steps {
		t := time.Now()
		if err := st.do(); err != nil {
			e := sess.Fail(string(st.stage), err)
			sess.Stage(ctx, e.Stage, t, e)
			return s.classify(ctx, e)
		}
		sess.Stage(ctx, string(st.stage), t, nil)
	}
	return nil
}

// fillReport turns the recorded events into the report's ladder,
// findings and sentence.
func (s *Sender) fillReport(rep *TestReport, tr *testRecorder, err error, opts *TestOptions, parent context.Context) {
	v := &view{s: s, restricted: opts.Restricted, parent: parent}
	failedAt := Stage("")
	var e *Error
	if errors.As(err, &e) {
		failedAt = e.Stage
	}
	seen := v.seen(tr, err, &failedAt)
	rep.Err = err
	rep.OK = err == nil
	if err != nil {
		if v.restricted {
			rep.Err = &restrictedError{msg: v.errorText(err, failedAt), err: err}
		}
		rep.Error = rep.Err.Error()
	}
	rep.Stages = v.ladder(tr, seen, err, failedAt)
	v.serverInfo(rep, tr, err)
	v.actionLinkPreview(rep, opts)
	v.warnings(rep, tr, seen, err, failedAt)
	if err != nil {
		rep.Hints = append(rep.Hints, v.hints(rep, tr, err, failedAt, opts)...)
	}
	rep.NotProven = s.notProven(rep, opts)
	rep.Sentence = v.sentence(rep, err, failedAt)
}

// seen returns the last event of each stage. In a restricted report a
// name that does not resolve and one that resolves to a refused address
// look the same: failed at resolve, connect not run.
func (v *view) seen(tr *testRecorder, err error, failedAt *Stage) map[Stage]StageInfo {
	seen := map[Stage]StageInfo{}
	for _, ts := range tr.stages {
		seen[ts.Stage] = ts // the last attempt at a stage wins
	}
	if v.restricted && v.s.unresolvable(err, *failedAt) {
		res := seen[StageResolve]
		if conn, ok := seen[StageConnect]; ok {
			res.Duration = conn.Start.Add(conn.Duration).Sub(res.Start)
		}
		res.Stage, res.Err = StageResolve, err
		seen[StageResolve] = res
		delete(seen, StageConnect)
		*failedAt = StageResolve
	}
	return seen
}

// ladder is the report's stages in order, each with its outcome.
func (v *view) ladder(tr *testRecorder, seen map[Stage]StageInfo, err error, failedAt Stage) []StageResult {
	var out []StageResult
	reached := true
	for _, st := range ladder {
		ts, ok := seen[st]
		res := StageResult{Stage: st}
		switch {
		case ok && ts.Skipped != "":
			res.Outcome, res.Detail = Skipped, v.skipReason(st, ts.Skipped, tr)
		case ok && ts.Err != nil:
			res.Outcome, res.Detail = Failed, v.detail(ts.Err, st)
			if st == failedAt {
				res.Detail = v.detail(err, st) // classified: "connect timeout (5s) expired", not "i/o timeout"
			}
			reached = false
		case ok:
			res.Outcome = Passed
		case st == failedAt:
			res.Outcome, res.Detail = Failed, v.detail(err, st)
			reached = false
		case !reached || err != nil && stageIndex(st) > stageIndex(failedAt):
			res.Outcome = NotRun
		default:
			res.Outcome, res.Detail = Skipped, v.s.whySkipped(st)
		}
		if ok {
			res.Duration = ts.Duration
			res.DurationMS = float64(res.Duration.Microseconds()) / 1000
		}
		out = append(out, res)
	}
	return out
}

// serverInfo fills in what the server offered and what was used.
func (v *view) serverInfo(rep *TestReport, tr *testRecorder, err error) {
	if tr.remote != "" && !v.restricted {
		rep.Server.Address = tr.remote
	}
	if tr.tls != nil {
		rep.Server.TLSVersion = tls.VersionName(tr.tls.Version)
		rep.Server.CipherSuite = tls.CipherSuiteName(tr.tls.CipherSuite)
		if len(tr.tls.PeerCertificates) > 0 {
			rep.Certificate = certInfo(tr.tls.PeerCertificates[0], true)
		}
	}
	if rep.Certificate == nil {
		var ce *tls.CertificateVerificationError
		if errors.As(err, &ce) && len(ce.UnverifiedCertificates) > 0 {
			rep.Certificate = certInfo(ce.UnverifiedCertificates[0], false)
		}
	}
	if rep.Certificate != nil && v.restricted {
		c := rep.Certificate
		c.Subject, c.Issuer, c.DNSNames, c.IPs = "", "", []string{}, []string{}
	}
	if tr.ext != nil {
		rep.Server.Extensions = tr.ext
		if v.restricted {
			rep.Server.Extensions = standardExtensions(tr.ext)
		}
	}
	auth, _ := extParam(rep.Server.Extensions, "AUTH")
	rep.Server.AuthMechanisms = mechanismsIn(auth)
	if rep.Server.AuthMechanisms == nil {
		rep.Server.AuthMechanisms = []string{}
	}
	if size, ok := extParam(rep.Server.Extensions, "SIZE"); ok {
		rep.Server.MaxMessageSize, _ = strconv.ParseInt(strings.TrimSpace(size), 10, 64)
	}
	rep.Server.Mechanism = tr.mech
}

// actionLinkPreview rewrites a sample action link with the connection's
// Email Actions Base URL.
func (v *view) actionLinkPreview(rep *TestReport, opts *TestOptions) {
	s := v.s
	if s.base == nil {
		return
	}
	if s.origin == nil {
		rep.Warnings = append(rep.Warnings, "Options.ActionOrigin is not set: a message with a body cannot be sent through this connection, because its action links could not be recognised and rewritten.")
	}
	sample := opts.SampleActionLink
	if sample == "" {
		origin := "http://engine.invalid"
		if s.origin != nil {
			origin = s.origin.String()
		}
		sample = origin + "/actions/approve?workunit=4711&action=approve"
	}
	if out, rerr := s.base.Rewrite(sample); rerr == nil {
		rep.ActionLinkPreview = out
	} else {
		rep.Warnings = append(rep.Warnings, "The sample action link could not be rewritten: "+rerr.Error()+".")
	}
}

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
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var dnsErr *net.DNSError
	var oe *oauthtoken.Error
	var protoErr textproto.ProtocolError
	var notSMTP *smtpconn.NotSMTPError
	var rootsErr x509.SystemRootsError
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
	case errors.Is(err, ErrReplyTooLarge):
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
		if v.s.ep.mode == TLSOpportunistic {
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
		if s.ep.mode == TLSImplicit {
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
func (v *view) warnings(rep *TestReport, tr *testRecorder, seen map[Stage]StageInfo, err error, failedAt Stage) {
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
	case s.ep.mode == TLSImplicit && (s.ep.port == 587 || s.ep.port == 25):
		add("Implicit TLS on port %d: port %d usually expects STARTTLS; implicit TLS is usually on port 465.", s.ep.port, s.ep.port)
	case (s.ep.mode == TLSStartTLS || s.ep.mode == TLSOpportunistic) && s.ep.port == 465:
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
	if ts, ok := seen[StageSTARTTLS]; ok && ts.Skipped != "" && s.ep.mode == TLSOpportunistic {
		add("Opportunistic TLS fell back to plaintext: %s.", v.skipReason(StageSTARTTLS, ts.Skipped, tr))
	}
}

// credentialsSent reports whether the test sent credentials: AUTH passed,
// or failed after the exchange began — not when no usable mechanism was
// offered, the session was not secure enough, or the password could not be
// read.
func credentialsSent(seen map[Stage]StageInfo, err error, failedAt Stage) bool {
	ts, ok := seen[StageAuth]
	if !ok || ts.Skipped != "" {
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
		case s.ep.mode == TLSImplicit:
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
			if st.Stage == StageRcpt && st.Outcome == Passed {
				from := s.conn.From
				if a, err := mail.ParseAddress(from); err == nil {
					from = a.Address
				}
				fmt.Fprintf(&b, ", and the server accepts mail from %s to the probe recipient", from)
			}
		}
		fmt.Fprintf(&b, " in %d ms.", max(rep.DurationMS, 1))
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

// hints recognises causes and says what to change. A hint is chosen from
// the failing stage, the error's typed cause and what the session showed,
// never from the text of an error.
func (v *view) hints(rep *TestReport, tr *testRecorder, err error, at Stage, opts *TestOptions) []string {
	s := v.s
	var hints []string
	add := func(format string, a ...any) { hints = append(hints, fmt.Sprintf(format, a...)) }
	var tle *testLimitError
	capped := errors.As(err, &tle)
	if capped {
		add("The test reached its time limit (%v) without a reply: configure smtpConnectionTimeout and smtpTimeout so that a silent server is reported at the stage where it stopped.", tle.limit)
	}
	if at == StageToken {
		// The token endpoint failed, not the mail server.
		return append(hints, v.tokenHints(err, capped)...)
	}
	host, port, mode := s.ep.host, s.ep.port, s.ep.mode
	var se *SMTPError
	hasSMTP := errors.As(err, &se)
	enh := ""
	if hasSMTP {
		enh = se.Enhanced()
	}
	offersSTARTTLS := slices.ContainsFunc(rep.Server.Extensions, func(e string) bool { return strings.EqualFold(e, "STARTTLS") })
	var dnsErr *net.DNSError
	var rh tls.RecordHeaderError
	var hostErr x509.HostnameError
	var uaErr x509.UnknownAuthorityError
	var invErr x509.CertificateInvalidError
	var rootsErr x509.SystemRootsError
	var mech *mechanismError
	var tre *tokenRejectedError
	switch {
	case v.restricted && s.unresolvable(err, at):
		// The same whether the name does not exist or the dial policy
		// refuses what it resolves to.
		add("Check the spelling of the mail server's name %s: this engine connects only to addresses it is allowed to reach.", host)
	case errors.Is(err, ErrBlocked):
		add("The dial policy does not allow this destination.")
	case at == StageResolve && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		add("The host name %s does not resolve: check its spelling, and that this machine's DNS can see it.", host)
	case at == StageResolve && errors.As(err, &dnsErr):
		add("The host name %s could not be resolved right now (DNS %s): check this machine's DNS.", host, dnsErr.Err)
	case at == StageConnect && errors.Is(err, syscall.ECONNREFUSED):
		add("Nothing accepts connections on %s port %d: check the port (465 for implicit TLS, 587 for STARTTLS, 25 for relays) and any firewall.", host, port)
	case at == StageConnect && (errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)):
		add("No route to %s: check the network path and firewalls.", host)
	case at == StageConnect && errors.Is(err, ErrTimeout):
		add("No answer from %s port %d: a firewall may drop the connection, or the host is down.", host, port)
	case (at == StageGreeting || at == StageEHLO) && errors.Is(err, ErrTimeout) && mode != TLSImplicit:
		if port == 465 {
			add("The server did not greet: port 465 expects implicit TLS. Set tlsMode to \"implicit\" (or keep Enable TLS on with port 465).")
		} else {
			add("The server accepted the connection but sent no greeting: if port %d expects implicit TLS, set tlsMode to \"implicit\"; otherwise the server is overloaded or a firewall interferes.", port)
		}
	case at == StageTLS && errors.As(err, &rh):
		add("The server does not speak TLS on port %d: it is probably a plaintext or STARTTLS port. Use STARTTLS (Enable TLS on port 587) instead of implicit TLS, or the server's implicit-TLS port (465).", port)
	case at == StageTLS && errors.Is(err, ErrTimeout):
		add("The TLS handshake did not complete: check that port %d expects implicit TLS.", port)
	case errors.As(err, &hostErr) && v.restricted:
		add("The server's certificate is not valid for %s: use a name the certificate is issued for as the mail server.", host)
	case errors.As(err, &hostErr):
		add("The certificate is for %s, not %s: use one of those names as the mail server.", certNames(hostErr.Certificate), host)
	case errors.As(err, &uaErr):
		issuer := ""
		if uaErr.Cert != nil && !v.restricted {
			issuer = " (issued by " + uaErr.Cert.Issuer.String() + ")"
		}
		if s.conn.CAFile != "" {
			add("The certificate%s is not signed by an authority in caFile: caFile replaces the system's trusted authorities, so it must hold the CA certificate that issued the server's certificate (or leave caFile empty for a server whose certificate is publicly trusted).", issuer)
		} else {
			add("The certificate is signed by an authority this machine does not trust%s: for a private relay, set caFile to the relay's CA certificate.", issuer)
		}
	case errors.As(err, &rootsErr):
		add("This machine has no trusted certificate authorities to verify the server's certificate with: install the system's CA certificates, or set caFile to the CA that issued the server's certificate.")
	case errors.As(err, &invErr) && invErr.Reason == x509.Expired:
		add("The server's certificate has expired (on %s): the server's administrator must renew it.", invErr.Cert.NotAfter.UTC().Format("2006-01-02"))
	case at == StageSTARTTLS && errors.Is(err, errNoSTARTTLS):
		add("The server does not offer STARTTLS on port %d: check the port (587 usually offers it; use 465 with implicit TLS), or whether something between strips STARTTLS.", port)
	case at == StageSTARTTLS && errors.Is(err, errSTARTTLSInjection):
		add("Something between this machine and the server tampers with the connection (data injected before TLS): do not send through it.")
	case errors.Is(err, ErrReplyTooLarge) || (at == StageGreeting || at == StageEHLO) && errors.Is(err, ErrConnect) && !hasSMTP && isPermanentConnect(err):
		add("The service on %s port %d does not speak SMTP: check the host and port.", host, port)
	case errors.As(err, &mech) && len(mech.offered) == 0:
		switch {
		case tr.tls != nil:
			add("The server offers no AUTH, although the session is encrypted: it does not accept authentication from this client on port %d (relay ports such as 25 often do not; submission is on 587 or 465), or it accepts mail without it — then leave the user name empty.", port)
		case offersSTARTTLS:
			add("The server offers STARTTLS and no AUTH before it: turn Enable TLS on, so that AUTH is offered on the encrypted session.")
		default:
			add("The server offers neither AUTH nor STARTTLS on port %d: it does not accept authentication here. Check the port (587 for submission), or leave the user name empty if it accepts mail without authentication.", port)
		}
	case errors.As(err, &mech):
		offered := strings.Join(saslNames(mech.offered), " ")
		if s.conn.authType() == AuthOAuth2 {
			add("The server offers %s but not XOAUTH2 or OAUTHBEARER: it does not accept OAuth2 here.", offered)
		} else {
			add("The server offers %s but not PLAIN or LOGIN: it does not accept a user name and password here (try OAuth2 if it offers XOAUTH2).", offered)
		}
	case errors.Is(err, ErrInsecureAuth):
		add("Turn Enable TLS on, so that the credentials travel encrypted; set allowInsecureAuth only on a trusted network.")
	case errors.Is(err, ErrReauthorize):
		add("The OAuth2 configuration %q must be authorised again: its refresh token was revoked or expired.", s.conn.OAuth2Config)
	case hasSMTP && se.Code == 535 && enh == "5.7.139":
		add("SMTP AUTH (Basic authentication) is disabled for this Microsoft 365 tenant or mailbox: enable Authenticated SMTP for the mailbox %s, or switch the connection to OAuth2.", s.conn.Username)
	case hasSMTP && se.Code == 535 && enh == "5.7.3" || errors.As(err, &tre) && strings.Contains(strings.ToLower(s.ep.host), "office365"):
		add("Microsoft 365 rejected the login: for OAuth2, the app needs the SMTP.SendAsApp permission with admin consent, its service principal registered in Exchange with access to the mailbox %s, and a token for https://outlook.office365.com; for Basic auth, check the password and that Authenticated SMTP is enabled.", s.conn.Username)
	case errors.As(err, &tre):
		detail := ""
		if tre.failure != nil && !v.restricted {
			detail = " (" + tre.failure.String() + ")"
		}
		add("The server rejected the OAuth2 access token for %s%s: check that the token's scope covers SMTP (Google: https://mail.google.com/) and that it was issued for this mailbox.", s.conn.Username, detail)
	case hasSMTP && se.Code == 534 && enh == "5.7.9":
		add("Google requires an app password or OAuth2 for this account: create an app password, or switch the connection to OAuth2.")
	case hasSMTP && rep.Server.TLSVersion == "" && (se.Code == 538 || se.Code == 530 && (at == StageAuth || offersSTARTTLS)):
		// 530 to AUTH is "STARTTLS first" (RFC 3207); 538 is "encryption
		// required" (RFC 4954).
		add("The server requires STARTTLS before this command: turn Enable TLS on.")
	case hasSMTP && se.Code == 530 && !s.conn.usesCredentials():
		add("The server requires authentication before sending: set a user name and password (or OAuth2).")
	case hasSMTP && se.Code == 530 && v.restricted:
		add("The server refused the command before authentication succeeded.")
	case hasSMTP && se.Code == 530:
		add("The server refused the command before authentication succeeded (%s).", se.Message)
	case hasSMTP && se.Code == 550 && enh == "5.7.30":
		add("Basic authentication is retired for client submission on this server: switch the connection to OAuth2.")
	case hasSMTP && se.Code == 504 && enh == "5.7.4":
		add("The server does not recognise the authentication mechanism: it offers %s; Microsoft 365 accepts only LOGIN and XOAUTH2.", strings.Join(rep.Server.AuthMechanisms, " "))
	case hasSMTP && se.Code == 535:
		add("The server rejected the credentials of %s: check the user name and password.", s.conn.Username)
	case hasSMTP && at == StageMail && enh == "5.7.60" || hasSMTP && at == StageRcpt && enh == "5.7.60":
		add("The user %s may not send as %s: grant it Send As permission for that address, or change the connection's sender.", s.conn.Username, s.conn.From)
	case hasSMTP && (at == StageRcpt || at == StageMail) && enh == "5.7.1":
		add("The server refuses to relay from %s to the probe recipient: the account may not send for this sender, or the server does not accept mail for that domain from this client.", s.conn.From)
	case hasSMTP && at == StageRcpt && enh == "5.1.1":
		add("The probe recipient does not exist on that server.")
	case hasSMTP && se.Code == 421:
		add("The server closed the session (421): it may be overloaded or refuse this client; try again later.")
	case hasSMTP && (at == StageMail || at == StageRcpt) && se.Temporary():
		what := "the probe recipient"
		if at == StageMail {
			what = "the sender " + s.conn.From
		}
		switch {
		case se.Code == 452 || enh == "4.2.2" || enh == "4.3.1":
			add("The server temporarily refused %s (%d): the mailbox or the server is out of space, or a limit was reached. A send is retried later; if this lasts, ask the server's administrator.", what, se.Code)
		default:
			add("The server temporarily refused %s (%d): greylisting, a rate limit or a passing problem on the server. A send is retried later; run the test again in a few minutes, and if the refusal lasts, ask the server's administrator.", what, se.Code)
		}
	case hasSMTP && at == StageRcpt:
		add("The server refuses the probe recipient (%d): check the address, and that the server accepts mail for its domain from this sender.", se.Code)
	case hasSMTP && at == StageMail:
		add("The server refuses the sender %s (%d): check the connection's sender address, and that the account may send as it.", s.conn.From, se.Code)
	case errors.Is(err, ErrTimeout) && !capped:
		add("The server did not reply in time: it may be overloaded, or a firewall interferes.")
	}
	return hints
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
// report is built.
type testRecorder struct {
	stages  []StageInfo
	remote  string
	tls     *tls.ConnectionState
	ext     []string // the extensions of the last EHLO
	mech    string
	authErr error // the last failure of AUTH
	retried error // a rejected access token, retried with a fresh one
}

// trace returns the Trace that records into r.
func (r *testRecorder) trace() *Trace {
	return &Trace{
		StageDone: func(i StageInfo) {
			r.stages = append(r.stages, i)
			if i.Stage == StageAuth && i.Err != nil {
				r.authErr = i.Err
			}
		},
		Connected:        func(addr string) { r.remote = addr },
		Capabilities:     func(ext []string) { r.ext = ext },
		TLSHandshakeDone: func(st tls.ConnectionState) { r.tls = &st },
		Authenticated:    func(mech string) { r.mech = mech },
		TokenFetched: func(i TokenInfo) {
			if i.Retry {
				r.retried = r.authErr
			}
		},
	}
}

// extParam returns the parameters of the extension kw among EHLO lines.
func extParam(lines []string, kw string) (string, bool) {
	for _, l := range lines {
		if k, v, _ := strings.Cut(l, " "); strings.EqualFold(k, kw) {
			return v, true
		}
	}
	return "", false
}
