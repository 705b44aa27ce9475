// Package compose turns a notification into the bytes of an RFC 5322 / MIME
// message, checks envelope addresses, and canonicalises a DATA stream: the
// part of sending mail where content supplied by users of a workflow engine
// meets the SMTP protocol.
//
// The Sender uses it in this order: Message.Validate (or WriteTo, which
// validates first), ValidateEnvelope for MAIL FROM and every RCPT TO,
// NeedsSMTPUTF8 to decide on SMTPUTF8 (and Message.UTF8Headers),
// Message.EstimatedSize for the SIZE parameter, and Message.WriteTo into
// NewCanonicalWriter over go-smtp's DATA writer. A caller that already has
// a complete message (the raw path) writes it into NewCanonicalWriter.
//
// # Security guarantees
//
// The package exists to close three holes (threats T1 to T3 of the
// project's security notes):
//
//   - SMTP smuggling (T1). A composed message has no bare CR, bare LF or
//     NUL, no line over 998 octets and no line that is just "."; text is
//     quoted-printable with its line endings made CRLF first, attachments
//     are base64. NewCanonicalWriter makes any stream's line endings CRLF
//     and refuses NUL and overlong lines, because go-smtp's DotWriter turns
//     bare LF into CRLF but passes bare CR through, so "<CR>.<CR>" would
//     reach the server unchanged.
//   - Envelope parameter injection (T2). ValidateEnvelope accepts only a
//     plain local@domain that cannot close the "<…>" of MAIL FROM or
//     RCPT TO or add parameters such as "RET=FULL" or "ORCPT=…"; quoted
//     local parts are refused outright.
//   - Header injection (T3). Header text with CR, LF, NUL or another control
//     character is refused, values are encoded and folded by the package
//     rather than concatenated, Bcc can never be a header field, and custom
//     fields cannot replace the ones the package writes itself.
//
// # Why the package writes MIME itself
//
// This is the one place that says why; the README and the emailconn
// package doc refer here. The package writes every octet of a message
// itself: the MIME tree and boundaries (tree, writeSimple, writeStream),
// quoted-printable text (appendQP) and base64 attachments (base64Writer),
// MIME parameters (formatParams, RFC 2231 for non-ASCII file names) and
// header folding (fold). Header text is RFC 2047-encoded with the standard
// library's mime package and addresses are formatted with net/mail. It
// does not use go-message to write, because go-message
//
//   - allocates for every encoded line, which cost more than the rest of a
//     send (measured in internal/bench);
//   - folds a header field at 998 octets instead of 78 when its first word
//     does not fit (a Subject whose first encoded-word follows
//     "Subject: "), inserts a space into a word it cannot fold, and panics
//     on field names of 74 octets or more;
//   - writes a non-ASCII file name as an RFC 2047 encoded-word inside a
//     quoted parameter, which RFC 2047 §5 forbids and Go's
//     mime.ParseMediaType does not decode.
//
// go-message (github.com/emersion/go-message) is still a dependency of the
// module: the tests and fuzz targets read every composed message back with
// it (and with net/mail and mime), as independent readers.
//
// # Errors
//
// Messages are lower case and carry no "emailconn: " prefix; the public
// package adds it when it wraps them. Validation errors are *FieldError
// values joined with errors.Join; address errors are *AddressError; the
// canonical writer returns ErrNUL and ErrLineTooLong.
package compose
