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
// log or marshal their literal value.
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
package emailconn
