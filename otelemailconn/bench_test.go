package otelemailconn_test

import (
	"context"
	"io"
	"log"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/otelemailconn"
)

// cpuTime is the CPU time the process used so far, user and system: on a
// shared machine a fairer measure of a send's cost than its wall time,
// which includes waiting for the other goroutines (the server's, the span
// batcher's) to be scheduled.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// discard is a go-smtp session that accepts every message and keeps
// nothing: the benchmarks measure the client.
type discard struct{}

func (discard) Reset()                               {}
func (discard) Logout() error                        { return nil }
func (discard) Mail(string, *smtp.MailOptions) error { return nil }
func (discard) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discard) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }

func sink(b *testing.B) string {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return discard{}, nil }))
	srv.Domain = "sink.localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// BenchmarkSend sends a short notification through a pooled session
// (sequentially, as the root's Send rows do): with no Trace ("none"), with
// an empty one (every hook nil: the cost of the seam's nil checks), and
// with this package's Trace on the OpenTelemetry SDK with a metric reader
// that is never collected and a batching span processor with a no-op
// exporter ("otel"). The difference between otel and none is the cost of
// observing a send.
func BenchmarkSend(b *testing.B) {
	addr := sink(b)
	msg := &emailconn.Message{To: []string{"ops@example.com"}, Subject: "Work unit 4711 needs approval", Text: "Please approve work unit 4711."}
	run := func(b *testing.B, tr *emailconn.Trace) {
		s, err := emailconn.NewSender(emailconn.Connection{Name: "bench", MailServer: addr, TLSMode: "none", From: "engine@example.com"},
			&emailconn.Options{Trace: tr})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		if _, err := s.Send(ctx, msg); err != nil { // open the session
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := cpuTime()
		for b.Loop() {
			if _, err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("none", func(b *testing.B) { run(b, nil) })
	b.Run("empty", func(b *testing.B) { run(b, &emailconn.Trace{}) })
	withSDK := func(name string, newTP func() (trace.TracerProvider, func())) {
		b.Run(name, func(b *testing.B) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tp, stop := newTP()
			defer func() {
				stop()
				_ = mp.Shutdown(context.Background())
			}()
			tr, err := otelemailconn.New(otelemailconn.WithMeterProvider(mp), otelemailconn.WithTracerProvider(tp))
			if err != nil {
				b.Fatal(err)
			}
			run(b, tr)
		})
	}
	sdk := func(o sdktrace.TracerProviderOption) func() (trace.TracerProvider, func()) {
		return func() (trace.TracerProvider, func()) {
			tp := sdktrace.NewTracerProvider(o)
			return tp, func() { _ = tp.Shutdown(context.Background()) }
		}
	}
	withSDK("otel", sdk(sdktrace.WithBatcher(tracetest.NewNoopExporter())))
	withSDK("otel-syncer", sdk(sdktrace.WithSyncer(tracetest.NewNoopExporter())))
	withSDK("otel-metrics-only", func() (trace.TracerProvider, func()) { return noop.NewTracerProvider(), func() {} })
}

// BenchmarkHooks calls the hooks a send on a pooled session calls —
// SendStart, TransactionDone, SendDone — without the network: the added
// cost of observing a send, measured without the noise of the sends
// themselves. "metrics" has no tracer (the OpenTelemetry no-op one);
// "metrics+spans" records spans with a batching processor and a no-op
// exporter, as an engine would with a real exporter; the SDK then also
// keeps exemplars (the sampled span of a measurement) by default, which
// "metrics+spans-no-exemplars" turns off; "metrics+spans-syncer" exports
// each span on the send's goroutine (no background batcher competing for
// the CPU).
func BenchmarkHooks(b *testing.B) {
	run := func(b *testing.B, tp trace.TracerProvider, opts ...sdkmetric.Option) {
		mp := sdkmetric.NewMeterProvider(append(opts, sdkmetric.WithReader(sdkmetric.NewManualReader()))...)
		defer func() { _ = mp.Shutdown(context.Background()) }()
		tr, err := otelemailconn.New(otelemailconn.WithMeterProvider(mp), otelemailconn.WithTracerProvider(tp))
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		info := emailconn.TransactionInfo{Server: "127.0.0.1:25", Accepted: 1, Duration: 50 * time.Microsecond}
		b.ReportAllocs()
		for b.Loop() {
			c := tr.SendStart(ctx, "bench", "127.0.0.1:25")
			tr.TransactionDone(c, info)
			tr.SendDone(c, "bench", 1, 80*time.Microsecond, nil)
		}
	}
	b.Run("metrics", func(b *testing.B) { run(b, noop.NewTracerProvider()) })
	b.Run("metrics+spans", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, tp)
	})
	b.Run("metrics+spans-no-exemplars", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, tp, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	})
	b.Run("floor-sdk-span", func(b *testing.B) {
		// The SDK's own cost of one empty span, for comparison.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		tracer := tp.Tracer("floor")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tracer.Start(ctx, "x")
			span.End()
		}
	})
	b.Run("metrics+spans-syncer", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		run(b, tp)
	})
}
