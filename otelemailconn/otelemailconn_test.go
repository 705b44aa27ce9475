package otelemailconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
	"github.com/emailconn/emailconn/otelemailconn"
)

// canaries are values that must appear in no span, attribute, event or
// metric label.
var canaries = []string{
	"pw-canary-5e1c", "client-secret-canary-77aa", "access-token-canary-90b1",
	"rcpt-canary-1@example.com", "rcpt-canary-2@example.com", "from-canary@example.com", "subject-canary-3f2d",
	"msgid-canary", "rcpt-canary", "from-canary",
}

// rig is an SDK with an in-memory metric reader and a span recorder, and
// a Registry whose connections each script one outcome.
type rig struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reg    *emailconn.Registry
	tokens atomic.Int32
}

func newRig(t *testing.T) *rig {
	t.Helper()
	rg := &rig{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rg.reader))
	rg.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rg.spans))
	t.Cleanup(func() {
		_ = mp.Shutdown(context.Background())
		_ = rg.tp.Shutdown(context.Background())
	})
	tr, err := otelemailconn.New(otelemailconn.WithMeterProvider(mp), otelemailconn.WithTracerProvider(rg.tp))
	if err != nil {
		t.Fatal(err)
	}

	te := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.tokens.Add(1)
		_ = r.ParseForm()
		if _, pw, _ := r.BasicAuth(); pw != canaries[1] && r.PostForm.Get("client_secret") != canaries[1] {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "access_token": canaries[2], "expires_in": 3600})
	}))
	t.Cleanup(te.Close)

	refuse := func(string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user " + canaries[3]}
	}
	servers := map[string]smtptest.Options{
		"accepted": {Users: map[string]string{"u": canaries[0]}},
		"refused":  {RcptHook: refuse},
		"partial": {RcptHook: func(to string) *smtp.SMTPError {
			if to == canaries[4] {
				return refuse(to)
			}
			return nil
		}},
		"throttled": {Faults: []smtptest.Fault{{At: "MAIL", Reply: "454 4.7.0 Throttling failure: Maximum sending rate exceeded."}}},
		"unknown":   {Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop}}},
		"retried":   {Faults: []smtptest.Fault{{At: "MAIL", Reply: "451 4.3.0 try again", Times: 1}}},
		"oauth":     {ValidateToken: func(_, tok string) bool { return tok == canaries[2] }, Mechanisms: []string{"XOAUTH2"}},
	}
	cfg := emailconn.Config{Processes: map[string]string{},
		OAuth2Configs: []emailconn.OAuth2Config{{Name: "contoso", GrantType: "client_credentials", TokenURL: te.URL + "/token",
			ClientID: "app", ClientSecret: emailconn.Secret(canaries[1]), Scopes: []string{"https://outlook.office365.com/.default"}}}}
	for name, o := range servers {
		srv := smtptest.NewServer(t, o)
		c := emailconn.Connection{Name: name, MailServer: srv.Addr(), TLSMode: "none", From: canaries[5],
			ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
		switch name {
		case "accepted":
			c.Username, c.Password = "u", emailconn.Secret(canaries[0])
		case "throttled":
			c.Provider = "ses"
		case "unknown":
			c.SendTimeout = 300 * time.Millisecond
		case "oauth":
			c.AuthType, c.Username, c.OAuth2Config = "oauth2", "robot@contoso.com", "contoso"
		}
		cfg.Connections = append(cfg.Connections, c)
		cfg.Processes[name] = name
	}
	rg.reg, err = emailconn.NewRegistry(cfg, &emailconn.Options{Trace: tr, Retry: emailconn.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rg.reg.Close() })
	return rg
}

// send sends one message through process, under a parent span.
func (rg *rig) send(t *testing.T, process string) error {
	t.Helper()
	rt, err := rg.reg.Resolve(process)
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := rg.tp.Tracer("caller").Start(context.Background(), "notify "+process)
	defer parent.End()
	_, err = rt.Send(ctx, &emailconn.Message{To: []string{canaries[3], canaries[4]}, Subject: canaries[6], Text: "body " + canaries[7]})
	return err
}

func (rg *rig) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := rg.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func find(rm metricdata.ResourceMetrics, name string) *metricdata.Metrics {
	for _, sm := range rm.ScopeMetrics {
		for i, m := range sm.Metrics {
			if m.Name == name {
				return &sm.Metrics[i]
			}
		}
	}
	return nil
}

