package emailconn_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"sync"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example observes a send with a Trace: each stage of opening the
// session, what the server offered (AUTH only on the encrypted session,
// after the EHLO that ends the STARTTLS stage), the AUTH mechanism and the
// outcome of the transaction. A logging or metrics adapter is built the
// same way.
func ExampleTrace() {
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"})
	defer srv.Close()

	var mu sync.Mutex // hooks are called from every send's goroutine
	var events []string
	note := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf(format, a...))
	}
	trace := &emailconn.Trace{
		StageDone: func(_ context.Context, r emailconn.StageResult) {
			switch r.Outcome {
			case emailconn.OutcomeSkipped:
				note("%s skipped", r.Stage)
			case emailconn.OutcomeFailed:
				note("%s failed", r.Stage)
			default:
				note("%s", r.Stage)
			}
		},
		Capabilities: func(_ context.Context, ext []string) {
			for _, e := range ext {
				if strings.HasPrefix(e, "AUTH ") {
					note("offers %s", e)
				}
			}
		},
		Authenticated: func(_ context.Context, mech string) { note("authenticated with %s", mech) },
		TransactionDone: func(_ context.Context, t emailconn.TransactionInfo) {
			note("accepted by %d recipient(s), error %v", t.Accepted, t.Err)
		},
		SendDone: func(_ context.Context, connection string, attempts int, _ time.Duration, err error) {
			note("send through %s: %d attempt(s), error %v", connection, attempts, err)
		},
	}
	s, err := emailconn.NewSender(emailconn.Connection{
		Name: "workunit-alerts", MailServer: srv.Addr(), EnableTLS: true, RootCAs: srv.Connection("").RootCAs,
		Username: "alerts", Password: "s3cret", From: "alerts@example.com",
	}, &emailconn.Options{Trace: trace})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "Hello", Text: "Hi."}); err != nil {
		log.Fatal(err)
	}
	for _, e := range events {
		fmt.Println(e)
	}
	// Output:
	// resolve skipped
	// connect
	// greeting
	// ehlo
	// offers AUTH PLAIN LOGIN
	// starttls
	// authenticated with PLAIN
	// auth
	// accepted by 1 recipient(s), error <nil>
	// send through workunit-alerts: 1 attempt(s), error <nil>
}
