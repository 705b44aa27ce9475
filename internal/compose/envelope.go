package compose

import (
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/emailconn/emailconn/internal/hostname"
)

// Limits of an envelope mailbox, in octets.
const (
	// maxLocalPart is the RFC 5321 §4.5.3.1.1 limit of a local part.
	maxLocalPart = 64
	// maxMailbox is the RFC 5321 §4.5.3.1.3 path limit of 256 octets minus
	// the two angle brackets that enclose the mailbox in MAIL FROM and
	// RCPT TO. (RFC 3696 errata 1690 arrives at the same 254.)
	maxMailbox = 254
)

// An AddressError reports an address that cannot be used, and why.
//
// Its message quotes the address with %q, so control characters in it are
// never printed raw, and shortens it when it is very long.
type AddressError struct {
	// Addr is the address as given.
	Addr string
	// Reason says what is wrong, in lower case, for example
	// `contains ">"`.
	Reason string
}

// Error returns a message such as `address "a@x> RET=FULL": contains ">"`.
func (e *AddressError) Error() string {
	a := e.Addr
	const show = 100
	if len(a) > show {
		return fmt.Sprintf("address %q...: %s", a[:show], e.Reason)
	}
	return fmt.Sprintf("address %q: %s", a, e.Reason)
}

// ValidateEnvelope reports whether addr can be written between "<" and ">"
// in an SMTP MAIL FROM or RCPT TO command without changing the command's
// meaning. It returns nil or an *AddressError.
//
// The address must be a plain RFC 5321 Mailbox, local@domain, with no
// display name, no angle brackets and no surrounding space:
//
//   - The local part is a dot-atom: atext characters (letters, digits and
//     !#$%&'*+-/=?^_`{|}~) in dot-separated, non-empty runs, at most 64
//     octets. Quoted local parts ("john doe"@example.com) are refused
//     outright: they are rare, many servers mishandle them, and they are the
//     vehicle of the parameter-injection attack CVE-2025-59937
//     (net/mail.ParseAddress returns them unquoted).
//   - The domain is a host name of LDH labels (letters, digits, hyphens; no
//     label empty, longer than 63 octets, or starting or ending with a
//     hyphen; the last label not all digits), or an address literal
//     [192.0.2.1] or [IPv6:2001:db8::1]. A trailing dot is refused.
//   - The whole mailbox is at most 254 octets: RFC 5321's 256-octet path
//     limit less the angle brackets.
//
// Every control character (including CR, LF and NUL), space, "<", ">",
// "(", ")", ",", ";", "\", `"` and a second "@" is refused anywhere, and ":"
// everywhere but inside an IPv6 literal: that is what keeps ESMTP parameters
// such as "> RET=FULL" and "ORCPT=rfc822;…" out of the command.
//
// Non-ASCII characters are refused unless smtpUTF8 is true, which the caller
// may pass only when the server advertised SMTPUTF8 and the command will
// carry it (RFC 6531). Then the address must be valid UTF-8 and may hold
// non-ASCII characters in the local part and in domain labels; Unicode
// control, space and bidirectional-formatting characters (such as U+202E,
// which makes an address display differently from what it is) are still
// refused. Internationalised domain
// labels are not checked against IDNA2008 beyond that: the server decides.
//
// The empty address is refused: a null reverse-path "<>" is not a mailbox
// and must be handled by the caller.
func ValidateEnvelope(addr string, smtpUTF8 bool) error {
	if reason := envelopeProblem(addr, smtpUTF8); reason != "" {
		return &AddressError{Addr: addr, Reason: reason}
	}
	return nil
}

// ParseAddress parses s, an address as a user writes it in a
// configuration or a message ("a@example.com" or "Name <a@example.com>"),
// and checks its mailbox with ValidateEnvelope, allowing non-ASCII
// (whether the server offers SMTPUTF8 is known only when sending, and the
// Sender checks it then).
//
// It is the one address validator of emailconn: Connection.Validate and
// LoadConfig check From and To with it, and the Sender checks every
// address of a message with it, so an address a configuration accepts is
// one a message can be sent from or to. The error is an *AddressError for
// a mailbox that ValidateEnvelope refuses; otherwise it says
// "must not contain CR, LF or NUL" or `"x" is not an email address`.
func ParseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, errors.New("must not contain CR, LF or NUL")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address", s)
	}
	if err := ValidateEnvelope(a.Address, true); err != nil {
		return nil, err
	}
	return a, nil
}

