package actionlink

// This file decides whether an occurrence of the engine's origin in a body
// is the scheme and authority of a link, the way a reader's software would
// read the bytes around it, so that replacing it by the base can only ever
// produce links whose authority is the base's.
//
// A body may be HTML or plain text, and RewriteBody does not know which,
// so an occurrence is rewritten only when it is safe under every reading
// that can apply at its position:
//
//   - text: a mail client that turns text into links starts one at the
//     scheme, ends it at whitespace, "<", ">" or `"`, and drops trailing
//     punctuation (. , : ; ! ? ' ) ]);
//   - a double-quoted, single-quoted or unquoted HTML attribute value, when
//     the byte before the occurrence (after spaces, control characters and
//     character references, which a browser strips or decodes) is `"`, "'"
//     or "=": the link then runs to the closing quote (or whitespace or
//     ">"), character references are decoded and tabs and newlines are
//     removed (WHATWG URL);
//   - any URL that starts earlier and contains the occurrence: the
//     occurrence must not sit inside that URL's authority.
//
// A browser (WHATWG URL parsing, special schemes) ends the authority at the
// first "/", "\", "?" or "#"; "@" in it introduces user info, so the host
// is what follows the last "@"; ":" starts the port. So the bytes between
// the origin and the end of its authority, in every reading, must be
// nothing, or include a byte that makes the URL fail to parse and no "@"
// and no character reference that could stand for one.

// isLink reports whether the match body[start:end] of an origin may be
// rewritten.
func isLink(body string, start, end int) bool {
	return authorityEnds(body, start, end) && notInAuthority(body, start)
}

// authorityEnds reports whether, in every reading that applies, the
// authority of a link that starts at body[start:] ends at body[end].
func authorityEnds(body string, start, end int) bool {
	if end == len(body) {
		return true
	}
	switch body[end] {
	case '/', '?', '#':
		return true
	}
	// rest is what a browser could still read as part of the authority:
	// everything up to the first byte that certainly ends it.
	r := end
	for r < len(body) && !endsAuthority(body, r) {
		r++
	}
	rest := body[end:r]

	// Text: the link ends at whitespace, "<", ">" or `"`; when it ends
	// there (or with the body), trailing punctuation is not part of it.
	ext, ended := rest, r == len(body)
	if i := indexAny(rest, &isTextEnd); i >= 0 {
		ext, ended = rest[:i], true
	}
	if ended {
		for ext != "" && isTrailingPunct[ext[len(ext)-1]] {
			ext = ext[:len(ext)-1]
		}
	}
	if !extensionSafe(ext, false) {
		return false
	}

	switch opener(body, start) {
	case '"':
		return extensionSafe(cutAt(rest, '"'), true)
	case '\'':
		return extensionSafe(cutAt(rest, '\''), true)
	case '=':
		// An unquoted value, or a URL inside a quoted one
		// (content="0;url=…").
		unquoted := rest
		if i := indexAny(rest, &isUnquotedEnd); i >= 0 {
			unquoted = rest[:i]
		}
		return extensionSafe(unquoted, false) &&
			extensionSafe(cutAt(rest, '"'), true) && extensionSafe(cutAt(rest, '\''), true)
	}
	return true
}

// endsAuthority reports whether body[i] ends the authority of a URL in
// every reading: "/", "\", "?", or a "#" that does not start a numeric
// character reference ("&#64;" is "@" in HTML).
func endsAuthority(body string, i int) bool {
	switch body[i] {
	case '/', '\\', '?':
		return true
	case '#':
		return i == 0 || body[i-1] != '&'
	}
	return false
}

// extensionSafe reports whether ext, read right after the base's
// authority, leaves the link's host the base's: ext is empty, or it makes
// the host unparsable (a space, "<", ">", "[", "]", "^", "|" or a control
// character before any ":") and holds no "@" (which would make everything
// before it user info) and no "&" (a character reference could be "@").
// With stripTabs, tabs, CR and LF are ignored, as a browser removes them
// from a URL.
func extensionSafe(ext string, stripTabs bool) bool {
	empty, inHost, broken := true, true, false
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if stripTabs && (c == '\t' || c == '\n' || c == '\r') {
			continue
		}
		switch {
		case c == '@' || c == '&':
			return false
		case c == ':':
			if empty {
				return false // a port after the base's host
			}
			inHost = false
		case inHost && isHostBreaking[c]:
			broken = true
		}
		empty = false
	}
	return empty || broken
}

// cutAt returns s up to the first c, or s.
func cutAt(s string, c byte) string {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i]
		}
	}
	return s
}

