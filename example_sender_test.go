package emailconn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"path/filepath"
	"strings"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// This example sends through a local test server with STARTTLS and AUTH;
// CAFile makes the client trust the test server's certificate authority;
// Options.References allows the directory it is in.
func ExampleSender_Send() {
	srv, ca, done := exampleServer(smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alerts": "s3cret"}})
	defer done()

	s, err := emailconn.NewSender(emailconn.Connection{
		Name: "workunit-alerts", MailServer: srv.Addr(), EnableTLS: true, CAFile: ca,
		Username: "alerts", Password: "s3cret", From: "alerts@example.com",
	}, &emailconn.Options{References: emailconn.References{Dirs: []string{filepath.Dir(ca)}}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	receipt, err := s.Send(context.Background(), &emailconn.Message{
		To:      []string{"ops@example.com"},
		Subject: "Workunit 4711 failed",
		Text:    "The workunit failed at step Calculate.",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(receipt.Accepted, receipt.TLSVersion != "", receipt.Mechanism)
	m := srv.Messages()[0]
	fmt.Println(m.From, m.To, strings.Contains(string(m.Data), "Subject: Workunit 4711 failed"))
	// Output:
	// [ops@example.com] true PLAIN
	// alerts@example.com [ops@example.com] true
}

// This example shows the errors of a failed send: the server rejects the
// credentials.
func ExampleError() {
	srv, ca, done := exampleServer(smtptest.Options{TLS: smtptest.Implicit, Users: map[string]string{"alerts": "other"}})
	defer done()

	s, err := emailconn.NewSender(emailconn.Connection{
		Name: "workunit-alerts", MailServer: srv.Addr(), TLSMode: emailconn.TLSImplicit, CAFile: ca,
		Username: "alerts", Password: "wrong", From: "alerts@example.com",
	}, &emailconn.Options{References: emailconn.References{Dirs: []string{filepath.Dir(ca)}}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	_, err = s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})

	var e *emailconn.Error
	var se *emailconn.SMTPError
	fmt.Println(errors.Is(err, emailconn.ErrAuthFailed), errors.As(err, &e), e.Stage)
	fmt.Println(errors.As(err, &se), se.Code, se.Enhanced(), se.Temporary())
	// Output:
	// true true auth
	// true 535 5.7.8 false
}
