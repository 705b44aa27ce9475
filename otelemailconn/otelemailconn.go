// Package otelemailconn reports what emailconn Senders do to OpenTelemetry:
// metrics an operator can alert on, and a span per send linked to the
// caller's. It is an emailconn.Trace: set the one New returns as
// emailconn.Options.Trace.
//
//	trace, err := otelemailconn.New() // the global MeterProvider and TracerProvider
//	...
//	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{Trace: trace})
//
// The package depends on the OpenTelemetry API only; the engine brings
// the SDK and its exporters (Prometheus, OTLP, …). There is no
// OpenTelemetry semantic convention for SMTP yet
// (open-telemetry/semantic-conventions#1945); the names below follow the
// general conventions (server.address, server.port, error.type) and
// MailKit's mailkit.net.smtp.client.* instruments, the nearest precedent.
//
// # Metrics
//
// All durations are in seconds. Every attribute is bounded by the
// configuration: a connection's or OAuth2 configuration's name, its mail
// server, and fixed vocabularies. No recipient, sender address, subject,
// message ID, server reply text or secret is ever recorded.
//
//	instrument                      kind           unit       attributes
//	emailconn.sends                 Counter        {send}     connection, outcome, error.type, smtp.status_class, server.*
//	emailconn.send.duration         Histogram      s          the same; from the call to its return, retries and waits included
//	emailconn.send.retries          Counter        {retry}    connection, error.type, smtp.status_class, server.*
//	emailconn.stage.duration        Histogram      s          connection, stage, outcome, error.type, server.*
//	emailconn.session.count         UpDownCounter  {session}  connection; SMTP sessions open
//	emailconn.limit.wait.duration   Histogram      s          connection, limit; time waited for a provider limit
//	emailconn.token.refreshes       Counter        {refresh}  oauth2.configuration, outcome, error.type
//	emailconn.token.time_to_expiry  Gauge          s          oauth2.configuration; until the current access token expires
//
// Counters of events are named in the plural and the up-down counter of
// things open with ".count", as the general semantic conventions name
// them (a Prometheus exporter shows emailconn_sends_total,
// emailconn_session_count, emailconn_send_duration_seconds, …).
//
// The attributes are emailconn.connection, emailconn.outcome,
// emailconn.stage, emailconn.limit, emailconn.oauth2.configuration,
// error.type, smtp.status_class, server.address and server.port.
//
// emailconn.outcome of a send is "accepted" (every recipient accepted it),
// "replayed" (a send with an IdempotencyKey the delivery ledger had
// already seen accepted: the stored receipt was returned and nothing was
// sent),
// "partial" (some recipients were refused, the others accepted it),
// "refused" (the server refused the message or every recipient),
// "throttled" (a provider limit or throttling reply; retry later),
// "unknown" (the connection failed after the message was sent and before
// the server replied: ErrDeliveryUnknown, do not resend blindly) or
// "failed" (anything else: error.type says what). Of a stage it is "passed"
// or "failed" (of a transaction also "partial": delivered to the
// recipients the server accepted); of a token refresh "success" or
// "failure".
//
// error.type is the sentinel the error matches, in snake case:
// "delivery_unknown", "throttled", "recipient_rejected", "refused",
// "message_too_large", "invalid", "blocked", "insecure_auth",
// "auth_unsupported", "reauthorize", "auth_failed", "tls_unavailable",
// "timeout", "connect", "store", "closed", "not_found", "canceled",
// "deadline_exceeded", or "_OTHER". It is absent on success.
//
// smtp.status_class is the class of the server's last reply, "2xx", "4xx"
// or "5xx", when there was one.
//
// emailconn.stage is a session stage, as emailconn.Stage names it
// ("resolve", "connect", "tls", "greeting", "ehlo", "starttls", "oauth2
// token", "auth"), or "transaction" (MAIL FROM to the final reply). emailconn.limit is "maxSessions" (waiting for a free session) or
// "messagesPerMinute" (waiting for the message rate).
//
// # Spans
//
// Each send is one span, "emailconn.send" (kind client), a child of the
// span in the caller's context, with the connection's attributes, the
// outcome and the attempts (emailconn.attempts). Its events are the
// stages of the sessions it opened, "transaction", "retry", "limit wait",
// "token" and "token refresh"; a failed send has status Error with the
// error.type as description (never the error's text, which names
// recipients).
package otelemailconn

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/emailconn/emailconn"
)

