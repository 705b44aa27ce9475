package emailconn

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue17_BatchesPipelined: recipient batching (issue 14) with
// pipelined transactions. A batch is one flight: the server's 452 "too
// many recipients" to the RCPTs past its limit defers exactly those to the
// next transaction, while the replies to the others in the same flight
// stand — a recipient refused for itself is reported, not deferred, and one
// the server accepted after a 452 gets the message once.
func TestIssue17_BatchesPipelined(t *testing.T) {
	t.Parallel()
	for _, m := range []struct {
		name             string
		chunking, nopipe bool
		max              int
	}{
		{"DATA/server-452", false, false, 0},
		{"BDAT/server-452", true, false, 0},
		{"BDAT/max-per-message", true, false, 40},
		{"lockstep/server-452", true, true, 0},
	} {
		t.Run(m.name, func(t *testing.T) {
			var n atomic.Int64
			srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: m.chunking,
				MailHook: func(string) *smtp.SMTPError { n.Store(0); return nil },
				RcptHook: func(to string) *smtp.SMTPError {
					switch {
					case strings.HasPrefix(to, "bad"):
						return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
					case strings.HasPrefix(to, "vip"):
						return nil // a server that takes this one whatever its count
					case n.Load() >= 50:
						return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
					}
					n.Add(1)
					return nil
				}})
			c := Connection{Name: "b", MailServer: srv.Addr(), From: "engine@example.com", SendTimeout: 5 * time.Second,
				DisablePipelining: m.nopipe, MaxRecipientsPerMessage: m.max}
			s := mustSender(t, c, nil)
			to := recipients(120)
			to = append(to[:60], append([]string{"bad1@example.com", "vip1@example.com", "bad2@example.com"}, to[60:]...)...)
			rc, err := s.Send(context.Background(), &Message{To: to, Subject: "s", Text: "t"})
			if rc == nil || len(rc.Accepted) != 121 || len(rc.Rejected) != 2 {
				t.Fatalf("Send = %+v, %v; want 121 accepted, 2 refused", rc, err)
			}
			got := map[string]int{}
			for _, msg := range srv.Messages() {
				for _, r := range msg.To {
					got[r]++
				}
			}
			for _, r := range to {
				want := 1
				if strings.HasPrefix(r, "bad") {
					want = 0
				}
				if got[r] != want {
					t.Errorf("%s delivered %d times, want %d", r, got[r], want)
				}
			}
			if m.max > 0 && rc.Transactions < 4 {
				t.Errorf("%d transactions for 123 recipients at %d each", rc.Transactions, m.max)
			}
		})
	}
}
