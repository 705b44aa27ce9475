package emailconn

import (
	"context"
	"sync"
	"testing"
	"time"

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