// ScopeName is the instrumentation scope of the meter and the tracer.
const ScopeName = "github.com/emailconn/emailconn/otelemailconn"

// An Option configures New.
type Option func(*config)

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	next *emailconn.Trace
}

// WithMeterProvider records the metrics through mp. Without it, New uses
// otel.GetMeterProvider() at the time of the call.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithTracerProvider starts the spans with tp. Without it, New uses
// otel.GetTracerProvider() at the time of the call.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithTrace composes t with the Trace New returns: each of t's hooks that
// is not nil is called after this package's, with the same arguments (and
// t.SendStart with the context that holds the send's span). Nil means
// none.
func WithTrace(t *emailconn.Trace) Option { return func(c *config) { c.next = t } }

// New returns a Trace that records the metrics and spans described in the
// package documentation, for emailconn.Options.Trace. The error is that
// of creating an instrument; the Trace is usable even then (the
// instruments that failed record nothing). The Trace is safe for
// concurrent use by every Sender of a Registry, and several Registries.
func New(opts ...Option) (*emailconn.Trace, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	o, err := newObserver(c.mp, c.tp)
	return compose(o.trace(), c.next), err
}

// Attribute keys.
const (
	keyConnection  = attribute.Key("emailconn.connection")
	keyOutcome     = attribute.Key("emailconn.outcome")
	keyStage       = attribute.Key("emailconn.stage")
	keyLimit       = attribute.Key("emailconn.limit")
	keyOAuth2      = attribute.Key("emailconn.oauth2.configuration")
	keyAttempts    = attribute.Key("emailconn.attempts")
	keyAttempt     = attribute.Key("emailconn.attempt")
	keyWait        = attribute.Key("emailconn.wait")
	keyDuration    = attribute.Key("emailconn.duration")
	keyErrorType   = attribute.Key("error.type")
	keyStatusClass = attribute.Key("smtp.status_class")
	keyAddress     = attribute.Key("server.address")
	keyPort        = attribute.Key("server.port")
)