// labels renders an attribute set as "k=v,k=v" in key order.
func labels(s attribute.Set) string {
	var b []string
	for _, kv := range s.ToSlice() {
		b = append(b, string(kv.Key)+"="+kv.Value.Emit())
	}
	return strings.Join(b, ",")
}

// sums returns the data points of a counter or up-down counter by label.
func sums(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	m := find(rm, name)
	if m == nil {
		t.Fatalf("no metric %s", name)
	}
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		out[labels(dp.Attributes)] = dp.Value
	}
	return out
}

// histograms returns the count of each data point of a histogram by label.
func histograms(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]uint64 {
	t.Helper()
	m := find(rm, name)
	if m == nil {
		t.Fatalf("no metric %s", name)
	}
	out := map[string]uint64{}
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		out[labels(dp.Attributes)] = dp.Count
	}
	return out
}

// TestIssue18_Instruments: a scripted run — accepted, refused, throttled,
// delivery unknown, a retry, an OAuth2 token refresh, a partial delivery —
// recorded by the
// SDK's in-memory reader, with the values each instrument must hold.
func TestIssue18_Instruments(t *testing.T) {
	rg := newRig(t)
	want := map[string]error{"accepted": nil, "refused": emailconn.ErrRecipientRejected, "throttled": emailconn.ErrThrottled,
		"unknown": emailconn.ErrDeliveryUnknown, "retried": nil, "oauth": nil, "partial": emailconn.ErrRecipientRejected}
	for _, p := range []string{"accepted", "refused", "throttled", "unknown", "retried", "oauth", "partial", "accepted"} {
		if err := rg.send(t, p); !errors.Is(err, want[p]) || (want[p] == nil) != (err == nil) {
			t.Fatalf("send through %s = %v, want %v", p, err, want[p])
		}
	}
	rm := rg.collect(t)

	port := func(name string) string {
		for _, c := range rg.reg.Config().Connections {
			if c.Name == name {
				return c.MailServer[strings.LastIndex(c.MailServer, ":")+1:]
			}
		}
		return ""
	}
	srv := func(name string) string { return "server.address=127.0.0.1,server.port=" + port(name) }
	sends := sums(t, rm, "emailconn.sends")
	for label, n := range map[string]int64{
		"emailconn.connection=accepted,emailconn.outcome=accepted," + srv("accepted") + ",smtp.status_class=2xx":                            2,
		"emailconn.connection=refused,emailconn.outcome=refused,error.type=recipient_rejected," + srv("refused") + ",smtp.status_class=5xx": 1,
		"emailconn.connection=throttled,emailconn.outcome=throttled,error.type=throttled," + srv("throttled") + ",smtp.status_class=4xx":    1,
		"emailconn.connection=unknown,emailconn.outcome=unknown,error.type=delivery_unknown," + srv("unknown"):                              1,
		"emailconn.connection=retried,emailconn.outcome=accepted," + srv("retried") + ",smtp.status_class=2xx":                              1,
		"emailconn.connection=oauth,emailconn.outcome=accepted," + srv("oauth") + ",smtp.status_class=2xx":                                  1,
	} {
		if sends[label] != n {
			t.Errorf("emailconn.sends{%s} = %d, want %d", label, sends[label], n)
		}
	}
	if len(sends) != 7 {
		t.Errorf("emailconn.sends has %d series, want 7: %v", len(sends), sends)
	}
	if d := histograms(t, rm, "emailconn.send.duration"); len(d) != 7 || d["emailconn.connection=accepted,emailconn.outcome=accepted,"+srv("accepted")+",smtp.status_class=2xx"] != 2 {
		t.Errorf("emailconn.send.duration = %v", d)
	}
	// 451 at MAIL is a transient refusal; the throttling reply is retried
	// once too (MaxAttempts 2), after the wait it asks for.
	if r := sums(t, rm, "emailconn.send.retries"); len(r) != 2 || r["emailconn.connection=retried,error.type=refused,"+srv("retried")+",smtp.status_class=4xx"] != 1 ||
		r["emailconn.connection=throttled,error.type=throttled,"+srv("throttled")+",smtp.status_class=4xx"] != 1 {
		t.Errorf("emailconn.send.retries = %v, want one retry each of retried and throttled", r)
	}
	stages := histograms(t, rm, "emailconn.stage.duration")
	for _, label := range []string{
		"emailconn.connection=accepted,emailconn.outcome=passed,emailconn.stage=connect," + srv("accepted"),
		"emailconn.connection=accepted,emailconn.outcome=passed,emailconn.stage=auth," + srv("accepted"),
		"emailconn.connection=oauth,emailconn.outcome=passed,emailconn.stage=oauth2 token," + srv("oauth"),
		"emailconn.connection=accepted,emailconn.outcome=passed,emailconn.stage=transaction," + srv("accepted"),
		"emailconn.connection=refused,emailconn.outcome=failed,emailconn.stage=transaction,error.type=recipient_rejected," + srv("refused"),
		"emailconn.connection=partial,emailconn.outcome=partial,emailconn.stage=transaction,error.type=recipient_rejected," + srv("partial"),
	} {
		if stages[label] == 0 {
			t.Errorf("emailconn.stage.duration lacks {%s}: %v", label, stages)
		}
	}
	if got := stages["emailconn.connection=accepted,emailconn.outcome=passed,emailconn.stage=transaction,"+srv("accepted")]; got != 2 {
		t.Errorf("transactions of accepted = %d, want 2", got)
	}
	if got := stages["emailconn.connection=accepted,emailconn.outcome=passed,emailconn.stage=connect,"+srv("accepted")]; got != 1 {
		t.Errorf("connects of accepted = %d, want 1 (the second send reuses the session)", got)
	}
	open := sums(t, rm, "emailconn.session.count")
	if open["emailconn.connection=accepted"] != 1 || open["emailconn.connection=oauth"] != 1 || open["emailconn.connection=unknown"] != 0 {
		t.Errorf("emailconn.session.count = %v, want accepted and oauth 1 each, unknown 0", open)
	}
	if r := sums(t, rm, "emailconn.token.refreshes"); len(r) != 1 || r["emailconn.oauth2.configuration=contoso,emailconn.outcome=success"] != 1 || rg.tokens.Load() != 1 {
		t.Errorf("emailconn.token.refreshes = %v (%d requests), want one success of contoso", r, rg.tokens.Load())
	}
	if m := find(rm, "emailconn.token.time_to_expiry"); m == nil {
		t.Error("no emailconn.token.time_to_expiry")
	} else if dps := m.Data.(metricdata.Gauge[float64]).DataPoints; len(dps) != 1 || dps[0].Value < 3500 || dps[0].Value > 3600 ||
		labels(dps[0].Attributes) != "emailconn.oauth2.configuration=contoso" {
		t.Errorf("emailconn.token.time_to_expiry = %+v, want about 3600 s for contoso", dps)
	}

	rg.reg.Close()
	open = sums(t, rg.collect(t), "emailconn.session.count")
	for label, n := range open {
		if n != 0 {
			t.Errorf("emailconn.session.count{%s} = %d after Close, want 0", label, n)
		}
	}

	// Spans: one per send, a child of the caller's, with its events.
	var sendSpans []sdktrace.ReadOnlySpan
	parents := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rg.spans.Ended() {
		switch {
		case s.Name() == "emailconn.send":
			sendSpans = append(sendSpans, s)
		default:
			parents[s.SpanContext().SpanID().String()] = s
		}
	}
	if len(sendSpans) != 8 {
		t.Fatalf("%d send spans, want 8", len(sendSpans))
	}
	events := map[string]string{}
	for _, s := range sendSpans {
		p, ok := parents[s.Parent().SpanID().String()]
		if !ok || s.Parent().TraceID() != p.SpanContext().TraceID() {
			t.Errorf("send span %v is not a child of the caller's span", s.SpanContext().SpanID())
			continue
		}
		var names []string
		for _, e := range s.Events() {
			names = append(names, e.Name)
		}
		events[strings.TrimPrefix(p.Name(), "notify ")] += strings.Join(names, " ") + ";"
	}
	for conn, want := range map[string]string{
		"retried":   "connect greeting ehlo transaction retry transaction;",
		"oauth":     "connect greeting ehlo token refresh token oauth2 token auth transaction;",
		"throttled": "transaction retry transaction;",
	} {
		if !strings.Contains(events[conn], want) {
			t.Errorf("events of %s: %q, want %q", conn, events[conn], want)
		}
	}
}

