package emailconn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example sends through a local test server with STARTTLS and AUTH
// (see package emailconntest). RootCAs makes the client trust the test
// server's certificate authority without a CA file.
func ExampleSender_Send() {
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"})
	defer srv.Close()

	s, err := emailconn.NewSender(emailconn.Connection{
		Name: "workunit-alerts", MailServer: srv.Addr(), EnableTLS: true, RootCAs: srv.Connection("").RootCAs,
		Username: "alerts", Password: "s3cret", From: "alerts@example.com",
	}, nil)
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
	fmt.Println(m.From, m.To, m.Subject)
	// Output:
	// [ops@example.com] true PLAIN
	// alerts@example.com [ops@example.com] Workunit 4711 failed
}

// This example shows the errors of a failed send: the server rejects the
// credentials.
func ExampleError() {
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "implicit", Username: "alerts", Password: "other"})
	defer srv.Close()

	conn := srv.Connection("workunit-alerts") // "implicit" TLS, RootCAs, the server's credentials
	conn.Password = "wrong"
	conn.From = "alerts@example.com"
	s, err := emailconn.NewSender(conn, nil)
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

// This example renders a notification to the bytes Send would send,
// without a server, as a golden-file test does: with Date and MessageID
// fixed, the output is the same on every run.
func ExampleSender_Render() {
	s, err := emailconn.NewSender(emailconn.Connection{
		Name: "workunit-alerts", MailServer: "smtp.example.com", EnableTLS: true,
		From: "alerts@example.com", ActionsBaseURL: "https://approvals.example.com",
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	var b strings.Builder
	_, err = s.Render(&b, &emailconn.Message{
		To:        []string{"approver@example.com"},
		Subject:   "Workunit 42: approval needed",
		Text:      "Approve: http://engine.internal:8080/actions/approve?wu=42",
		Date:      time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		MessageID: "wu42.approval@example.com",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(strings.ReplaceAll(b.String(), "\r\n", "\n"))
	// Output:
	// Date: Tue, 01 Dec 2026 09:30:00 +0000
	// From: <alerts@example.com>
	// To: <approver@example.com>
	// Subject: Workunit 42: approval needed
	// Message-ID: <wu42.approval@example.com>
	// MIME-Version: 1.0
	// Content-Type: text/plain; charset=utf-8
	// Content-Transfer-Encoding: quoted-printable
	//
	// Approve: https://approvals.example.com/actions/approve?wu=3D42
}
