// Package actionlink rewrites the action links (approve, reject) that a
// workflow engine generates with its own origin so that they point at an
// Email Actions Base URL instead.
//
// The security guarantee of the package is that a rewritten link's authority
// is always exactly the base's scheme, host and port: nothing taken from the
// link can change the host a reader's click goes to. Path, query and fragment
// are copied byte for byte, never decoded, re-encoded or normalised.
package actionlink

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emailconn/emailconn/internal/hostname"
)

// An Error says which part of a base URL, an origin or a link was refused,
// and why.
type Error struct {
	// Part names the part as a user knows it, in lower case: "url",
	// "scheme", "user info", "host", "port", "path", "query", "fragment"
	// or "link".
	Part string
	// Problem completes the sentence that starts with Part, in lower case,
	// for example `"/x" is not allowed (only scheme, host and port)`.
	Problem string
}

// Error returns Part and Problem as one phrase, for example
// `path "/x" is not allowed (only scheme, host and port)`.
func (e *Error) Error() string { return e.Part + " " + e.Problem }

// origin is a validated scheme://host[:port], the part of a URL that a
// Base replaces and an Origin matches.
type origin struct {
	scheme string // "http" or "https"
	host   string // lower case; an IPv6 literal keeps its brackets
	port   string // decimal without leading zeros; "" when the scheme's default
	str    string // scheme + "://" + host, then ":" + port when port != ""
}

// A Base is a validated Email Actions Base URL. Its methods are safe for
// concurrent use.
type Base struct{ o origin }

// An Origin is the validated origin under which an engine generates its
// action links, for example http://engine.internal:8080. Its methods are
// safe for concurrent use.
type Origin struct{ o origin }

// ParseBase validates an Email Actions Base URL and returns it normalised.
//
// The URL must be absolute, with the scheme http or https (any case), a
// host, an optional port from 1 to 65535, and nothing else: the path may be
// empty or "/", and user info, a query or a fragment (even an empty "?" or
// "#") are refused, because each of them would either be dropped silently
// or let the text of the URL disagree with where it leads
// ("https://app.example.com@evil.example/" leads to evil.example).
// Whitespace, control characters and backslashes are refused anywhere.
// The host must be an ASCII name (an internationalised name is written in
// punycode, xn--…), a dotted-decimal IPv4 address or an IPv6 literal in
// brackets; it must not be percent-encoded.
//
// The scheme and host are lower-cased and a port equal to the scheme's
// default (80, 443) is dropped. A refusal is an *Error naming the part.
func ParseBase(s string) (*Base, error) {
	o, err := parseOrigin(s)
	if err != nil {
		return nil, err
	}
	return &Base{o}, nil
}

// ParseOrigin validates the origin under which an engine generates its
// action links, with the same rules as ParseBase. A port equal to the
// scheme's default is dropped, so http://engine and http://engine:80 are the
// same origin.
func ParseOrigin(s string) (*Origin, error) {
	o, err := parseOrigin(s)
	if err != nil {
		return nil, err
	}
	return &Origin{o}, nil
}

// String returns the normalised base, scheme://host[:port], without a
// trailing slash.
func (b *Base) String() string { return b.o.str }

// Scheme returns the base's scheme, "http" or "https".
func (b *Base) Scheme() string { return b.o.scheme }

// Host returns the base's host and, when it is not the scheme's default,
// its port, in the form of url.URL's Host field.
func (b *Base) Host() string { return b.o.str[len(b.o.scheme)+len("://"):] }

// String returns the normalised origin, scheme://host[:port].
func (o *Origin) String() string { return o.o.str }