func indexAny(s string, set *[256]bool) int {
	for i := 0; i < len(s); i++ {
		if set[s[i]] {
			return i
		}
	}
	return -1
}

// opener returns the byte before body[start], skipping the spaces and
// control characters a browser strips from the start of a URL and any
// character reference (which may stand for one), or 0 at the start of the
// body.
func opener(body string, start int) byte {
	i := start - 1
	for i >= 0 {
		switch c := body[i]; {
		case c <= ' ':
			i--
		case c == ';':
			amp := refStart(body, i)
			if amp < 0 {
				return c
			}
			i = amp - 1
		default:
			return c
		}
	}
	return 0
}

// refStart returns the index of the "&" of a character reference that
// ends with the ";" at body[semi], or -1.
func refStart(body string, semi int) int {
	for i := semi - 1; i >= 0 && i >= semi-maxRefName-2; i-- {
		if body[i] == '&' {
			if _, n := decodeRef(body[i:]); n == semi-i+1 {
				return i
			}
			return -1
		}
	}
	return -1
}

// notInAuthority reports whether body[start] is outside the authority of
// every URL that starts before it: a browser or a linkifier that reads a
// URL from an earlier scheme must not find the origin inside its host.
//
// The authority of such a URL would start right after a run of slashes
// that follows a ":" or has two or more slashes ("http://", "//"), or right
// after the ":" of a special scheme written without slashes ("http:x@…",
// which WHATWG reads as "http://x@…"); it holds no "/", "\", "?" or "#". So
// only the tail after the last such byte matters. The origin is outside
// every authority that tail can open, or such an authority (user info
// dropped) holds a byte that makes its host unparsable, or a ":" that puts
// the origin's scheme into a port that cannot parse.
func notInAuthority(body string, start int) bool {
	j := start - 1
	for j >= 0 && !endsAuthority(body, j) {
		j--
	}
	var a authorityScan
	if j >= 0 && (body[j] == '/' || body[j] == '\\') && opensAuthority(body, j) {
		a.open()
	}
	for i := j + 1; i < start; {
		c, n := rune(body[i]), 1
		if c == '&' {
			c, n = decodeRef(body[i:])
			if n == 0 {
				c, n = '&', 1
			}
			if c == '/' || c == '\\' || c == '?' || c == '#' {
				return false // a reference that changes the URL's structure
			}
		}
		a.add(c)
		i += n
	}
	return a.safe()
}

// opensAuthority reports whether the run of slashes and backslashes that
// ends at body[j] can be the one before an authority: two or more of them,
// or one after a ":" or after a character reference (which could stand for
// ":" or "/"). Tabs and newlines in the run are skipped, as a browser
// removes them.
func opensAuthority(body string, j int) bool {
	n, i := 0, j
	for ; i >= 0; i-- {
		switch body[i] {
		case '/', '\\':
			n++
			continue
		case '\t', '\n', '\r':
			continue
		}
		break
	}
	if n >= 2 || i < 0 {
		return n >= 2
	}
	return body[i] == ':' || body[i] == ';' && refStart(body, i) >= 0
}

// An authorityScan follows, byte by byte, the authorities that a tail of
// text can open and remembers whether each is broken.
type authorityScan struct {
	anyOpen     bool // some authority is open
	openAfterAt bool // the latest authority opened after the last "@"
	sawAt       bool // an "@" came after some authority opened
	brokenAt    bool // the host after the last "@" is broken
	brokenOpen  bool // the latest authority's host is broken
	last        [5]rune
}

// open starts an authority at the current position.
func (a *authorityScan) open() {
	a.anyOpen, a.openAfterAt, a.brokenOpen = true, true, false
}

// add reads one character of the tail.
func (a *authorityScan) add(c rune) {
	if c == '\t' || c == '\n' || c == '\r' {
		return // removed by a browser
	}
	switch {
	case c == '@':
		if a.anyOpen {
			a.sawAt, a.brokenAt, a.openAfterAt = true, false, false
		}
	case c == ':' || c < 0x80 && isHostBreaking[c]:
		a.brokenAt, a.brokenOpen = true, true
	}
	copy(a.last[:], a.last[1:])
	a.last[4] = c
	if c == ':' && a.endsSpecialScheme() {
		a.open()
	}
}

// endsSpecialScheme reports whether the characters read so far end in a
// special scheme and ":".
func (a *authorityScan) endsSpecialScheme() bool {
	var b [4]byte
	n := 0
	for i := 3; i >= 0 && n < 4; i-- {
		c := a.last[i]
		if c >= 0x80 {
			break
		}
		b[3-n] = byte(c) | 0x20
		n++
	}
	s := string(b[4-n:])
	for _, scheme := range [...]string{"http", "ttps", "ws", "wss", "ftp", "file"} {
		if len(s) >= len(scheme) && s[len(s)-len(scheme):] == scheme {
			return true
		}
	}
	return false
}

