package emailconn

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue14_RetryOutlastsRestart: a server restarting for 2 seconds
// answers every connection with "421 4.3.2 Service not available" and
// closes it; a send with the default retry policy (no MaxAttempts, a
// 30-second window) is delivered once the server is back, where the old
// default of 3 attempts within about 1.5 s gave up.
func TestIssue14_RetryOutlastsRestart(t *testing.T) {
	t.Parallel()
	const restart = 2 * time.Second
	begin := time.Now()
	srv := smtptest.NewServer(t, smtptest.Options{
		ConnectHook: func(int) *smtp.SMTPError {
			if time.Since(begin) < restart {
				return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available, closing transmission channel"}
			}
			return nil
		},
	})
	c := Connection{Name: "restart", MailServer: srv.Addr(), From: "engine@example.com", SendTimeout: 5 * time.Second}
	rc, err := mustSender(t, c, nil).Send(context.Background(), &Message{To: []string{"a@example.com"}, Text: "x"})
	if err != nil {
		t.Fatalf("Send across a %v restart: %v", restart, err)
	}
	if rc.Attempts < 2 || time.Since(begin) < restart || len(srv.Messages()) != 1 {
		t.Errorf("%d attempts, %d messages after %v; want a retry after the restart and one message", rc.Attempts, len(srv.Messages()), time.Since(begin))
	}
}

// TestIssue14_RetryWindowEnds: with MaxElapsed set, a server that never
// comes back is given up on within the window, with no attempt count.
func TestIssue14_RetryWindowEnds(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{
		ConnectHook: func(int) *smtp.SMTPError {
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service not available"}
		},
	})
	c := Connection{Name: "down", MailServer: srv.Addr(), From: "engine@example.com", SendTimeout: 5 * time.Second}
	opts := &Options{Retry: RetryPolicy{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxElapsed: 600 * time.Millisecond}}
	start := time.Now()
	_, err := mustSender(t, c, opts).Send(context.Background(), &Message{To: []string{"a@example.com"}, Text: "x"})
	if err == nil {
		t.Fatal("Send to a server that never comes back succeeded")
	}
	if d := time.Since(start); d > 2*time.Second || srv.Sessions() < 4 {
		t.Errorf("gave up after %v and %d sessions; want several attempts within the 600 ms window", d, srv.Sessions())
	}
}

// TestIssue14_TestConnectionLimits: Test Connection reports the limits in
// force (provider defaults and own fields, and which came from where) and
// says in plain words that a reply is the provider's concurrency limit.
func TestIssue14_TestConnectionLimits(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{
		Faults: []smtptest.Fault{{At: "MAIL", Reply: "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information."}},
	})
	c := Connection{Name: "m365", MailServer: srv.Addr(), From: "engine@example.com", Provider: providerMicrosoft365,
		MessagesPerMinute: 20, SendTimeout: 5 * time.Second}
	rep := c.Test(context.Background(), &TestOptions{ProbeRecipient: "probe@example.com"})
	l := rep.Limits
	if l == nil || l.Provider != providerMicrosoft365 || l.MaxSessions != 3 || l.MessagesPerMinute != 20 || l.RecipientsPerDay != 10000 ||
		!slices.Contains(l.FromProvider, "maxSessions") || slices.Contains(l.FromProvider, "messagesPerMinute") {
		t.Errorf("limits = %+v", l)
	}
	if rep.OK || !slices.ContainsFunc(rep.Hints, func(h string) bool { return strings.Contains(h, "3 concurrent SMTP sessions") }) {
		t.Errorf("hints = %q, want the concurrency limit in plain words", rep.Hints)
	}
	if rep := (Connection{MailServer: srv.Addr(), From: "engine@example.com"}).Test(context.Background(), nil); rep.Limits != nil {
		t.Errorf("a connection without limits reports %+v", rep.Limits)
	}
}