// Bucket boundaries, in seconds: a pooled send takes milliseconds, a new
// session with TLS and AUTH a few hundred, retries and waits up to the
// retry policy's 30 seconds and a provider's minute.
var (
	durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	waitBuckets     = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

type observer struct {
	tracer    trace.Tracer
	sends     metric.Int64Counter
	sendDur   metric.Float64Histogram
	retries   metric.Int64Counter
	stageDur  metric.Float64Histogram
	sessions  metric.Int64UpDownCounter
	waits     metric.Float64Histogram
	refreshes metric.Int64Counter

	mu     sync.RWMutex
	conns  map[connKey]*connAttrs
	tokens sync.Map // OAuth2 configuration name → time.Time, the current token's expiry
}

func newObserver(mp metric.MeterProvider, tp trace.TracerProvider) (*observer, error) {
	m := mp.Meter(ScopeName)
	o := &observer{tracer: tp.Tracer(ScopeName), conns: map[connKey]*connAttrs{}}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	o.sends, err = m.Int64Counter("emailconn.sends", metric.WithUnit("{send}"),
		metric.WithDescription("Sends by connection and outcome."))
	check(err)
	o.sendDur, err = m.Float64Histogram("emailconn.send.duration", metric.WithUnit("s"),
		metric.WithDescription("How long sends took, retries and waits for limits included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	o.retries, err = m.Int64Counter("emailconn.send.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Attempts of sends that failed transiently and were retried."))
	check(err)
	o.stageDur, err = m.Float64Histogram("emailconn.stage.duration", metric.WithUnit("s"),
		metric.WithDescription("How long each stage of opening a session, and each mail transaction, took."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	check(err)
	o.sessions, err = m.Int64UpDownCounter("emailconn.session.count", metric.WithUnit("{session}"),
		metric.WithDescription("SMTP sessions open, per connection."))
	check(err)
	o.waits, err = m.Float64Histogram("emailconn.limit.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time sends waited for a connection's limits: a free session, the message rate."),
		metric.WithExplicitBucketBoundaries(waitBuckets...))
	check(err)
	o.refreshes, err = m.Int64Counter("emailconn.token.refreshes", metric.WithUnit("{refresh}"),
		metric.WithDescription("OAuth2 access token requests, by configuration and outcome."))
	check(err)
	_, err = m.Float64ObservableGauge("emailconn.token.time_to_expiry", metric.WithUnit("s"),
		metric.WithDescription("Seconds until the current OAuth2 access token expires; negative once it has."),
		metric.WithFloat64Callback(o.observeExpiry))
	check(err)
	return o, errors.Join(errs...)
}

// observeExpiry reports the time left of each configuration's token.
func (o *observer) observeExpiry(_ context.Context, obs metric.Float64Observer) error {
	now := time.Now()
	o.tokens.Range(func(k, v any) bool {
		obs.Observe(v.(time.Time).Sub(now).Seconds(), metric.WithAttributes(keyOAuth2.String(k.(string))))
		return true
	})
	return nil
}

// sendKey is the context key of a send's *connAttrs.
type sendKey struct{}

// connKey names a connection and its mail server.
type connKey struct{ name, server string }

// connAttrs are a connection's attributes, with the measurement and span
// options made from them, cached: a pooled send builds no attribute set
// and no option slice after the first of its kind.
type connAttrs struct {
	base     []attribute.KeyValue // connection, server.address, server.port
	spanOpts []trace.SpanStartOption
	sessions metric.MeasurementOption // connection only

	mu      sync.RWMutex
	results map[resultKey]*result
}

// resultKey is a combination of the bounded attributes beyond the
// connection's.
type resultKey struct {
	what        byte // 's' send, 'r' retry, 't' stage, 'w' wait, 'e' transaction event
	outcome     string
	stage       string // the stage, or the limit of a wait
	errType     string
	statusClass string
	attempts    int // sends: the span's emailconn.attempts, up to maxCachedAttempts
}

// maxCachedAttempts bounds the attempts whose span attributes are cached.
const maxCachedAttempts = 8

// result is the cached options of one resultKey.
type result struct {
	add   []metric.AddOption
	rec   []metric.RecordOption
	attrs []attribute.KeyValue // the span's or the event's own
	event []trace.EventOption  // attrs as an event's
}

func (o *observer) conn(name, server string) *connAttrs {
	k := connKey{name, server}
	o.mu.RLock()
	ca, ok := o.conns[k]
	o.mu.RUnlock()
	if ok {
		return ca
	}
	base := []attribute.KeyValue{keyConnection.String(name)}
	if host, port, err := net.SplitHostPort(server); err == nil {
		base = append(base, keyAddress.String(host))
		if p, err := strconv.Atoi(port); err == nil {
			base = append(base, keyPort.Int(p))
		}
	}
	ca = &connAttrs{base: base, results: map[resultKey]*result{},
		sessions: metric.WithAttributeSet(attribute.NewSet(keyConnection.String(name))),
		spanOpts: []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(base...)}}
	o.mu.Lock()
	defer o.mu.Unlock()
	if prev, ok := o.conns[k]; ok {
		return prev
	}
	o.conns[k] = ca
	return ca
}

// sessionOpt is the attribute set of a connection known by name only (a
// session closed outside a send).
func (o *observer) sessionOpt(name string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(keyConnection.String(name)))
}

// get returns the options for k, made once.
func (ca *connAttrs) get(k resultKey) *result {
	ca.mu.RLock()
	r, ok := ca.results[k]
	ca.mu.RUnlock()
	if ok {
		return r
	}
	var own []attribute.KeyValue
	if k.outcome != "" {
		own = append(own, keyOutcome.String(k.outcome))
	}
	switch {
	case k.stage != "" && k.what == 'w':
		own = append(own, keyLimit.String(k.stage))
	case k.stage != "":
		own = append(own, keyStage.String(k.stage))
	}
	if k.errType != "" {
		own = append(own, keyErrorType.String(k.errType))
	}
	if k.statusClass != "" {
		own = append(own, keyStatusClass.String(k.statusClass))
	}
	opt := metric.WithAttributeSet(attribute.NewSet(append(slices.Clone(ca.base), own...)...))
	r = &result{add: []metric.AddOption{opt}, rec: []metric.RecordOption{opt}, attrs: own}
	if k.what == 's' && k.attempts > 0 {
		r.attrs = append(slices.Clone(own), keyAttempts.Int(k.attempts))
	}
	r.event = []trace.EventOption{trace.WithAttributes(r.attrs...)}
	if k.what == 's' && k.attempts > maxCachedAttempts {
		return r
	}
	ca.mu.Lock()
	ca.results[k] = r
	ca.mu.Unlock()
	return r
}

// state returns the connection of the send whose context ctx is; nil
// outside a send.
func state(ctx context.Context) *connAttrs {
	ca, _ := ctx.Value(sendKey{}).(*connAttrs)
	return ca
}

func (o *observer) trace() *emailconn.Trace {
	return &emailconn.Trace{
		SendStart:       o.sendStart,
		SendDone:        o.sendDone,
		Retrying:        o.retrying,
		LimitWaited:     o.limitWaited,
		SessionsChanged: o.sessionsChanged,
		StageDone:       o.stageDone,
		TransactionDone: o.transactionDone,
		TokenFetched:    o.tokenFetched,
		TokenRefreshed:  o.tokenRefreshed,
	}
}

// sendStart starts a send's span and keeps the connection's attributes in
// the send's context.
func (o *observer) sendStart(ctx context.Context, connection, server string) context.Context {
	ca := o.conn(connection, server)
	ctx, _ = o.tracer.Start(ctx, "emailconn.send", ca.spanOpts...)
	return context.WithValue(ctx, sendKey{}, ca)
}

// sendDone counts a send by outcome, records its duration and ends its span.
func (o *observer) sendDone(ctx context.Context, connection string, attempts int, took time.Duration, err error) {
	ca := state(ctx)
	if ca == nil {
		return
	}
	outcome, errType := classify(err)
	if err == nil && attempts == 0 {
		// Only a replay from the delivery ledger succeeds
		// without an attempt: nothing new was sent.
		outcome = "replayed"
	}
	r := ca.get(resultKey{what: 's', outcome: outcome, errType: errType, statusClass: statusClass(err), attempts: attempts})
	o.sends.Add(ctx, 1, r.add...)
	o.sendDur.Record(ctx, took.Seconds(), r.rec...)
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(r.attrs...)
	if err != nil {
		span.SetStatus(codes.Error, errType)
	}
	span.End()
}

// retrying counts a retry and adds it to the send's span as an event.
func (o *observer) retrying(ctx context.Context, connection string, attempt int, wait time.Duration, err error) {
	ca := state(ctx)
	if ca == nil {
		return
	}
	_, errType := classify(err)
	class := statusClass(err)
	o.retries.Add(ctx, 1, ca.get(resultKey{what: 'r', errType: errType, statusClass: class}).add...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("retry", trace.WithAttributes(keyAttempt.Int(attempt), keyWait.Float64(wait.Seconds()), keyErrorType.String(errType)))
	}
}

// limitWaited records a wait for a connection's limit, as a measurement and
// an event.
func (o *observer) limitWaited(ctx context.Context, connection, limit string, waited time.Duration) {
	ca := state(ctx)
	if ca == nil {
		return
	}
	o.waits.Record(ctx, waited.Seconds(), ca.get(resultKey{what: 'w', stage: limit}).rec...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("limit wait", trace.WithAttributes(keyLimit.String(limit), keyWait.Float64(waited.Seconds())))
	}
}

// sessionsChanged adds delta to the connection's open sessions.
func (o *observer) sessionsChanged(ctx context.Context, connection string, delta int) {
	opt := o.sessionOpt(connection)
	if ca := state(ctx); ca != nil {
		opt = ca.sessions
	}
	o.sessions.Add(ctx, int64(delta), opt)
}

// stageDone records a stage's duration and adds it to the send's span as an
// event; a skipped stage records nothing.
func (o *observer) stageDone(ctx context.Context, r emailconn.StageResult) {
	ca := state(ctx)
	if ca == nil || r.Outcome == emailconn.OutcomeSkipped {
		return
	}
	_, errType := classify(r.Err)
	o.stageDur.Record(ctx, r.Duration.Seconds(), ca.get(resultKey{what: 't', stage: string(r.Stage), outcome: string(r.Outcome), errType: errType}).rec...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{keyOutcome.String(string(r.Outcome)), keyDuration.Float64(r.Duration.Seconds())}
		if errType != "" {
			attrs = append(attrs, keyErrorType.String(errType))
		}
		span.AddEvent(string(r.Stage), trace.WithTimestamp(r.Start.Add(r.Duration)), trace.WithAttributes(attrs...))
	}
}

// transactionDone records a mail transaction's duration by outcome
// ("partial" when only some recipients were accepted) and adds it to the
// span as an event.
func (o *observer) transactionDone(ctx context.Context, t emailconn.TransactionInfo) {
	ca := state(ctx)
	if ca == nil {
		return
	}
	sendOutcome, errType := classify(t.Err)
	outcome := string(emailconn.OutcomePassed)
	switch {
	case sendOutcome == "partial" || errType == "recipient_rejected" && t.Accepted > 0:
		outcome = "partial" // delivered to the recipients the server accepted
	case t.Err != nil:
		outcome = string(emailconn.OutcomeFailed)
	}
	o.stageDur.Record(ctx, t.Duration.Seconds(), ca.get(resultKey{what: 't', stage: "transaction", outcome: outcome, errType: errType}).rec...)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		// The event's own attributes, without the stage (its name)
		// and the connection (the span's).
		r := ca.get(resultKey{what: 'e', outcome: outcome, errType: errType, statusClass: statusClass(t.Err)})
		span.AddEvent("transaction", r.event...)
	}
}

// tokenFetched adds an OAuth2 token fetch to the send's span as an event.
func (o *observer) tokenFetched(ctx context.Context, i emailconn.TokenInfo) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		attrs := []attribute.KeyValue{keyOAuth2.String(i.OAuth2Config), keyDuration.Float64(i.Duration.Seconds())}
		if i.Err != nil {
			_, errType := classify(i.Err)
			attrs = append(attrs, keyErrorType.String(errType))
		}
		span.AddEvent("token", trace.WithAttributes(attrs...))
	}
}

