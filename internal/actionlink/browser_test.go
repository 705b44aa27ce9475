package actionlink

import (
	"html"
	"net/netip"
	"strings"
	"testing"
)

// This file is the fuzz targets' model of how a reader's software finds
// links in a body, written independently of links.go: a browser reading
// HTML attribute values (WHATWG URL parsing, HTML character references
// decoded by the standard library's html package), and a mail client
// turning text, raw or HTML-decoded, into links. checkLinks finds every
// URL any of them could read and checks that each one whose scheme or
// authority overlaps text the rewriter wrote has exactly the base's host
// and port and no user info.

// rewrittenSpans returns where, in the output of b.RewriteBody(o, body),
// the base was written.
func rewrittenSpans(b *Base, o *Origin, body string) [][2]int {
	var spans [][2]int
	shift := 0
	for start, end := o.o.next(body, 0); start >= 0; start, end = o.o.next(body, end) {
		at := start + shift
		spans = append(spans, [2]int{at, at + len(b.o.str)})
		shift += len(b.o.str) - (end - start)
	}
	return spans
}

// checkLinks checks every URL a reader could find in out.
func checkLinks(t *testing.T, b *Base, in, out string, spans [][2]int) {
	t.Helper()
	if len(spans) == 0 {
		return
	}
	check := func(reading string, d []byte, idx []int) {
		t.Helper()
		if len(d) == 0 || !overlaps(spans, idx[0], idx[len(idx)-1]+1) {
			return // cannot reach rewritten text
		}
		u, ok := parseURL(d, idx)
		if !ok || !overlaps(spans, u.from, u.to) {
			return
		}
		if u.userinfo || u.host != b.o.host || u.port != b.o.port {
			t.Fatalf("RewriteBody(%q) = %q: %s reads %q as a link to host %q port %q (user info %v), want %q port %q",
				in, out, reading, d, u.host, u.port, u.userinfo, b.o.host, b.o.port)
		}
	}
	raw := []byte(out)
	rawIdx := make([]int, len(out))
	for i := range rawIdx {
		rawIdx[i] = i
	}
	// Attribute values: after every quote, up to the matching one; after
	// every "=", unquoted up to whitespace or ">", or up to either quote
	// (a URL inside a value, as in a meta refresh).
	for i := 0; i < len(out); i++ {
		switch c := out[i]; c {
		case '"', '\'':
			end := strings.IndexByte(out[i+1:], c)
			if end < 0 {
				end = len(out) - i - 1
			}
			if !overlaps(spans, i+1, i+1+end) {
				continue
			}
			d, idx := attrValue(out, i+1, i+1+end)
			if overlaps(spans, i+1, i+1+end) {
				check("an attribute value", d, idx)
			}
		case '=':
			j := i + 1
			for j < len(out) && strings.IndexByte(" \t\n\f\r", out[j]) >= 0 {
				j++
			}
			end := j
			for end < len(out) && strings.IndexByte(" \t\n\f\r>", out[end]) < 0 {
				end++
			}
			if overlaps(spans, j, end) {
				d, idx := attrValue(out, j, end)
				check("an unquoted attribute value", d, idx)
			}
			for _, q := range []byte{'"', '\''} {
				end := strings.IndexByte(out[i+1:], q)
				if end < 0 {
					end = len(out) - i - 1
				}
				if overlaps(spans, i+1, i+1+end) {
					d, idx := attrValue(out, i+1, i+1+end)
					check("a URL inside an attribute value", d, idx)
				}
			}
		}
	}
	// Text, raw and with character references decoded: a link may start
	// anywhere and ends at whitespace, "<", ">" or `"`, without trailing
	// punctuation.
	dec, decIdx := decodeHTML(out)
	for _, r := range []struct {
		name string
		d    []byte
		idx  []int
	}{{"a linkifier on text", raw, rawIdx}, {"a linkifier on HTML text", dec, decIdx}} {
		stop := len(r.d) // the first link-ending byte at or after p
		for p := len(r.d) - 1; p >= 0; p-- {
			if strings.IndexByte(" \t\n\v\f\r<>\"", r.d[p]) >= 0 {
				stop = p
				continue
			}
			end := stop
			for end > p && strings.IndexByte(".,:;!?')]", r.d[end-1]) >= 0 {
				end--
			}
			check(r.name, r.d[p:end], r.idx[p:end])
		}
	}
}

func overlaps(spans [][2]int, from, to int) bool {
	for _, s := range spans {
		if from < s[1] && s[0] < to {
			return true
		}
	}
	return false
}