// TestIssue18_Canary: a run with secrets, recipients, the sender, the
// subject and the body set to canary values finds none of them in any
// span (name, attribute, event, status) or metric (name, label, value).
func TestIssue18_Canary(t *testing.T) {
	rg := newRig(t)
	for _, p := range []string{"accepted", "refused", "throttled", "unknown", "retried", "oauth", "partial"} {
		_ = rg.send(t, p)
	}
	rm := rg.collect(t)
	var all strings.Builder
	fmt.Fprintf(&all, "%+v\n", rm)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			fmt.Fprintf(&all, "%s %s %+v\n", m.Name, m.Description, m.Data)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					all.WriteString(labels(dp.Attributes) + "\n")
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					all.WriteString(labels(dp.Attributes) + "\n")
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					all.WriteString(labels(dp.Attributes) + "\n")
				}
			}
		}
	}
	spans := rg.spans.Ended()
	if len(spans) < 12 {
		t.Fatalf("%d spans, want the callers' and the sends'", len(spans))
	}
	for _, s := range spans {
		fmt.Fprintf(&all, "%s %v %+v %+v\n", s.Name(), s.Status(), s.Attributes(), s.Links())
		for _, e := range s.Events() {
			fmt.Fprintf(&all, "%s %+v\n", e.Name, e.Attributes)
		}
	}
	text := all.String()
	if !strings.Contains(text, "emailconn.send") || !strings.Contains(text, "recipient_rejected") {
		t.Fatalf("the dump does not hold the run:\n%s", text)
	}
	for _, c := range canaries {
		if strings.Contains(text, c) {
			t.Errorf("%q appears in the telemetry", c)
		}
	}
}

