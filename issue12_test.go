package emailconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
	"github.com/emersion/go-smtp"
)

// traceLog keeps every argument a Trace's hooks were given, as text.
type traceLog struct {
	mu     sync.Mutex
	events []string
	errs   []error
}

func (l *traceLog) add(err error, format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, a...))
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

func (l *traceLog) trace() *emailconn.Trace {
	return &emailconn.Trace{
		StageDone: func(_ context.Context, i emailconn.StageResult) {
			skipped := ""
			if i.Outcome == emailconn.OutcomeSkipped {
				skipped = i.Detail
			}
			l.add(i.Err, "stage %s %v %q %v", i.Stage, i.Err, skipped, i.Duration >= 0)
		},
		Connected: func(_ context.Context, a string) { l.add(nil, "connected %s", a) },
		Greeting:  func(_ context.Context, t string) { l.add(nil, "greeting %s", t) },
		Capabilities: func(_ context.Context, ext []string) {
			l.add(nil, "ext %v", ext)
		},
		Authenticated:   func(_ context.Context, m string) { l.add(nil, "auth %s", m) },
		TransactionDone: func(_ context.Context, t emailconn.TransactionInfo) { l.add(t.Err, "tx %+v", t) },
	}
}

// TestIssue12_TraceSeam: the Trace in Options sees the stages of every
// session a send opens and every transaction, with errors classified as
// the send's own (never a raw cause), and never a credential.
func TestIssue12_TraceSeam(t *testing.T) {
	t.Parallel()
	t.Run("issue12/stages-and-transaction", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"u": "pw-canary-123"},
			RcptHook: func(to string) *smtp.SMTPError {
				if to == "bad@example.com" {
					return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
				}
				return nil
			}})
		c := connFor(t, srv, "starttls")
		c.Username, c.Password = "u", "pw-canary-123"
		l := &traceLog{}
		s := mustSender(t, c, &emailconn.Options{Trace: l.trace()})
		rc, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ok@example.com", "bad@example.com"}, Subject: "s", Text: "t"})
		if rc == nil || !errors.Is(err, emailconn.ErrRecipientRejected) {
			t.Fatalf("Send = %v, %v; want a receipt and ErrRecipientRejected", rc, err)
		}
		all := strings.Join(l.events, "\n")
		for _, want := range []string{"stage resolve <nil> \"the mail server is an IP address\"", "stage connect <nil>", "stage greeting <nil>",
			"stage ehlo <nil>", "stage starttls <nil>", "stage auth <nil>", "auth PLAIN", "connected 127.0.0.1:", "Accepted:1 Rejected:1"} {
			if !strings.Contains(all, want) {
				t.Errorf("trace lacks %q:\n%s", want, all)
			}
		}
		if strings.Contains(all, "pw-canary-123") {
			t.Errorf("trace shows the password:\n%s", all)
		}
		for _, e := range l.errs {
			var ee *emailconn.Error
			if !errors.As(e, &ee) {
				t.Errorf("hook error %T %v is not an *Error", e, e)
			}
		}
	})
	t.Run("issue12/failure-classified", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens: connection refused
		l := &traceLog{}
		s := mustSender(t, emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com"},
			&emailconn.Options{Trace: l.trace(), Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		_, err = s.Send(context.Background(), &emailconn.Message{To: []string{"b@example.com"}, Subject: "s", Text: "t"})
		if !errors.Is(err, emailconn.ErrConnect) {
			t.Fatalf("Send = %v, want ErrConnect", err)
		}
		if len(l.errs) != 1 || !errors.Is(l.errs[0], emailconn.ErrConnect) || l.errs[0].Error() != err.Error() {
			t.Errorf("hook errors %v, want the send's own %v", l.errs, err)
		}
	})
}
