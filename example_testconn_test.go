package emailconn_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example tests a connection against a local test server with
// STARTTLS and AUTH, including a MAIL FROM / RCPT TO probe.
func ExampleConnection_Test() {
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"})
	defer srv.Close()

	conn := srv.Connection("workunit-alerts") // STARTTLS, RootCAs, alerts / s3cret
	conn.From = "alerts@example.com"
	rep := conn.Test(context.Background(), &emailconn.TestOptions{ProbeRecipient: "ops@example.com"})

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
func ExampleConnection_Test_failure() {
	srv := emailconntest.NewServer(nil) // plaintext
	defer srv.Close()

	conn := srv.Connection("relay")
	conn.EnableTLS = true
	rep := conn.Test(context.Background(), nil)

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
