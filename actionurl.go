package emailconn

import "github.com/emailconn/emailconn/internal/actionlink"

// RewriteActionURL returns the action link (an approve or reject URL the
// engine generated with its own origin) with its scheme, host and port
// replaced by those of base, a connection's Email Actions Base URL. The
// path, query and fragment are kept byte for byte: nothing is decoded,
// re-encoded or normalised. When link has no path but a query or fragment,
// a "/" is put before them.
//
// base must be an absolute http or https URL with a host, an optional port
// and nothing else: a path other than "/", user info, a query or a fragment
// is refused rather than dropped, as are whitespace, control characters,
// backslashes, non-ASCII hosts (write them in punycode) and percent-encoded
// hosts. The scheme and host are lower-cased and a default port is dropped.
//
// link must be an absolute http or https URL, whose authority is discarded
// whatever host it names, or a path starting with a single "/". Refused are:
// other schemes (javascript:, data:, mailto:, …), relative and
// scheme-relative ("//host") links, user info, backslashes, whitespace and
// control characters, and malformed percent-encoding.
//
// The security guarantee: the result's scheme, host and port are always
// exactly the base's, and it has no user info; nothing in link can change
// where the result leads. Errors match ErrInvalid, hold a *FieldError
// naming the parameter "base" or "link", and never quote the link,
// which may carry a token. It is safe for concurrent use.
func RewriteActionURL(base, link string) (string, error) {
	b, err := actionlink.ParseBase(base)
	if err != nil {
		return "", &FieldError{Field: "base", Problem: err.Error()}
	}
	out, err := b.Rewrite(link)
	if err != nil {
		return "", &FieldError{Field: "link", Problem: err.Error()}
	}
	return out, nil
}

// RewriteActionLinks rewrites every action link in a text or HTML body:
// each occurrence of origin, the engine's own scheme://host[:port], that is
// the scheme and authority of a link is replaced by base, a connection's
// Email Actions Base URL, and every other byte of body is kept as it is.
// Call it on the body before any transfer encoding (quoted-printable,
// base64).
//
// base and origin are validated with the rules of RewriteActionURL. An
// occurrence counts only as a whole origin: the byte before it is not a
// letter, digit, "+", "-" or ".", its scheme and host match in any case,
// its port matches (http://engine and http://engine:80 are the same
// origin, http://engine:8080 is another), and the byte after it is "/",
// "?", "#", whitespace, one of `"'<>)],` or the end of body. So
// "http://engine:8080.evil.example/", "http://engine:8080@evil.example/"
// and "http://engine:80800/" are left alone.
//
// The security guarantee: every link that a browser or a mail client can
// read from the result and whose scheme or authority holds rewritten bytes
// leads to the base's host and port, with no user info. The body may be
// text or HTML, so an occurrence is rewritten only where that holds in
// every reading that can apply at its position: a mail client turning
// text into links (it ends a link at whitespace, "<", ">" or `"` and drops
// trailing punctuation . , : ; ! ? ' ) ]), and a browser reading an HTML
// attribute value (to its closing quote, with character references decoded
// and tabs and newlines removed, as WHATWG URL parsing does); the authority
// ends at the first "/", "\", "?" or "#", and "@" in it would make what
// precedes it user info. So `href="http://engine'@evil.example/"`,
// "http://engine)@evil.example/" in text, a tab or newline before "@", and
// an origin inside another URL's authority ("http://x@http://engine/") are
// left alone. Links in HTML attributes with escaped queries
// ("?a=1&amp;b=2") are rewritten like any other.
//
// Occurrences inside another link's query string ("…?next=http://engine/…"),
// inside mailto: and javascript: text and inside <code> are rewritten too:
// a reader cannot reach the engine's origin from anywhere, and a redirect
// or a forwarded copy should lead to the base; leaving them would also
// show internal host names. An origin written with a character reference
// ("http:&#47;&#47;engine…") is not recognised, which is how a body keeps
// one unchanged.
//
// Errors match ErrInvalid and hold a *FieldError naming the parameter
// "base" or "origin". It is safe for concurrent use.
func RewriteActionLinks(base, origin, body string) (string, error) {
	b, err := actionlink.ParseBase(base)
	if err != nil {
		return "", &FieldError{Field: "base", Problem: err.Error()}
	}
	o, err := actionlink.ParseOrigin(origin)
	if err != nil {
		return "", &FieldError{Field: "origin", Problem: err.Error()}
	}
	out, _ := b.RewriteBody(o, body)
	return out, nil
}

// validateActionsBaseURL checks a Connection's ActionsBaseURL. It returns
// ok for an empty s (the field is optional) and for a valid base URL;
// otherwise problem says, in lower case and without a field name, which
// part is not allowed, for example "query is not allowed" or
// `path "/x" is not allowed (only scheme, host and port)`.
func validateActionsBaseURL(s string) (problem string, ok bool) {
	if s == "" {
		return "", true
	}
	if _, err := actionlink.ParseBase(s); err != nil {
		return err.Error(), false
	}
	return "", true
}
