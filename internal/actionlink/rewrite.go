package actionlink

import (
	"strconv"
	"strings"
)

// Rewrite returns link with its scheme, host and port replaced by the
// base's. The path, query and fragment are copied byte for byte; when the
// link has no path but a query or fragment, a "/" is put before them.
//
// link is either an absolute http or https URL (the scheme in any case),
// whose authority is discarded whatever host it names, or an
// origin-relative path starting with a single "/". Rewrite refuses, with an
// *Error:
//   - other schemes (javascript:, data:, mailto:, …) and relative links;
//   - scheme-relative links ("//host/…"), which name a host of their own;
//   - user info in the authority ("https://engine@evil.example/"), which
//     signals a link crafted to mislead;
//   - whitespace, control characters and backslashes anywhere, which
//     browsers strip or read as "/" ("/\evil.example" is "//evil.example");
//   - malformed percent-encoding ("%zz"), so that the result parses.
//
// The result always starts with b.String() followed by "/", "?", "#" or
// nothing, so its host is the base's. Error messages never quote the link:
// it may carry a token.
func (b *Base) Rewrite(link string) (string, error) {
	suffix, err := linkSuffix(link)
	if err != nil {
		return "", err
	}
	if suffix != "" && suffix[0] != '/' {
		return b.o.str + "/" + suffix, nil
	}
	return b.o.str + suffix, nil
}

// linkSuffix returns the path, query and fragment of link: the bytes after
// its authority, or the whole link when it is origin-relative.
func linkSuffix(link string) (string, error) {
	if link == "" {
		return "", &Error{"link", "is empty"}
	}
	if i := indexSpaceOrControl(link); i >= 0 {
		return "", &Error{"link", "contains whitespace or a control character at byte " + strconv.Itoa(i)}
	}
	if i := strings.IndexByte(link, '\\'); i >= 0 {
		return "", &Error{"link", "contains a backslash at byte " + strconv.Itoa(i) + " (percent-encode it as %5C)"}
	}
	rest := link
	if link[0] == '/' {
		if len(link) > 1 && link[1] == '/' {
			return "", &Error{"link", "is scheme-relative (//host), which is not allowed"}
		}
	} else {
		scheme, r, ok := cutScheme(link)
		if !ok {
			return "", &Error{"link", "is relative (only absolute http or https links and paths starting with \"/\" are allowed)"}
		}
		if scheme = strings.ToLower(scheme); scheme != "http" && scheme != "https" {
			return "", &Error{"scheme", quote(scheme) + " is not allowed (use http or https)"}
		}
		r, ok = strings.CutPrefix(r, "//")
		if !ok {
			return "", &Error{"host", "is missing"}
		}
		end := strings.IndexAny(r, "/?#")
		if end < 0 {
			end = len(r)
		}
		if end == 0 {
			return "", &Error{"host", "is missing"}
		}
		if strings.IndexByte(r[:end], '@') >= 0 {
			return "", &Error{"user info", "is not allowed"}
		}
		rest = r[end:]
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '%' && (i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2])) {
			at := len(link) - len(rest) + i
			return "", &Error{"link", "has malformed percent-encoding at byte " + strconv.Itoa(at)}
		}
	}
	return rest, nil
}

