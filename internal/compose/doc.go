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
// # Dependencies
//
// MIME structure, RFC 2047 encoding, address formatting and the
// quoted-printable and base64 transfer encodings are go-message's
// (github.com/emersion/go-message). Header fields are folded here, because
// go-message's folding breaks long encoded subjects at 998 octets instead
// of 78 and inserts spaces into words it cannot fold.
//
// # Errors
//
// Messages are lower case and carry no "emailconn: " prefix; the public
// package adds it when it wraps them. Validation errors are *FieldError
// values joined with errors.Join; address errors are *AddressError; the
// canonical writer returns ErrNUL and ErrLineTooLong.
package compose