func parseOrigin(s string) (origin, error) {
	if s == "" {
		return origin{}, &Error{"url", "is empty"}
	}
	if i := indexSpaceOrControl(s); i >= 0 {
		return origin{}, &Error{"url", "contains whitespace or a control character at byte " + strconv.Itoa(i)}
	}
	if strings.IndexByte(s, '\\') >= 0 {
		return origin{}, &Error{"url", "contains a backslash, which is not allowed"}
	}

	scheme, rest, ok := cutScheme(s)
	if !ok || strings.IndexByte(scheme, '.') >= 0 || rest != "" && isDigit(rest[0]) {
		// "approvals.example.com" or "localhost:8080": a host without a scheme.
		return origin{}, &Error{"scheme", "is missing (write an absolute url such as https://approvals.example.com)"}
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return origin{}, &Error{"scheme", quote(scheme) + " is not allowed (use http or https)"}
	}
	rest, ok = strings.CutPrefix(rest, "//")
	if !ok {
		return origin{}, &Error{"host", "is missing"}
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, rest := rest[:end], rest[end:]
	if strings.IndexByte(authority, '@') >= 0 {
		// Checked before anything is quoted: user info may hold a password.
		return origin{}, &Error{"user info", "is not allowed"}
	}
	host, port, err := parseAuthority(scheme, authority)
	if err != nil {
		return origin{}, err
	}

	path := rest
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		path, rest = rest[:i], rest[i:]
	} else {
		rest = ""
	}
	switch {
	case path != "" && path != "/":
		return origin{}, &Error{"path", quote(path) + " is not allowed (only scheme, host and port)"}
	case rest != "" && rest[0] == '?':
		return origin{}, &Error{"query", "is not allowed"}
	case rest != "":
		return origin{}, &Error{"fragment", "is not allowed"}
	}

	str := scheme + "://" + host
	if port != "" {
		str += ":" + port
	}
	return origin{scheme: scheme, host: host, port: port, str: str}, nil
}

// parseAuthority validates host[:port] (user info has been refused) and
// returns the lower-cased host and the normalised port, "" for the scheme's
// default.
func parseAuthority(scheme, authority string) (host, port string, err error) {
	var hasPort bool
	if strings.HasPrefix(authority, "[") {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", "", &Error{"host", quote(authority) + " is missing the closing \"]\""}
		}
		host, port = authority[:end+1], authority[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", "", &Error{"host", quote(authority) + " is not valid"}
			}
			port, hasPort = port[1:], true
		}
		if err := checkIPv6(host); err != nil {
			return "", "", err
		}
	} else {
		if strings.Count(authority, ":") > 1 {
			return "", "", &Error{"host", quote(authority) + " is not valid (write an ipv6 address in brackets)"}
		}
		host, port, hasPort = strings.Cut(authority, ":")
		if err := checkHostname(host); err != nil {
			return "", "", err
		}
	}
	host = strings.ToLower(host)
	if !hasPort {
		return host, "", nil
	}
	if port == "" {
		return "", "", &Error{"port", "is empty"}
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return "", "", &Error{"port", quote(port) + " is not a number"}
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", "", &Error{"port", quote(port) + " is out of range"}
	}
	if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
		return host, "", nil
	}
	return host, strconv.Itoa(n), nil
}

// checkIPv6 validates a bracketed IPv6 literal without a zone.
func checkIPv6(host string) error {
	lit := host[1 : len(host)-1]
	if strings.IndexByte(lit, '%') >= 0 {
		return &Error{"host", quote(host) + " is percent-encoded, which is not allowed"}
	}
	if a, err := netip.ParseAddr(lit); err != nil || !a.Is6() {
		return &Error{"host", quote(host) + " is not a valid ipv6 address"}
	}
	return nil
}

// checkHostname validates a registered name or an IPv4 address. A name
// must pass the shared host name validator (internal/hostname, with
// underscores allowed as browsers allow them); a host whose last label is
// a number is read by a browser as an IPv4 address (WHATWG URL "ends in a
// number": 0x7f.1 is 127.0.0.1), so it must be the plain dotted-decimal
// form, which means the same to everyone.
func checkHostname(host string) error {
	if host == "" {
		return &Error{"host", "is missing"}
	}
	if strings.IndexByte(host, '%') >= 0 {
		return &Error{"host", quote(host) + " is percent-encoded, which is not allowed"}
	}
	if hostname.EndsInNumber(host) {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
			return &Error{"host", quote(host) + " is not a valid ipv4 address"}
		}
		return nil
	}
	if p := hostname.Check(host, hostname.Rules{Underscore: true}); p != "" {
		return &Error{"host", quote(host) + " " + p}
	}
	return nil
}

// cutScheme splits "scheme:rest" where scheme is an RFC 3986 scheme
// (ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func cutScheme(s string) (scheme, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
		case isDigit(c) || c == '+' || c == '-' || c == '.':
			if i == 0 {
				return "", s, false
			}
		case c == ':' && i > 0:
			return s[:i], s[i+1:], true
		default:
			return "", s, false
		}
	}
	return "", s, false
}

// quote quotes s for an error message, cut to a readable length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}

// indexSpaceOrControl returns the index of the first ASCII space or control
// byte in s, or -1.
func indexSpaceOrControl(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return i
		}
	}
	return -1
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }
func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
