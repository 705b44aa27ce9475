package emailconn

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/session"
)

// defaultTestTimeout bounds a whole Test Connection when
// TestOptions.Timeout is zero, so that a button in a UI never spins
// forever, even for a connection without timeouts; tests lower it.
var defaultTestTimeout = 30 * time.Second

// TestOptions configures a Test Connection. The zero value runs the
// protocol up to AUTH and QUIT, without a probe, within 30 seconds.
type TestOptions struct {
	// ProbeRecipient, when set, adds a probe after AUTH: MAIL FROM the
	// connection's sender, RCPT TO this address, then RSET. No message is
	// sent. Zero means no probe.
	ProbeRecipient string

	// Timeout bounds the whole test. Zero means 30 seconds, so that a button in a UI never
	// spins forever, even for a connection without timeouts.
	Timeout time.Duration

	// SampleActionLink is the action link rewritten for the preview of the
	// Email Actions Base URL. Zero means a sample under
	// Options.ActionOrigin.
	SampleActionLink string

	// OAuth2Config is the OAuth2 configuration an OAuth2 connection names,
	// for Connection.Test. A Registry uses its own.
	OAuth2Config *OAuth2Config

	// Options are the Sender options for Connection.Test
	// (DialPolicy, HTTPClient, Logger, ActionOrigin). A
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
	OutcomePassed  Outcome = "passed"
	OutcomeFailed  Outcome = "failed"
	OutcomeSkipped Outcome = "skipped" // not needed for this connection; Detail says why
	OutcomeNotRun  Outcome = "not run" // an earlier stage failed
)

// A StageResult is one rung of the Test Connection ladder, and one stage
// of a session for Trace.StageDone.
type StageResult struct {
	Stage    Stage         `json:"stage"`   // which stage
	Outcome  Outcome       `json:"outcome"` // what happened
	Duration time.Duration `json:"-"`       // how long it took; zero when it did not run or was skipped
	// Detail is the error of a failed stage, why a stage was skipped, or
	// what a passed stage found. In Trace.StageDone it is set only for a
	// skipped stage.
	Detail string `json:"detail,omitempty"`
	// Start is when the stage began, or was found not needed; zero when
	// it did not run.
	Start time.Time `json:"-"`
	// Err is why the stage failed, an *Error; nil when it did not fail,
	// and in a restricted report (TestOptions.Restricted), whose
	// TestReport.Err is the error to show.
	Err error `json:"-"`
}

// MarshalJSON writes the stage with its Duration as "durationMs", in
// milliseconds with microsecond precision.
func (r StageResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Stage      Stage   `json:"stage"`
		Outcome    Outcome `json:"outcome"`
		DurationMS float64 `json:"durationMs"`
		Detail     string  `json:"detail,omitempty"`
	}{r.Stage, r.Outcome, float64(r.Duration.Microseconds()) / 1000, r.Detail})
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
	TLSMode     string `json:"tlsMode"`
	TLSVersion  string `json:"tlsVersion,omitempty"`
	CipherSuite string `json:"cipherSuite,omitempty"`
	// Extensions are the EHLO keywords with their parameters, from the
	// last EHLO (after STARTTLS when there was one).
	Extensions []string `json:"extensions"`
	// AuthMechanisms are the SASL mechanisms offered; Mechanism is the one
	// used.
	AuthMechanisms []string `json:"authMechanisms"`
	Mechanism      string   `json:"mechanism,omitempty"`
	// MaxMessageSize is the SIZE the server announced; zero when none.
	MaxMessageSize int64 `json:"maxMessageSize,omitempty"`
	// Pipelining and Chunking report whether the server offers PIPELINING
	// (RFC 2920) and CHUNKING (RFC 3030). PipeliningUsed and ChunkingUsed
	// report whether sends through the connection use them: offered and
	// not switched off (Connection.DisablePipelining, DisableChunking);
	// CHUNKING is used only with PIPELINING. All false when the test did
	// not get as far as EHLO.
	Pipelining     bool `json:"pipelining"`
	PipeliningUsed bool `json:"pipeliningUsed"`
	Chunking       bool `json:"chunking"`
	ChunkingUsed   bool `json:"chunkingUsed"`
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

	// Limits are the sending limits in force for the connection (its
	// provider's defaults and its own limit fields, issue 14); nil when it
	// has neither.
	Limits *LimitsInfo `json:"limits,omitempty"`
	// Duration is how long the test took; in JSON "durationMs", in whole
	// milliseconds.
	Duration time.Duration `json:"-"`
	// Err is the error that stopped the test, nil when it passed; in JSON
	// "error", its text, left out when nil. In a restricted report
	// (TestOptions.Restricted) its message is the restricted text and
	// errors.Unwrap(Err) is the full error.
	Err error `json:"-"`
}

// MarshalJSON writes the report as the stable JSON an engine's UI reads,
// with "durationMs" and "error" derived from Duration and Err. It never
// fails and never writes a credential.
func (r TestReport) MarshalJSON() ([]byte, error) {
	type fields TestReport // without this method
	out := struct {
		fields
		DurationMS int64  `json:"durationMs"`
		Error      string `json:"error,omitempty"`
	}{fields: fields(r), DurationMS: r.Duration.Milliseconds()}
	if r.Err != nil {
		out.Error = r.Err.Error()
	}
	return json.Marshal(out)
}

