package emailconn

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestIssue12_NilTraceAllocatesNothing: a Sender without a Trace has no
// session hooks, so a send pays one nil check per event; its send-level
// events (issue 18) allocate nothing and leave the context as it is, and
// an OAuth2 configuration's token cache gets no hook.
func TestIssue12_NilTraceAllocatesNothing(t *testing.T) {
	s, err := NewSender(Connection{MailServer: "127.0.0.1:25", From: "a@example.com"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.open.cfg.Hooks != nil || s.open.trace != nil {
		t.Errorf("hooks %v, trace %v for a Sender without a Trace", s.open.cfg.Hooks, s.open.trace)
	}
	ctx := context.Background()
	pr := &prepared{}
	fail := errors.New("x")
	if n := testing.AllocsPerRun(100, func() {
		c := s.traceStart(ctx)
		s.traceWait(c, "maxSessions", time.Second)
		s.traceRetry(c, 1, time.Second, fail)
		s.traceDone(c, pr, time.Now(), fail)
		if c != ctx {
			t.Fatal("traceStart changed the context without a Trace")
		}
	}); n != 0 {
		t.Errorf("the send-level trace events allocate %v times without a Trace", n)
	}
	if traceRefreshes(nil, "x") != nil || traceRefreshes(&Trace{}, "x") != nil {
		t.Error("a token cache hook without Trace.TokenRefreshed")
	}
}
