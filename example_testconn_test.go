package emailconn_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// This example tests a connection against a local test server with
// STARTTLS and AUTH, including a MAIL FROM / RCPT TO probe.
func ExampleTestConnection() {
	srv, ca, done := exampleServer(smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alerts": "s3cret"}})
	defer done()

	rep := emailconn.TestConnection(context.Background(), emailconn.Connection{
		Name: "workunit-alerts", MailServer: srv.Addr(), EnableTLS: true, CAFile: ca,
		ConnectTimeout: 10e9, SendTimeout: 30e9,
		Username: "alerts", Password: "s3cret", From: "alerts@example.com",
	}, &emailconn.TestOptions{
		ProbeRecipient: "ops@example.com",
		// The engine's own configuration: its CA file's directory is allowed.
		Options: &emailconn.Options{References: emailconn.References{Dirs: []string{filepath.Dir(ca)}}},
	})

	fmt.Println("ok:", rep.OK)
	for _, s := range rep.Stages {
		fmt.Printf("%-12s %s\n", s.Stage, s.Outcome)
	}
	fmt.Println(rep.Server.TLSVersion, rep.Server.Mechanism, rep.Server.AuthMechanisms)
	// Output:
	// ok: true
	// resolve      skipped
	// connect      passed
	// tls          skipped
	// greeting     passed
	// ehlo         passed
	// starttls     passed
	// oauth2 token skipped
	// auth         passed
	// mail         passed
	// rcpt         passed
	// rset         passed
	// quit         passed
	// TLS 1.3 PLAIN [PLAIN LOGIN]
}

// This example shows a failing test: the server does not offer STARTTLS,
// which the connection requires. The report names the stage and says what
// to change.
func ExampleTestConnection_failure() {
	srv := smtptest.NewServer(nil, smtptest.Options{TLS: smtptest.Plain})
	defer srv.Close()

	rep := emailconn.TestConnection(context.Background(), emailconn.Connection{
		Name: "relay", MailServer: srv.Addr(), EnableTLS: true,
		ConnectTimeout: 10e9, SendTimeout: 30e9,
	}, nil)

	fmt.Println("ok:", rep.OK)
	for _, s := range rep.Stages[3:7] {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-12s %-7s %s", s.Stage, s.Outcome, s.Detail)))
	}
	fmt.Println(strings.Contains(rep.Hints[0], "does not offer STARTTLS on port"))
	// Output:
	// ok: false
	// greeting     passed
	// ehlo         passed
	// starttls     failed  server does not offer STARTTLS
	// oauth2 token not run
	// true
}