// tokenRefreshed counts an OAuth2 token request by outcome, keeps the
// token's expiry for the time-to-expiry gauge, and adds it to the span as an
// event.
func (o *observer) tokenRefreshed(ctx context.Context, i emailconn.TokenInfo) {
	outcome, errType := "success", ""
	if i.Err != nil {
		outcome = "failure"
		_, errType = classify(i.Err)
	} else if !i.Expiry.IsZero() {
		o.tokens.Store(i.OAuth2Config, i.Expiry)
	}
	attrs := []attribute.KeyValue{keyOAuth2.String(i.OAuth2Config), keyOutcome.String(outcome)}
	if errType != "" {
		attrs = append(attrs, keyErrorType.String(errType))
	}
	o.refreshes.Add(ctx, 1, metric.WithAttributes(attrs...))
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("token refresh", trace.WithAttributes(append(attrs, keyDuration.Float64(i.Duration.Seconds()))...))
	}
}

// sentinels maps the errors a send matches to error.type, most specific
// first.
var sentinels = []struct {
	err  error
	name string
}{
	{emailconn.ErrDeliveryUnknown, "delivery_unknown"},
	{emailconn.ErrThrottled, "throttled"},
	{emailconn.ErrRecipientRejected, "recipient_rejected"},
	{emailconn.ErrRefused, "refused"},
	{emailconn.ErrMessageTooLarge, "message_too_large"},
	{emailconn.ErrInvalid, "invalid"},
	{emailconn.ErrBlocked, "blocked"},
	{emailconn.ErrInsecureAuth, "insecure_auth"},
	{emailconn.ErrAuthUnsupported, "auth_unsupported"},
	{emailconn.ErrReauthorize, "reauthorize"},
	{emailconn.ErrAuthFailed, "auth_failed"},
	{emailconn.ErrTLSUnavailable, "tls_unavailable"},
	{emailconn.ErrTimeout, "timeout"},
	{emailconn.ErrConnect, "connect"},
	{emailconn.ErrStore, "store"},
	{emailconn.ErrClosed, "closed"},
	{emailconn.ErrNotFound, "not_found"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
}

// classify returns the emailconn.outcome and error.type attributes of a
// send that returned err, as described in the package documentation:
// "accepted" and "" for a nil err.
func classify(err error) (outcome, errorType string) {
	if err == nil {
		return "accepted", ""
	}
	errorType = "_OTHER"
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			errorType = s.name
			break
		}
	}
	switch errorType {
	case "delivery_unknown":
		return "unknown", errorType
	case "throttled":
		return "throttled", errorType
	case "recipient_rejected":
		var re *emailconn.RecipientsError
		if errors.As(err, &re) && re.Accepted > 0 {
			return "partial", errorType
		}
		return "refused", errorType
	case "refused", "message_too_large":
		return "refused", errorType
	}
	return "failed", errorType
}

// statusClass is the class of the server's reply in err: "2xx" for nil,
// "4xx" or "5xx" for a reply, "" when the failure was not a reply.
func statusClass(err error) string {
	if err == nil {
		return "2xx"
	}
	code := 0
	var se *emailconn.SMTPError
	var re *emailconn.RecipientsError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.As(err, &re) && len(re.Rejected) > 0 && re.Rejected[0].Err != nil:
		code = re.Rejected[0].Err.Code
	}
	switch code / 100 {
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return ""
}
