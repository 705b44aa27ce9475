package interop

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// logRecorder is a slog.Handler that keeps every record, to count a
// Sender's attempts ("email attempt failed; retrying", "email not sent")
// and to check that no secret is logged.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level   slog.Level
	message string
	attrs   map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, message: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

// count returns how many records have message msg.
func (h *logRecorder) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.records {
		if r.message == msg {
			n++
		}
	}
	return n
}

// attempts returns the number of attempts of failed sends: the retries
// logged plus the final failure.
func (h *logRecorder) attempts() int {
	return h.count("email attempt failed; retrying") + h.count("email not sent")
}

// mustNotLeak fails the test when any record contains one of the
// secrets (for example a password and its base64 forms on the wire).
func (h *logRecorder) mustNotLeak(t *testing.T, secrets ...string) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.records {
		for _, s := range secrets {
			if strings.Contains(r.message, s) {
				t.Errorf("log message %q contains a secret", r.message)
			}
			for k, v := range r.attrs {
				if strings.Contains(v, s) {
					t.Errorf("log attribute %q of message %q contains a secret", k, r.message)
				}
			}
		}
	}
}

func newLogger(h *logRecorder) *slog.Logger { return slog.New(h) }
