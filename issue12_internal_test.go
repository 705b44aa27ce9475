package emailconn

import (
	"testing"
)

// TestIssue12_NilTraceAllocatesNothing: a Sender without a Trace has no
// session hooks, so a send pays one nil check per event.
func TestIssue12_NilTraceAllocatesNothing(t *testing.T) {
	t.Parallel()
	s, err := NewSender(Connection{MailServer: "127.0.0.1:25", From: "a@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.open.cfg.Hooks != nil || s.open.trace != nil {
		t.Errorf("hooks %v, trace %v for a Sender without a Trace", s.open.cfg.Hooks, s.open.trace)
	}
}