// NeedsSMTPUTF8 reports whether any of addrs contains a non-ASCII octet,
// which means the transaction can only be sent with the SMTPUTF8 extension
// (RFC 6531).
func NeedsSMTPUTF8(addrs ...string) bool {
	for _, a := range addrs {
		for i := 0; i < len(a); i++ {
			if a[i] >= utf8.RuneSelf {
				return true
			}
		}
	}
	return false
}

// envelopeProblem returns why addr is not an acceptable envelope mailbox,
// or "" if it is.
func envelopeProblem(addr string, smtpUTF8 bool) string {
	if addr == "" {
		return "is empty"
	}
	// Forbidden characters first: they are what an attacker uses, and the
	// message should name them rather than a consequence such as a bad
	// domain.
	nonASCII := false
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		switch {
		case c == 0:
			return "contains NUL"
		case c == '\r':
			return "contains CR"
		case c == '\n':
			return "contains LF"
		case c < ' ' || c == 0x7f:
			return fmt.Sprintf("contains control character %q", c)
		case c == ' ':
			return "contains a space"
		case c == '"':
			return `contains '"' (quoted local parts are not supported)`
		case strings.IndexByte(`<>(),;\`, c) >= 0:
			return fmt.Sprintf("contains %q", string(c))
		case c >= utf8.RuneSelf:
			nonASCII = true
		}
	}
	if nonASCII {
		if !smtpUTF8 {
			return "contains non-ASCII characters, which need SMTPUTF8"
		}
		if !utf8.ValidString(addr) {
			return "is not valid UTF-8"
		}
		for _, r := range addr {
			if unicode.IsControl(r) || unicode.IsSpace(r) || unicode.Is(unicode.Bidi_Control, r) {
				return fmt.Sprintf("contains %U", r)
			}
		}
	}
	if len(addr) > maxMailbox {
		return fmt.Sprintf("is longer than %d octets", maxMailbox)
	}
	at := strings.IndexByte(addr, '@')
	if at < 0 {
		return `has no "@"`
	}
	local, domain := addr[:at], addr[at+1:]
	if strings.IndexByte(domain, '@') >= 0 {
		return `contains more than one "@"`
	}
	if p := localPartProblem(local); p != "" {
		return p
	}
	return domainProblem(domain)
}

// localPartProblem checks a dot-atom local part. Characters that are
// forbidden everywhere have already been refused, so only "[", "]", empty
// atoms and the length remain to be checked; non-ASCII characters have
// already been allowed or refused.
func localPartProblem(local string) string {
	switch {
	case local == "":
		return "has an empty local part"
	case len(local) > maxLocalPart:
		return fmt.Sprintf("has a local part longer than %d octets", maxLocalPart)
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return "has a local part with a leading, trailing or double dot"
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < utf8.RuneSelf && c != '.' && !isAtext(c) {
			return fmt.Sprintf("has %q in the local part", string(c))
		}
	}
	return ""
}

// domainProblem checks a domain: a host name under the strict rules of
// the shared validator (internal/hostname: LDH labels, no trailing dot, no
// numeric last label; U-labels, which only an SMTPUTF8 address reaches
// here with), or an address literal.
func domainProblem(domain string) string {
	if domain == "" {
		return "has an empty domain"
	}
	if domain[0] == '[' {
		return addressLiteralProblem(domain)
	}
	if strings.ContainsAny(domain, "[]") {
		return `has "[" or "]" in the domain`
	}
	if hostname.EndsInNumber(domain) {
		return "has a domain that ends in a numeric label (write an IP address as [192.0.2.1])"
	}
	if p := hostname.Check(domain, hostname.Rules{Unicode: true}); p != "" {
		return "has a domain that " + p
	}
	return ""
}

// addressLiteralProblem checks "[IPv4]" and "[IPv6:addr]" (RFC 5321
// §4.1.3). General address literals ("[tag:…]") are refused.
func addressLiteralProblem(lit string) string {
	if len(lit) < 2 || lit[len(lit)-1] != ']' {
		return `has an address literal without a closing "]"`
	}
	inner := lit[1 : len(lit)-1]
	if v6, ok := strings.CutPrefix(inner, "IPv6:"); ok {
		a, err := netip.ParseAddr(v6)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "has an invalid IPv6 address literal"
		}
		return ""
	}
	a, err := netip.ParseAddr(inner)
	if err != nil || !a.Is4() {
		return `has an invalid address literal (want [192.0.2.1] or [IPv6:2001:db8::1])`
	}
	return ""
}

// isAtext reports whether c is an ASCII atext character (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	return isLetDig(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isLetDig reports whether c is an ASCII letter or digit.
func isLetDig(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
