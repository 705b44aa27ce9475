// Package smtptest provides a loopback SMTP server for tests, in the manner of
// net/http/httptest.
//
//	s := smtptest.NewServer(t, smtptest.Options{
//		TLS:   smtptest.StartTLS,
//		Users: map[string]string{"alice": "secret"},
//	})
//	c, err := smtp.Dial(s.Addr()) // github.com/emersion/go-smtp
//	…
//	msgs := s.Messages()      // what the server accepted
//	lines := s.Transcript()   // what the client sent, decrypted
//
// # Protocol
//
// The server speaks RFC 5321 ESMTP with PIPELINING, 8BITMIME,
// ENHANCEDSTATUSCODES, SIZE, and on request STARTTLS (RFC 3207), AUTH
// (RFC 4954: PLAIN, LOGIN, XOAUTH2, OAUTHBEARER), SMTPUTF8, DSN and
// CHUNKING (RFC 3030: BDAT). It is
// written for tests rather than on go-smtp's Server, because tests need what
// that server cannot give: a transcript of the decrypted client lines per
// session, byte-level faults at every step, and the XOAUTH2 and LOGIN
// servers go-sasl no longer has. It reuses go-smtp's types (SMTPError,
// MailOptions, RcptOptions) and go-sasl's PLAIN and OAUTHBEARER parsers, and
// it is strict where go-smtp's server is: only CRLF.CRLF ends DATA.
//
// # TLS
//
// Certificates are ECDSA P-256, generated once per process: a test CA
// (SharedCA) and one leaf per CertKind. CAPool and ClientTLSConfig give a
// client what it needs to verify the good certificate. The server listens on
// 127.0.0.1 only.
//
// # Faults
//
// Options.Faults injects misbehaviour at a Point of the session (the
// greeting, any command, the end of an AUTH exchange, the DATA body, after
// the final dot, after a message, while idle). See Fault for examples.
//
// Tests wait for a fault with Fired and for the end of a session with
// SessionClosed instead of sleeping and hoping a phase has been reached.
// A session the server ends sends its FIN before it stops reading, so a
// client that already sent its next command reads the last reply and EOF,
// never a reset that depends on timing (only a Reset fault, or a Drop in the
// DATA body, ends a session abruptly).
//
// # Lifetime
//
// Close closes the listener and every connection and waits for every
// goroutine the server started, so goleak finds nothing after it. NewServer
// registers Close with t.Cleanup.
package smtptest
