package emailconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// rcptLimitServer is a test server like Google's: at most limit
// recipients per transaction, "452 4.5.3 Your message has too many
// recipients" beyond. Sends to it must be sequential (the count is per
// transaction, reset at MAIL).
func rcptLimitServer(t *testing.T, limit int, refuse func(to string) *smtp.SMTPError) *smtptest.Server {
	var n atomic.Int64
	return smtptest.NewServer(t, smtptest.Options{
		MailHook: func(string) *smtp.SMTPError { n.Store(0); return nil },
		RcptHook: func(to string) *smtp.SMTPError {
			if n.Load() >= int64(limit) {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
					Message: "Your message has too many recipients. For more information regarding Google's sending limits, visit https://support.google.com/mail/answer/6592"}
			}
			if refuse != nil {
				if e := refuse(to); e != nil {
					return e
				}
			}
			n.Add(1)
			return nil
		},
	})
}

func recipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%03d@example.com", i)
	}
	return out
}

// TestIssue14_150RecipientsThrough100 sends one message to 150 recipients
// through a server that takes 100 per transaction: all 150 are delivered
// once, in two transactions of the same message (same Message-ID), with
// one receipt — both when the server's 452 4.5.3 splits the message
// (no provider) and when the provider's limit does (google: 100).
func TestIssue14_150RecipientsThrough100(t *testing.T) {
	for name, prov := range map[string]string{"server-452": "", "provider-google": providerGoogle} {
		t.Run(name, func(t *testing.T) {
			srv := rcptLimitServer(t, 100, nil)
			c := Connection{Name: "g", MailServer: srv.Addr(), From: "engine@example.com", Provider: prov, SendTimeout: 5 * time.Second}
			s := mustSender(t, c, nil)
			to := recipients(150)
			rc, err := s.Send(context.Background(), &Message{To: to, Subject: "s", Text: "t"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(rc.Accepted) != 150 || rc.Transactions != 2 || len(rc.Rejected) != 0 {
				t.Errorf("receipt: %d accepted, %d rejected, %d transactions; want 150, 0, 2", len(rc.Accepted), len(rc.Rejected), rc.Transactions)
			}
			msgs := srv.Messages()
			if len(msgs) != 2 {
				t.Fatalf("the server received %d messages, want 2", len(msgs))
			}
			got := map[string]int{}
			for _, m := range msgs {
				for _, r := range m.To {
					got[r]++
				}
				if id := headerValue(m.Data, "Message-Id"); id != "<"+rc.MessageID+">" {
					t.Errorf("Message-ID %s, want <%s> in every transaction", id, rc.MessageID)
				}
			}
			for _, r := range to {
				if got[r] != 1 {
					t.Errorf("%s delivered %d times", r, got[r])
				}
			}
		})
	}
}

// TestIssue14_LongRefusalSummarised checks that a long list of refused
// recipients is summarised in the error text, every detail kept in the
// RecipientsError.
func TestIssue14_LongRefusalSummarised(t *testing.T) {
	srv := rcptLimitServer(t, 1000, func(to string) *smtp.SMTPError {
		if to >= "r100" {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "The email account that you tried to reach does not exist."}
		}
		return nil
	})
	c := Connection{Name: "g", MailServer: srv.Addr(), From: "engine@example.com", SendTimeout: 5 * time.Second}
	rc, err := mustSender(t, c, nil).Send(context.Background(), &Message{To: recipients(150), Subject: "s", Text: "t"})
	var re *RecipientsError
	if rc == nil || len(rc.Accepted) != 100 || !errors.As(err, &re) || len(re.Rejected) != 50 {
		t.Fatalf("Send = %v, %v; want 100 accepted and 50 refused", rc, err)
	}
	msg := err.Error()
	if len(msg) > 400 || !strings.Contains(msg, "50 of 150 recipients refused") || !strings.Contains(msg, "550 5.1.1 ×50") {
		t.Errorf("error text (%d characters) is not a short summary: %s", len(msg), msg)
	}
}

// TestIssue14_NeverTwiceAfterAcceptance: the second transaction of a split
// message is refused once with a 451 after the data; the retry sends only
// its recipients, never those of the first transaction, which the server
// accepted.
func TestIssue14_NeverTwiceAfterAcceptance(t *testing.T) {
	var n, datas atomic.Int64
	srv := smtptest.NewServer(t, smtptest.Options{
		MailHook: func(string) *smtp.SMTPError { n.Store(0); return nil },
		RcptHook: func(string) *smtp.SMTPError {
			if n.Load() >= 100 {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3}, Message: "Too many recipients"}
			}
			n.Add(1)
			return nil
		},
		DataHook: func(string, []string, []byte) *smtp.SMTPError {
			if datas.Add(1) == 2 {
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary failure"}
			}
			return nil
		},
	})
	c := Connection{Name: "g", MailServer: srv.Addr(), From: "engine@example.com", SendTimeout: 5 * time.Second}
	rc, err := mustSender(t, c, &Options{Retry: RetryPolicy{InitialBackoff: time.Millisecond}}).Send(context.Background(), &Message{To: recipients(150), Subject: "s", Text: "t"})
	if err != nil || len(rc.Accepted) != 150 {
		t.Fatalf("Send = %v, %v; want all 150 accepted", rc, err)
	}
	got := map[string]int{}
	for _, m := range srv.Messages() {
		for _, r := range m.To {
			got[r]++
		}
	}
	for _, r := range recipients(150) {
		if got[r] != 1 {
			t.Errorf("%s delivered %d times, want once", r, got[r])
		}
	}
	if rc.Attempts != 2 || datas.Load() != 3 {
		t.Errorf("%d attempts, %d transactions with data; want 2 and 3", rc.Attempts, datas.Load())
	}
}