// safe reports whether every authority the tail opened is broken where
// the origin would continue it.
func (a *authorityScan) safe() bool {
	if !a.anyOpen {
		return true
	}
	if a.sawAt && !a.brokenAt {
		return false
	}
	return !a.openAfterAt || a.brokenOpen
}

// maxRefName bounds the length of a character reference's name or number.
const maxRefName = 32

// decodeRef decodes the HTML character reference at the start of s, as a
// browser does in text and attribute values, and returns the character
// and the length of the reference, or 0, 0. A numeric reference may omit
// its ";"; a named one needs it, but for the legacy amp, lt, gt and quot.
// Named references to non-ASCII characters decode to U+FFFD, which is all
// this package needs to know of them.
func decodeRef(s string) (rune, int) {
	if len(s) < 2 || s[0] != '&' {
		return 0, 0
	}
	if s[1] == '#' {
		i, base := 2, 10
		if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
			i, base = 3, 16
		}
		v, digits := 0, 0
		for ; i < len(s); i++ {
			d := digitVal(s[i], base)
			if d < 0 {
				break
			}
			if v <= 0x10FFFF {
				v = v*base + d
			}
			digits++
		}
		if digits == 0 {
			return 0, 0
		}
		if i < len(s) && s[i] == ';' {
			i++
		}
		if v == 0 || v > 0x10FFFF || 0xD800 <= v && v <= 0xDFFF || 0x80 <= v && v <= 0x9F {
			v = 0xFFFD // NUL, out of range, surrogates; C1 maps to windows-1252, never ASCII
		}
		return rune(v), i
	}
	i := 1
	for i < len(s) && i <= maxRefName && isAlnum(s[i]) {
		i++
	}
	if i == 1 {
		return 0, 0
	}
	name := s[1:i]
	if i < len(s) && s[i] == ';' {
		if c, ok := asciiRefs[name]; ok {
			return c, i + 1
		}
		return 0xFFFD, i + 1
	}
	for _, legacy := range [...]string{"amp", "AMP", "lt", "LT", "gt", "GT", "quot", "QUOT"} {
		if len(name) >= len(legacy) && name[:len(legacy)] == legacy {
			return asciiRefs[legacy], 1 + len(legacy)
		}
	}
	return 0, 0
}

func digitVal(c byte, base int) int {
	switch {
	case isDigit(c):
		return int(c - '0')
	case base == 16 && 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case base == 16 && 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// asciiRefs are the HTML named character references that stand for an
// ASCII character.
var asciiRefs = map[string]rune{
	"Tab": '\t', "NewLine": '\n', "excl": '!', "quot": '"', "QUOT": '"', "num": '#',
	"dollar": '$', "percnt": '%', "amp": '&', "AMP": '&', "apos": '\'', "lpar": '(',
	"rpar": ')', "ast": '*', "midast": '*', "plus": '+', "comma": ',', "period": '.',
	"sol": '/', "colon": ':', "semi": ';', "lt": '<', "LT": '<', "equals": '=',
	"gt": '>', "GT": '>', "quest": '?', "commat": '@', "lsqb": '[', "lbrack": '[',
	"bsol": '\\', "rsqb": ']', "rbrack": ']', "Hat": '^', "lowbar": '_', "UnderBar": '_',
	"grave": '`', "DiacriticalGrave": '`', "lcub": '{', "lbrace": '{', "verbar": '|',
	"vert": '|', "VerticalLine": '|', "rcub": '}', "rbrace": '}',
}

var (
	// isTextEnd holds the bytes at which a linkifier ends a URL in text.
	isTextEnd = byteSet(" \t\n\v\f\r<>\"")
	// isTrailingPunct holds the bytes a linkifier drops from the end of a
	// URL in text.
	isTrailingPunct = byteSet(".,:;!?')]")
	// isUnquotedEnd holds the bytes that end an unquoted attribute value.
	isUnquotedEnd = byteSet(" \t\n\f\r>")
	// isHostBreaking holds the bytes that make a browser refuse a host
	// (WHATWG forbidden host code points that do not end the authority,
	// and controls), and so a URL that holds them in its host.
	isHostBreaking = func() (set [256]bool) {
		for c := 0; c <= ' '; c++ {
			set[c] = true
		}
		for _, c := range []byte("<>[]^|\x7f") {
			set[c] = true
		}
		return set
	}()
)