// attrValue returns out[from:to] as a browser hands it to the URL parser:
// character references decoded, tabs and newlines removed, leading and
// trailing spaces and controls trimmed; with the index in out of each byte.
func attrValue(out string, from, to int) ([]byte, []int) {
	d, idx := decodeHTML(out[from:to])
	var dd []byte
	var ii []int
	for k, c := range d {
		if c != '\t' && c != '\n' && c != '\r' {
			dd = append(dd, c)
			ii = append(ii, idx[k]+from)
		}
	}
	for len(dd) > 0 && dd[0] <= ' ' {
		dd, ii = dd[1:], ii[1:]
	}
	for len(dd) > 0 && dd[len(dd)-1] <= ' ' {
		dd, ii = dd[:len(dd)-1], ii[:len(ii)-1]
	}
	return dd, ii
}

// decodeHTML decodes the character references in s with html.UnescapeString
// and returns, for each decoded byte, the index in s it came from.
func decodeHTML(s string) ([]byte, []int) {
	var d []byte
	var idx []int
	for i := 0; i < len(s); {
		if s[i] != '&' {
			d, idx = append(d, s[i]), append(idx, i)
			i++
			continue
		}
		seg := len(s)
		if k := strings.IndexByte(s[i+1:], '&'); k >= 0 {
			seg = i + 1 + k
		}
		u := html.UnescapeString(s[i:seg])
		// The text after the reference is unchanged: match it from the end.
		n := 0
		for n < len(u) && n < seg-i-1 && u[len(u)-1-n] == s[seg-1-n] {
			n++
		}
		for k := 0; k < len(u)-n; k++ {
			d, idx = append(d, u[k]), append(idx, i)
		}
		for k := seg - n; k < seg; k++ {
			d, idx = append(d, s[k]), append(idx, k)
		}
		i = seg
	}
	return d, idx
}

// A parsedURL is what a browser reads from the start of a URL.
type parsedURL struct {
	from, to   int // in the body: the URL's start and its authority's end
	userinfo   bool
	host, port string // host lower case; port "" for the scheme's default
}

// parseURL parses d (with the body index of each byte) as the WHATWG URL
// parser does as far as the end of the authority, assuming a special base
// URL for scheme-relative links. ok is false when d has no authority or
// its host does not parse.
func parseURL(d []byte, idx []int) (u parsedURL, ok bool) {
	s := string(d)
	i, special := 0, true
	if len(s) > 0 && isAlpha(s[0]) {
		j := 1
		for j < len(s) && (isAlnum(s[j]) || s[j] == '+' || s[j] == '-' || s[j] == '.') {
			j++
		}
		if j < len(s) && s[j] == ':' {
			switch strings.ToLower(s[:j]) {
			case "http", "https", "ws", "wss", "ftp", "file":
			default:
				special = false
			}
			i = j + 1
		}
	}
	scheme := strings.ToLower(s[:max(i-1, 0)])
	switch {
	case special && (i > 0 || len(s) >= 2 && isSlash(s[0]) && isSlash(s[1])):
		for i < len(s) && isSlash(s[i]) {
			i++
		}
	case !special && strings.HasPrefix(s[i:], "//"):
		i += 2
	default:
		return u, false
	}
	end := i
	for end < len(s) && s[end] != '/' && s[end] != '?' && s[end] != '#' && !(special && s[end] == '\\') {
		end++
	}
	auth := s[i:end]
	if at := strings.LastIndexByte(auth, '@'); at >= 0 {
		u.userinfo, auth = true, auth[at+1:]
	}
	host, port := auth, ""
	if strings.HasPrefix(auth, "[") {
		k := strings.IndexByte(auth, ']')
		if k < 0 {
			return u, false
		}
		host, port = auth[:k+1], auth[k+1:]
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() {
			return u, false
		}
		if port != "" && port[0] != ':' {
			return u, false
		}
		port = strings.TrimPrefix(port, ":")
	} else {
		if k := strings.IndexByte(auth, ':'); k >= 0 {
			host, port = auth[:k], auth[k+1:]
		}
		h, err := percentDecode(host)
		if err || h == "" && special && scheme != "file" || strings.ContainsAny(h, "\x00\t\n\r #/:<>?@[\\]^|%\x7f") ||
			strings.IndexFunc(h, func(r rune) bool { return r < ' ' }) >= 0 {
			return u, false
		}
		host = h
	}
	for k := 0; k < len(port); k++ {
		if !isDigit(port[k]) {
			return u, false
		}
	}
	if port != "" && special && (scheme == "http" && port == "80" || scheme == "https" && port == "443") {
		port = ""
	}
	u.host, u.port = strings.ToLower(host), port
	u.from = idx[0]
	if end > 0 {
		u.to = idx[end-1] + 1
	} else {
		u.to = idx[0]
	}
	return u, true
}

func isSlash(c byte) bool { return c == '/' || c == '\\' }

func percentDecode(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, false
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v := digitVal(s[i+1], 16)<<4 | digitVal(s[i+2], 16)
			b = append(b, byte(v))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b), false
}