// TestIssue18_WithTrace: an engine's own Trace composed with the adapter's
// hears every event after it, its SendStart in the context that holds the
// send's span, and the hooks the adapter does not use unchanged.
func TestIssue18_WithTrace(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	var events []string
	own := &emailconn.Trace{
		SendStart: func(ctx context.Context, conn, _ string) context.Context {
			events = append(events, fmt.Sprintf("start %s span=%v", conn, oteltrace.SpanFromContext(ctx).SpanContext().IsValid()))
			return ctx
		},
		Connected:       func(context.Context, string) { events = append(events, "connected") },
		StageDone:       func(_ context.Context, r emailconn.StageResult) { events = append(events, "stage "+string(r.Stage)) },
		TransactionDone: func(context.Context, emailconn.TransactionInfo) { events = append(events, "tx") },
		SessionsChanged: func(_ context.Context, _ string, d int) { events = append(events, fmt.Sprintf("sessions %+d", d)) },
		SendDone: func(ctx context.Context, _ string, n int, _ time.Duration, err error) {
			events = append(events, fmt.Sprintf("done %d %v", n, err))
		},
	}
	tr, err := otelemailconn.New(otelemailconn.WithMeterProvider(mp), otelemailconn.WithTracerProvider(tp), otelemailconn.WithTrace(own))
	if err != nil {
		t.Fatal(err)
	}
	s, err := emailconn.NewSender(emailconn.Connection{Name: "c", MailServer: srv.Addr(), TLSMode: "none", From: "a@example.com"}, &emailconn.Options{Trace: tr})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	got := strings.Join(events, "; ")
	want := "start c span=true; stage resolve; stage connect; connected; stage greeting; stage ehlo; stage auth; sessions +1; tx; done 1 <nil>; sessions -1"
	if got != want {
		t.Errorf("own Trace heard\n%s\nwant\n%s", got, want)
	}
	if n := len(rec.Ended()); n != 1 {
		t.Errorf("%d spans, want 1", n)
	}
}

// TestIssue18_ReplayedOutcome: a send whose IdempotencyKey the delivery
// ledger had seen accepted is counted "replayed", not a second
// "accepted": nothing was sent.
func TestIssue18_ReplayedOutcome(t *testing.T) {
	rg := newRig(t)
	rt, err := rg.reg.Resolve("accepted")
	if err != nil {
		t.Fatal(err)
	}
	msg := &emailconn.Message{To: []string{canaries[3]}, Subject: "approval", Text: "body", IdempotencyKey: "wf-18/replay"}
	for i := range 2 {
		if rc, err := rt.Send(context.Background(), msg); err != nil || rc.Replayed != (i == 1) {
			t.Fatalf("send %d: %+v, %v", i, rc, err)
		}
	}
	got := map[string]int64{}
	for k, v := range sums(t, rg.collect(t), "emailconn.sends") {
		for _, outcome := range []string{"accepted", "replayed"} {
			if strings.Contains(k, "emailconn.outcome="+outcome+",") {
				got[outcome] += v
			}
		}
	}
	if got["accepted"] != 1 || got["replayed"] != 1 {
		t.Errorf("sends by outcome = %v, want one accepted and one replayed", got)
	}
}
