package otelemailconn_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
	"github.com/emailconn/emailconn/otelemailconn"
)

// This example exports a Sender's metrics to Prometheus through the
// OpenTelemetry Prometheus exporter, and lists the metric families a
// scrape of /metrics shows after one send. An engine serves the registry
// with promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) and gives the same
// Trace to its Registry.
func Example_prometheus() {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	trace, err := otelemailconn.New(otelemailconn.WithMeterProvider(mp)) // spans: the global TracerProvider
	if err != nil {
		log.Fatal(err)
	}

	srv := emailconntest.NewServer(nil)
	defer srv.Close()
	c := srv.Connection("workunit-alerts")
	c.From = "alerts@example.com"
	s, err := emailconn.NewSender(c, &emailconn.Options{Trace: trace})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "Work unit 4711", Text: "Approve it."}); err != nil {
		log.Fatal(err)
	}
	s.Close()

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "emailconn_") {
			continue
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		fmt.Println(f.GetName(), f.GetType(), strings.Join(labels, ","))
	}
	// Output:
	// emailconn_send_duration_seconds HISTOGRAM emailconn_connection,emailconn_outcome,otel_scope_name,otel_scope_schema_url,otel_scope_version,server_address,server_port,smtp_status_class
	// emailconn_sends_total COUNTER emailconn_connection,emailconn_outcome,otel_scope_name,otel_scope_schema_url,otel_scope_version,server_address,server_port,smtp_status_class
	// emailconn_session_count GAUGE emailconn_connection,otel_scope_name,otel_scope_schema_url,otel_scope_version
	// emailconn_stage_duration_seconds HISTOGRAM emailconn_connection,emailconn_outcome,emailconn_stage,otel_scope_name,otel_scope_schema_url,otel_scope_version,server_address,server_port
}
