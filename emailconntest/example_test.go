package emailconntest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example is an engine's notification test: a STARTTLS server with
// AUTH, a Registry whose connection has an Email Actions Base URL, one send
// along a process's route, and assertions on the decoded message.
func ExampleServer() {
	srv := emailconntest.NewServer(&emailconntest.Options{
		TLS: "starttls", Username: "alerts", Password: "s3cret",
	})
	defer srv.Close()

	conn := srv.Connection("workunit-alerts") // trusts the server's CA; no file is written
	conn.From = "alerts@example.com"
	conn.ActionsBaseURL = "https://approvals.example.com"
	reg, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{conn},
		Processes:   map[string]string{"PayrollApproval": "workunit-alerts"},
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()

	rt, _ := reg.Resolve("PayrollApproval", "approver@example.com")
	_, err = rt.Send(context.Background(), &emailconn.Message{
		Subject:     "Workunit 42: approval needed",
		Text:        "Approve: http://engine.internal:8080/actions/approve?wu=42",
		Attachments: []emailconn.Attachment{{Filename: "payroll.csv", Content: strings.NewReader("name,amount\nada,42\n")}},
	})
	if err != nil {
		log.Fatal(err)
	}

	m := srv.Messages()[0]
	fmt.Println(m.From, m.To, m.Subject)
	fmt.Println(m.Text)
	fmt.Println(m.Attachments[0].Filename, m.Attachments[0].ContentType, len(m.Attachments[0].Content), "bytes")
	// Output:
	// alerts@example.com [approver@example.com] Workunit 42: approval needed
	// Approve: https://approvals.example.com/actions/approve?wu=42
	// payroll.csv text/csv 19 bytes
}

// This example refuses one recipient, so that an engine can test what it
// does with a partly delivered notification.
func ExampleOptions_rejectRecipients() {
	srv := emailconntest.NewServer(&emailconntest.Options{RejectRecipients: []string{"left-the-company@example.com"}})
	defer srv.Close()

	s, _ := emailconn.NewSender(srv.Connection("relay"), nil)
	defer s.Close()
	rc, err := s.Send(context.Background(), &emailconn.Message{
		From: "alerts@example.com", To: []string{"ops@example.com", "left-the-company@example.com"}, Text: "Workunit 42 failed",
	})
	var re *emailconn.RecipientsError
	fmt.Println(errors.Is(err, emailconn.ErrRecipientRejected), rc.Accepted)
	if errors.As(err, &re) {
		fmt.Println(re.Rejected[0].Address, re.Rejected[0].Err.Code)
	}
	fmt.Println(srv.Messages()[0].To)
	// Output:
	// true [ops@example.com]
	// left-the-company@example.com 550
	// [ops@example.com]
}

// This example refuses the first MAIL with a temporary reply: the Sender
// retries, and the second attempt is delivered.
func ExampleOptions_refuse() {
	var mails atomic.Int32
	srv := emailconntest.NewServer(&emailconntest.Options{
		Refuse: func(command, arg string) string {
			if command == "MAIL" && mails.Add(1) == 1 {
				return "451 4.3.2 System not accepting network messages"
			}
			return ""
		},
	})
	defer srv.Close()

	s, _ := emailconn.NewSender(srv.Connection("relay"), &emailconn.Options{
		Retry: emailconn.RetryPolicy{InitialBackoff: time.Millisecond},
	})
	defer s.Close()
	rc, err := s.Send(context.Background(), &emailconn.Message{From: "alerts@example.com", To: []string{"ops@example.com"}, Text: "x"})
	fmt.Println(err, rc.Attempts, len(srv.Messages()))
	// Output:
	// <nil> 2 1
}

// This example waits for a notification that the engine sends from a
// goroutine of its own.
func ExampleServer_WaitMessages() {
	srv := emailconntest.NewServer(nil)
	defer srv.Close()
	s, _ := emailconn.NewSender(srv.Connection("relay"), nil)
	defer s.Close()

	sent := make(chan error, 1)
	go func() { // the engine, elsewhere
		_, err := s.Send(context.Background(), &emailconn.Message{From: "engine@example.com", To: []string{"ops@example.com"}, Subject: "Workunit 42 failed", Text: "x"})
		sent <- err
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := srv.WaitMessages(ctx, 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msgs[0].Subject, <-sent)
	// Output:
	// Workunit 42 failed <nil>
}
