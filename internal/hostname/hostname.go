// Package hostname holds the one validator of DNS host names in emailconn.
// Every place that accepts a host name checks it here: the domain of every
// address (the composer's envelope check, which Connection.Validate,
// LoadConfig and the Sender share), the mail server, the EHLO name, the
// OAuth2 tenant, and the host of an Email Actions Base URL and of an
// action link origin. The contexts differ only in the few Rules below; the
// labels, lengths and the numeric-label rule are the same everywhere, so a
// name accepted when a configuration is saved is accepted when it is used.
package hostname

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of a DNS name, in octets (RFC 1035 §2.3.4).
const (
	maxName  = 253 // without a trailing dot
	maxLabel = 63
)

// Rules select the variant of the host name syntax a context accepts. The
// zero value is the strictest: an RFC 5321 domain (letters, digits and
// hyphens; no trailing dot), which is what a mail domain and an EHLO name
// must be.
type Rules struct {
	// Underscore allows "_" in labels. Names of hosts that are looked up
	// or linked to (a mail server, a URL's host) may hold it: Go's
	// resolver and browsers accept it. A mail domain and an EHLO name may
	// not (RFC 5321 §4.1.2; Exim refuses such an EHLO by default).
	Underscore bool
	// TrailingDot allows one "." at the end: an absolute DNS name, such as
	// a mail server "relay.internal.".
	TrailingDot bool
	// Unicode allows non-ASCII UTF-8 in labels (U-labels), as the domain
	// of an SMTPUTF8 address may hold (RFC 6531). Without it a non-ASCII
	// name is refused with a hint to write it in punycode.
	Unicode bool
}

// Check returns why name is not a host name under r, as a phrase that
// follows the name ("has an empty label (leading, trailing or double
// dot)"), or "" if it is one. It never quotes name: callers name the field
// and quote the value themselves.
//
// A host name is 1 to 253 octets of dot-separated labels; each label is 1
// to 63 octets of ASCII letters, digits and hyphens (and underscores, or
// non-ASCII UTF-8, when r allows them) and does not start or end with a
// hyphen. Its last label must not be a number (decimal digits, or 0x and
// hex digits): a browser (WHATWG URL "ends in a number") and a resolver
// read such a name as an IPv4 address, so "example.123" and "0x7f.1" are
// refused, and callers that accept IP addresses check them first.
func Check(name string, r Rules) string {
	if r.TrailingDot && len(name) > 1 {
		name = strings.TrimSuffix(name, ".")
	}
	if name == "" {
		return "is empty"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isLetDig(c) || c == '-' || c == '.':
		case c == '_' && r.Underscore:
		case c >= utf8.RuneSelf && r.Unicode:
		case c >= utf8.RuneSelf:
			return "is not ASCII (write an internationalised name in punycode, xn--…)"
		default:
			return fmt.Sprintf("contains %q, which is not allowed in a host name", string(c))
		}
	}
	if r.Unicode && !utf8.ValidString(name) {
		return "is not valid UTF-8"
	}
	if len(name) > maxName {
		return fmt.Sprintf("is longer than %d octets", maxName)
	}
	last := ""
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return "has an empty label (leading, trailing or double dot)"
		case len(label) > maxLabel:
			return fmt.Sprintf("has a label longer than %d octets", maxLabel)
		case label[0] == '-' || label[len(label)-1] == '-':
			return `has a label that starts or ends with "-"`
		}
		last = label
	}
	if IsNumericLabel(last) {
		return "ends in a numeric label, which reads as an IP address"
	}
	return ""
}

// EndsInNumber reports whether the last label of name (after one trailing
// dot, if any) is a number as IsNumericLabel defines it: the names a
// browser parses as IPv4 addresses.
func EndsInNumber(name string) bool {
	name = strings.TrimSuffix(name, ".")
	return IsNumericLabel(name[strings.LastIndexByte(name, '.')+1:])
}

// IsNumericLabel reports whether label is a number in the sense of the
// WHATWG URL IPv4 parser: one or more decimal digits, or "0x" or "0X"
// followed by hex digits (none is a number too).
func IsNumericLabel(label string) bool {
	if label == "" {
		return false
	}
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		for i := 2; i < len(label); i++ {
			if !isHex(label[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(label); i++ {
		if !isDigit(label[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetDig(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isHex(c byte) bool    { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
