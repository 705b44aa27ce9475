// Package emailconn sends a workflow engine's notifications by email through
// named SMTP configurations called Email Connections.
//
// An engine has Email Connections: named SMTP configurations with a mail
// server, Enable TLS, a connect timeout and a send timeout, Basic or OAuth2
// authentication, and an Email Actions Base URL. Each process may be
// assigned one; a process without one uses the engine-wide ("grid")
// settings. A connection, once assigned, overrides the grid's addresses.
//
// # Connections
//
// A [Connection] is plain data; [Connection.Validate] reports every problem
// at once, each as a [*FieldError] naming the field. Secrets ([Secret])
// hold a literal, an "env:NAME" or a "file:PATH" reference, and never print,
// log or marshal their literal value. A reference, and a CAFile, is only
// read where [Options].References allows it; the zero [References] allows
// none, the rule for configuration entered by users.
//
// # Configuration and precedence
//
// A [Config] holds connections, OAuth2 configurations, the grid settings
// and the process assignments, in the JSON form of the configuration file
// ([LoadConfig], [Config.Save]). A [Registry] holds a Config and resolves a
// process to its [Route] without locking or allocating:
//
//   - a process assigned a connection uses it, and the grid's addresses do
//     not apply;
//   - any other process uses the grid settings;
//   - recipients named by an activity node win for that node's
//     notifications.
//
// Every value of a Route carries the [Source] it came from. Replacing the
// configuration ([Registry.Replace], [Registry.Update]) is atomic; routes
// resolved before keep the configuration they were resolved from.
//
// # Sending
//
// A [Sender] sends through one connection ([NewSender], [Registry.Sender],
// [Route.Send]); it keeps SMTP sessions open and reuses them, is safe for
// concurrent use, and retries only where the server cannot have accepted
// the message. Messages ([Message]) are written by the package's own MIME
// composer (internal/compose, whose doc says why not with go-message), with
// attachments streamed; every header value and address is checked before any
// network I/O, and nothing on the wire can end the message early. TLS is
// verified and, when required, fails closed. ConnectTimeout bounds
// establishing the session; SendTimeout bounds each wait for the server and
// each stretch of the upload that makes no progress; the context always
// wins. A [Receipt] tells what the server said; a connection that broke
// after the whole message was sent is [ErrDeliveryUnknown] and is never
// sent again automatically. Credentials are sent only over verified TLS (or
// to loopback, or with AllowInsecureAuth) and never logged.
//
// # OAuth2
//
// OAuth2 connections name an [OAuth2Config]. A [Registry] keeps one cached
// access token per configuration, refreshes it ahead of expiry with a
// single request however many sends wait, hands a rotated refresh token to
// [Options].OnRefreshToken before using the new access token, and retries
// once with a fresh token when the server rejects a cached one. XOAUTH2 and
// OAUTHBEARER are spoken. [Registry.TestOAuth2] tests a configuration on
// its own.
//
// # Test Connection
//
// [TestConnection] and [Registry.TestConnection] run the protocol up to,
// never including, sending a message, and return a [TestReport]: each stage
// with its outcome and duration, what the server offered, the certificate,
// warnings, hints that say what to change, and one sentence. A
// [DialPolicy] keeps tenants from dialling internal addresses, and
// [TestOptions].Restricted keeps a tenant's report from telling what the
// engine's position on the network reveals.
//
// # Observation
//
// [Options].Trace is a [Trace]: optional hooks, in the manner of
// net/http/httptrace, each given the send's context first: the start and
// end of each send (SendStart may return the context the rest of the send
// uses, to carry a span), each stage of a session, what the server
// offered, the TLS state, the AUTH mechanism, OAuth2 token fetches and
// refreshes, waits for provider limits, retries, the sessions the pool
// opens and closes, and the outcome of each transaction. Logging, metrics
// and tracing adapters listen there — the module
// github.com/emailconn/emailconn/otelemailconn is the OpenTelemetry one —
// and Test Connection builds its report from the same events. Without a
// Trace a send pays a nil check per event.
//
// # Action links
//
// An Email Actions Base URL replaces the scheme, host and port of the action
// links (approve, reject) the engine generates; path, query and fragment stay
// byte for byte ([RewriteActionURL], [RewriteActionLinks]). The result
// always leads to the base's host.
//
// # Errors
//
// Errors are values: test them with errors.Is against the sentinels
// ([ErrInvalid], [ErrTLSUnavailable], [ErrAuthFailed], [ErrTimeout],
// [ErrRecipientRejected], [ErrDeliveryUnknown], …) and errors.As to
// [*Error], [*SMTPError], [*RecipientsError] or [*FieldError] for the data.
// Messages start with "emailconn: ", name the connection and stage, and
// never contain a credential.
//
// # Testing
//
// Package [github.com/emailconn/emailconn/emailconntest] is the test kit
// for engines: a loopback SMTP server with TLS and AUTH whose
// Server.Connection is ready to use (trust from code through
// [Connection.RootCAs], no CA file) and whose messages come back decoded.
// [Sender.Render] and [Route.Render] give the exact bytes a message would
// be sent as, for golden files.
package emailconn