// RewriteBody replaces the engine's origin o by the base in every action
// link of a text or HTML body and returns the new body and the number of
// links rewritten. Every other byte is left as it is; a body without such
// links is returned without being copied.
//
// An occurrence of o is a candidate only when it is a whole origin:
//   - it starts at a URL boundary: the byte before it, if any, is not a
//     letter, digit, "+", "-" or ".", so "xhttp://engine…" is not one;
//   - scheme and host match o in any case, and the port matches o's (a
//     default port may be written or left out: http://engine and
//     http://engine:80 are the same origin, http://engine:8080 another);
//   - the byte after it is "/", "?", "#", whitespace, one of `"'<>)],` or
//     the end of the body, so "http://engine:8080.evil.example",
//     "http://engine:8080@evil.example" and "http://engine:80800" are left
//     alone.
//
// A candidate is rewritten only when it is the scheme and authority of a
// link the way a reader's software reads it at that position (see
// links.go): in every reading that can apply (a linkifier on text, a
// browser on a double-quoted, single-quoted or unquoted attribute value,
// with character references decoded and tabs and newlines removed), the
// authority ends right after it ("/", "?", "#", the end of the link, or
// bytes that make the URL unparsable and hold no "@"), and it is not
// inside the authority of a URL that starts before it. So
// `href="http://engine'@evil.example/"`, "http://engine)@evil.example/"
// in text, `href="http://engine<TAB>@evil.example/"` and
// "http://x@http://engine/" are left alone: a rewritten link's authority
// is always exactly the base's, in every reading.
//
// Occurrences inside another link's query ("…?next=http://engine/…"),
// inside mailto: and javascript: text and inside <code> are rewritten
// like any other: a reader cannot reach the engine's origin from anywhere,
// and leaving it would show internal host names. An origin written with a
// character reference ("http:&#47;&#47;engine…") is not recognised, which
// is how a body keeps one unchanged.
func (b *Base) RewriteBody(o *Origin, body string) (string, int) {
	start, end := o.o.next(body, 0)
	if start < 0 {
		return body, 0
	}
	// Every match is at least len(o.o.str) long, so this bounds the output
	// and the builder is grown once.
	size := len(body)
	if extra := len(b.o.str) - len(o.o.str); extra > 0 {
		size += extra * o.o.count(body, start)
	}
	var sb strings.Builder
	sb.Grow(size)
	n, last := 0, 0
	for start >= 0 {
		sb.WriteString(body[last:start])
		sb.WriteString(b.o.str)
		n, last = n+1, end
		start, end = o.o.next(body, end)
	}
	sb.WriteString(body[last:])
	return sb.String(), n
}

// count returns how many matches of o start at or after from.
func (o *origin) count(body string, from int) int {
	n := 0
	for start, end := o.next(body, from); start >= 0; start, end = o.next(body, end) {
		n++
	}
	return n
}

// next returns the bounds of the first match of o in body at or after
// from, or -1, -1.
func (o *origin) next(body string, from int) (start, end int) {
	for {
		i := strings.Index(body[from:], "://")
		if i < 0 {
			return -1, -1
		}
		sep := from + i
		if start, end, ok := o.matchAt(body, sep); ok && isLink(body, start, end) {
			return start, end
		}
		from = sep + len("://")
	}
}

// matchAt reports whether a match of o has its "://" at body[sep:].
func (o *origin) matchAt(body string, sep int) (start, end int, ok bool) {
	start = sep - len(o.scheme)
	if start < 0 || !hasLowerPrefixFold(body[start:], o.scheme) ||
		start > 0 && isSchemeByte[body[start-1]] {
		return 0, 0, false
	}
	end = sep + len("://")
	if !hasLowerPrefixFold(body[end:], o.host) {
		return 0, 0, false
	}
	end += len(o.host)
	if o.port != "" {
		if !strings.HasPrefix(body[end:], ":") || !strings.HasPrefix(body[end+1:], o.port) {
			return 0, 0, false
		}
		end += 1 + len(o.port)
	} else if p := o.defaultPort(); strings.HasPrefix(body[end:], p) && endsOrigin(body, end+len(p)) {
		end += len(p)
	}
	return start, end, endsOrigin(body, end)
}

func (o *origin) defaultPort() string {
	if o.scheme == "https" {
		return ":443"
	}
	return ":80"
}

// endsOrigin reports whether an origin may end just before body[i].
func endsOrigin(body string, i int) bool { return i == len(body) || isAfterOrigin[body[i]] }

// hasLowerPrefixFold reports whether s starts with lower, ignoring ASCII
// case; lower has no upper-case letters.
func hasLowerPrefixFold(s, lower string) bool {
	if len(s) < len(lower) {
		return false
	}
	for i := 0; i < len(lower); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

var (
	// isSchemeByte holds the bytes that may precede "http" inside a longer
	// scheme or word, where "http://…" does not start a URL.
	isSchemeByte = byteSet("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
	// isAfterOrigin holds the bytes that may follow an origin: the start of
	// a path, query or fragment, or a byte that ends a URL in text or HTML.
	isAfterOrigin = byteSet("/?# \t\n\v\f\r\"'<>)],")
)

func byteSet(s string) (set [256]bool) {
	for i := 0; i < len(s); i++ {
		set[s[i]] = true
	}
	return set
}
