package emailconn

// Regression tests for the sending-core items of issues 10 and 11, named
// TestIssueNN_MM_… after the issue and item.

import (
	"context"
	"errors"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestIssue10_03_RcptReplyKeptAsSent(t *testing.T) {
	tests := []struct {
		name string
		ec   smtp.EnhancedCode
		temp bool
	}{
		{"552 5.5.3 too many recipients", smtp.EnhancedCode{5, 5, 3}, true},
		{"552 without enhanced code", smtp.NoEnhancedCode, true},
		{"552 5.2.2 mailbox full", smtp.EnhancedCode{5, 2, 2}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{RcptHook: func(to string) *smtp.SMTPError {
				if to == "b@example.com" {
					return &smtp.SMTPError{Code: 552, EnhancedCode: tt.ec, Message: "no"}
				}
				return nil
			}})
			s := mustSender(t, connFor(t, srv, TLSNone), nil)
			rc, err := s.Send(context.Background(), &Message{To: []string{"a@example.com", "b@example.com"}, Subject: "s", Text: "t"})
			var re *RecipientsError
			if rc == nil || !errors.As(err, &re) || len(re.Rejected) != 1 {
				t.Fatalf("Send = %v, %v; want a receipt and one refused recipient", rc, err)
			}
			got := re.Rejected[0].Err
			wantEC := [3]int{}
			if tt.ec != smtp.NoEnhancedCode {
				wantEC = [3]int(tt.ec)
			}
			if got.Code != 552 || got.EnhancedCode != wantEC {
				t.Errorf("refusal = %d %v, want the server's 552 %v", got.Code, got.EnhancedCode, wantEC)
			}
			if re.Temporary() != tt.temp {
				t.Errorf("Temporary() = %v, want %v", re.Temporary(), tt.temp)
			}
		})
	}
}