// ladder is the order of the stages in a report.
var ladder = []Stage{StageResolve, StageConnect, StageTLS, StageGreeting, StageEHLO, StageSTARTTLS,
	StageToken, StageAuth, StageMail, StageRcpt, StageReset, StageQuit}

// Test is the Test Connection action for a connection that need not be
// saved anywhere (one being edited): it runs the real protocol against
// c's mail server up to, and never including, sending a message: resolve, connect, TLS, greeting,
// EHLO, STARTTLS with its handshake, OAuth2 token, AUTH, an optional
// MAIL FROM / RCPT TO probe followed by RSET, and QUIT. It always returns
// within opts.Timeout (30 seconds by default) and never returns nil; opts
// may be nil. It is safe for concurrent use.
//
// An OAuth2 connection needs opts.OAuth2Config; a Registry's
// TestConnection uses its own configurations and token cache. A caller
// that is not trusted with the engine's network — a tenant — should get a
// report made with opts.Restricted.
func (c Connection) Test(ctx context.Context, opts *TestOptions) *TestReport {
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
	ca := c.checkRefs(&p, goNames, &o.References)
	if c.authType() == authOAuth2 {
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
	s, err := newSender(c, o, ca)
	if err != nil {
		rep.invalid(err)
		return rep
	}
	if c.authType() == authOAuth2 {
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
// is "", with the registry's options and OAuth2 token caches. See
// Connection.Test.
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
		if errors.Is(err, ErrNotFound) {
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
	rep.OK, rep.Err = false, err
	rep.Stages = make([]StageResult, len(ladder))
	for i, st := range ladder {
		rep.Stages[i] = StageResult{Stage: st, Outcome: OutcomeNotRun}
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
	s.fillReport(rep, rec, err, opts, ctx)
	if s.opts.Store != nil {
		rep.Hints = append(rep.Hints, s.sharedHint())
	}
	return rep
}

// A testLimitError is the expiry of the test's own time limit
// (TestOptions.Timeout, 30 seconds by default): a timeout of this package,
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
			sess.Skip(ctx, string(st), "no probe recipient was given")
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
	}
	rep.Stages = v.ladder(tr, seen, err, failedAt)
	v.serverInfo(rep, tr, err)
	rep.Limits = s.limitsInfo()
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
func (v *view) seen(tr *testRecorder, err error, failedAt *Stage) map[Stage]StageResult {
	seen := map[Stage]StageResult{}
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
func (v *view) ladder(tr *testRecorder, seen map[Stage]StageResult, err error, failedAt Stage) []StageResult {
	var out []StageResult
	reached := true
	for _, st := range ladder {
		ts, ok := seen[st]
		res := StageResult{Stage: st}
		switch {
		case ok && ts.Outcome == OutcomeSkipped:
			res.Outcome, res.Detail = OutcomeSkipped, v.skipReason(st, ts.Detail, tr)
		case ok && ts.Err != nil:
			res.Outcome, res.Detail = OutcomeFailed, v.detail(ts.Err, st)
			if st == failedAt {
				res.Detail = v.detail(err, st) // classified: "connect timeout (5s) expired", not "i/o timeout"
			}
			reached = false
		case ok:
			res.Outcome = OutcomePassed
		case st == failedAt:
			res.Outcome, res.Detail = OutcomeFailed, v.detail(err, st)
			reached = false
		case !reached || err != nil && stageIndex(st) > stageIndex(failedAt):
			res.Outcome = OutcomeNotRun
		default:
			res.Outcome, res.Detail = OutcomeSkipped, v.s.whySkipped(st)
		}
		if ok {
			res.Duration, res.Start = ts.Duration, ts.Start
		}
		if res.Outcome == OutcomeFailed && !v.restricted {
			res.Err = ts.Err
			if st == failedAt || res.Err == nil {
				res.Err = err
			}
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
	_, rep.Server.Pipelining = extParam(rep.Server.Extensions, "PIPELINING")
	_, rep.Server.Chunking = extParam(rep.Server.Extensions, "CHUNKING")
	rep.Server.PipeliningUsed = rep.Server.Pipelining && !v.s.conn.DisablePipelining
	rep.Server.ChunkingUsed = rep.Server.PipeliningUsed && rep.Server.Chunking && !v.s.conn.DisableChunking
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

// report is built.
type testRecorder struct {
	stages  []StageResult
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
		StageDone: func(_ context.Context, i StageResult) {
			r.stages = append(r.stages, i)
			if i.Stage == StageAuth && i.Err != nil {
				r.authErr = i.Err
			}
		},
		Connected:        func(_ context.Context, addr string) { r.remote = addr },
		Capabilities:     func(_ context.Context, ext []string) { r.ext = ext },
		TLSHandshakeDone: func(_ context.Context, st tls.ConnectionState) { r.tls = &st },
		Authenticated:    func(_ context.Context, mech string) { r.mech = mech },
		TokenFetched: func(_ context.Context, i TokenInfo) {
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
