// Package emailconntest provides an SMTP server for the unit tests of an
// engine that sends its notifications with emailconn, as net/http/httptest
// does for HTTP: a real server on a loopback address, at a port the system
// chooses, with STARTTLS or implicit TLS and AUTH when asked, that decodes
// every message it accepts.
//
//	srv := emailconntest.NewServer(&emailconntest.Options{
//		TLS:      "starttls",
//		Username: "alerts", Password: "s3cret",
//	})
//	defer srv.Close()
//
//	conn := srv.Connection("workunit-alerts") // trusts the server's CA, credentials filled in
//	conn.From = "alerts@example.com"
//	… send through a Registry or a Sender …
//
//	m := srv.Messages()[0]
//	m.To, m.Subject, m.Text, m.HTML, m.Attachments // decoded
//
// The server's certificate is made when the first server of the process
// starts and is trusted through Connection's RootCAs: nothing is written to
// disk, and certificate verification stays on.
//
// The server is meant for tests: it keeps every message in memory, listens
// on 127.0.0.1 only, and speaks enough ESMTP (PIPELINING, 8BITMIME, SIZE,
// ENHANCEDSTATUSCODES, STARTTLS, AUTH PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER)
// to exercise everything emailconn does. Options.RejectRecipients and
// Options.Refuse make it refuse what an engine must handle.
package emailconntest
