package emailconn

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue18_TraceLimitWaited: a send that waits for the message rate's
// turn reports the wait, named "messagesPerMinute", with the connection's
// name; one that does not wait reports nothing.
func TestIssue18_TraceLimitWaited(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	var mu sync.Mutex
	var waits []string
	var total time.Duration
	opts := &Options{Trace: &Trace{LimitWaited: func(_ context.Context, conn, limit string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, conn+" "+limit)
		total += d
	}}}
	opts.limitMinute = 300 * time.Millisecond
	s, err := NewSender(Connection{Name: "rated", MailServer: srv.Addr(), From: "a@example.com", MessagesPerMinute: 1}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 2 {
		rc, err := s.Send(context.Background(), &Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		mu.Lock()
		if i == 0 && len(waits) != 0 {
			t.Errorf("the first send reported waits %v", waits)
		}
		if i == 1 && (len(waits) != 1 || waits[0] != "rated messagesPerMinute" || total != rc.Waited || total <= 0) {
			t.Errorf("second send: waits %v (%v), receipt waited %v; want one messagesPerMinute wait as long as the receipt's", waits, total, rc.Waited)
		}
		mu.Unlock()
	}
}

// BenchmarkIssue18_NilTrace is the cost the trace seam adds to a send
// without a Trace, beside the send it is part of, in one run: "events" is
// every check a pooled send makes for the seam's send-level events (start,
// done, the two limit waits, a retry), "send" a send through a pooled
// session to the test server. The ratio events/send is the seam's share of
// a send; the session-level hooks are nil pointers checked once each.
func BenchmarkIssue18_NilTrace(b *testing.B) {
	srv := smtptest.NewServer(b, smtptest.Options{})
	s, err := NewSender(Connection{MailServer: srv.Addr(), From: "a@example.com"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.Run("events", func(b *testing.B) {
		pr := &prepared{}
		for b.Loop() {
			c := s.traceStart(ctx)
			s.traceWait(c, "maxSessions", 0)
			s.traceWait(c, "messagesPerMinute", 0)
			s.traceRetry(c, 1, 0, nil)
			s.traceDone(c, pr, time.Time{}, nil)
		}
	})
	b.Run("send", func(b *testing.B) {
		msg := &Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestIssue18_TraceLimitWaitedSessions: a send that waits for a free
// session (MaxSessions 1, the only session busy in DATA) reports the
// wait, named "maxSessions". The test knows the second send waits when its
// goroutine is parked in acquire's select, as the runtime reports it.
func TestIssue18_TraceLimitWaitedSessions(t *testing.T) {
	release := make(chan struct{})
	inData := make(chan struct{}, 1)
	srv := smtptest.NewServer(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
		select {
		case inData <- struct{}{}:
			<-release
		default:
		}
		return nil
	}})
	var mu sync.Mutex
	var waits []string
	opts := &Options{Trace: &Trace{LimitWaited: func(_ context.Context, conn, limit string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, fmt.Sprintf("%s %s %v", conn, limit, d > 0))
	}}}
	s, err := NewSender(Connection{Name: "one", MailServer: srv.Addr(), From: "a@example.com", MaxSessions: 1}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func() error {
		_, err := s.Send(context.Background(), &Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"})
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = send() })
	<-inData // the first send holds the only session
	wg.Go(func() { errs[1] = send() })
	deadline := time.Now().Add(10 * time.Second)
	for !parkedIn("(*Sender).acquire") {
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatal("the second send never waited for a session")
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("sends = %v", errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waits) != 1 || waits[0] != "one maxSessions true" {
		t.Errorf("waits %q, want one maxSessions wait of connection one", waits)
	}
}

// parkedIn reports whether a goroutine is blocked in a select inside fn.
func parkedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "[select") && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}
