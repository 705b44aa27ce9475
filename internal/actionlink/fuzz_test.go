package actionlink

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
)

var hostileBases = []string{
	"https://approvals.example.com",
	"https://approvals.example.com:8443/",
	"HTTP://Approvals.Example.COM:80",
	"https://xn--bcher-kva.example",
	"https://bücher.example",
	"https://[2001:db8::1]:8443",
	"https://[fe80::1%25en0]",
	"https://app.example.com@evil.example/",
	"https://user:pass@approvals.example.com",
	"https://approvals.example.com/x",
	"https://approvals.example.com?",
	"https://approvals.example.com#",
	"https://approvals.example.com:99999",
	"https://%65vil.example",
	"https://0x7f.1",
	`https://evil.example\@approvals.example.com`,
	"javascript:alert(1)",
	"localhost:8080",
}

var hostileLinks = []string{
	"http://engine.internal:8080/actions/approve?wu=42&sig=abc#top",
	"/actions/approve?wu=42",
	"http://engine?wu=42",
	"http://engine#top",
	"//evil.example/x",
	`/\evil.example`,
	`\\evil.example`,
	"https://evil.example/p",
	"https://engine@evil.example/",
	`https://evil.example\@engine`,
	"javascript:alert(1)",
	"JaVaScRiPt:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"%2F%2Fevil.example",
	"/%5Cevil.example",
	"HTTPS://ENGINE/A",
	"java\nscript:alert(1)",
	"ht\ttps://evil.example/",
	"http://engine/a%zz",
	"https:evil.example",
	"http://engine//evil.example/x",
	"http://engine/?@evil.example",
}

func FuzzRewrite(f *testing.F) {
	for _, b := range hostileBases {
		for _, l := range hostileLinks {
			f.Add(b, l)
		}
	}
	f.Fuzz(func(t *testing.T, base, link string) {
		b, err := ParseBase(base)
		if err != nil {
			return
		}
		checkBase(t, base, b)
		out, err := b.Rewrite(link)
		if err != nil {
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("Rewrite(%q) = %q, which does not parse: %v", link, out, err)
		}
		if u.Scheme != b.Scheme() || u.Host != b.Host() || u.User != nil || u.Opaque != "" {
			t.Fatalf("Rewrite(%q) = %q: scheme %q, host %q, user %v, opaque %q; want %q, %q, none",
				link, out, u.Scheme, u.Host, u.User, u.Opaque, b.Scheme(), b.Host())
		}
		rest, ok := strings.CutPrefix(out, b.String())
		if !ok {
			t.Fatalf("Rewrite(%q) = %q, want a prefix %q", link, out, b.String())
		}
		if rest != "" && !strings.ContainsRune("/?#", rune(rest[0])) {
			t.Fatalf("Rewrite(%q) = %q: %q follows the authority", link, out, rest[0])
		}
		if !strings.HasSuffix(link, rest) {
			// Only a "/" before a query or fragment may be added.
			if r := rest[1:]; rest[0] != '/' || r == "" || r[0] != '?' && r[0] != '#' || !strings.HasSuffix(link, r) {
				t.Fatalf("Rewrite(%q) = %q: %q is not a suffix of the link", link, out, rest)
			}
		}
	})
}

// checkBase checks a base that ParseBase accepted against net/url's reading
// of the same text.
func checkBase(t *testing.T, in string, b *Base) {
	t.Helper()
	u, err := url.Parse(in)
	if err != nil {
		t.Fatalf("ParseBase(%q) accepted what url.Parse refuses: %v", in, err)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" ||
		u.Path != "" && u.Path != "/" || strings.ContainsAny(in, "#\\") {
		t.Fatalf("ParseBase(%q) accepted more than an origin: %#v", in, u)
	}
	if b.String() != strings.ToLower(b.String()) {
		t.Fatalf("ParseBase(%q) = %q, not lower case", in, b)
	}
	v, err := url.Parse(b.String())
	if err != nil || v.Host != b.Host() || v.Scheme != b.Scheme() || v.Path != "" || v.User != nil {
		t.Fatalf("ParseBase(%q) = %q, which url.Parse reads as %#v, %v", in, b, v, err)
	}
	if u.Scheme != b.Scheme() || !strings.EqualFold(u.Hostname(), v.Hostname()) || port(u) != port(v) {
		t.Fatalf("ParseBase(%q) = %q, url.Parse reads %q", in, b, u.Scheme+"://"+u.Host)
	}
	if again, err := ParseBase(b.String()); err != nil || again.String() != b.String() {
		t.Fatalf("ParseBase(%q) = %v, %v, want %q", b.String(), again, err, b.String())
	}
}

// port returns u's port number, the scheme's default when none is written.
func port(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

var hostileBodies = []string{
	"",
	"Approve: http://engine.internal:8080/actions/approve?wu=42&sig=abc#top\nReject: http://engine.internal:8080/actions/reject?wu=42",
	`<a href="http://engine.internal:8080/a?wu=42&amp;sig=abc">Approve</a> <a href="https://intranet.example.com/p">policy</a>`,
	"http://engine.internal:8080",
	"http://engine.internal:8080.evil.example/x",
	"http://engine.internal:8080@evil.example/x",
	"http://engine.internal:80800/x",
	"http://engine.internal/x http://engine.internal:80/y http://engine.internal:80",
	"HTTP://ENGINE.INTERNAL:8080/A",
	"xhttp://engine.internal:8080/ svn+http://engine.internal:8080/ .http://engine.internal:8080/",
	`http://engine.internal:8080\evil.example http://engine.internal\evil.example`,
	"(http://engine.internal:8080) [http://engine.internal:8080] <http://engine.internal:8080>, 'http://engine.internal:8080'",
	"http://engine.internal:8080/http://engine.internal:8080/http://engine.internal:8080",
	"http://engine.internal:8080:80/ http://engine.internal:80:8080/",
	"http://ſngine.internal:8080/ http://engine.\u212aternal:8080/",
	// Issue 11-3: links whose authority goes on after the origin.
	`<a href="http://engine.internal'@evil.example/approve?wu=1">a</a> <a href='http://engine.internal:8080"@evil.example/'>b</a>`,
	"<a href=\"http://engine.internal:8080\t@evil.example/a\">a</a> <a href=\"http://engine.internal\n)@evil.example/\">",
	"http://engine.internal:8080)@evil.example/ http://engine.internal],@evil.example/ http://engine.internal>@evil.example/",
	`<a href="http://engine.internal:8080'&#64;evil.example/a">`,
	"http://evil.example@http://engine.internal:8080/a <a href=\"http:x@http://engine.internal/a\">",
	`<a href="http://engine.internal:8080">x</a> <a href='http://engine.internal'>y</a> <a href=http://engine.internal>z</a>`,
	`<a href="https://t.example/c?u=1&amp;next=http://engine.internal:8080/a">t</a> <code>http://engine.internal/api</code>`,
}

func FuzzRewriteBody(f *testing.F) {
	for _, s := range hostileBodies {
		f.Add(s)
	}
	b, err := ParseBase("https://approvals.example.com:8443")
	if err != nil {
		f.Fatal(err)
	}
	origins := []struct {
		origin    string
		spellings []string // longest first
	}{
		{"http://engine.internal:8080", []string{"http://engine.internal:8080"}},
		{"http://engine.internal", []string{"http://engine.internal:80", "http://engine.internal"}},
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, oo := range origins {
			o, err := ParseOrigin(oo.origin)
			if err != nil {
				t.Fatal(err)
			}
			got, n := b.RewriteBody(o, body)

			// Only whole origins are rewritten (the slow, obvious
			// reference finds them), and each is replaced by the base.
			whole := map[[2]int]bool{}
			for _, m := range referenceMatches(body, oo.spellings) {
				whole[m] = true
			}
			var matches [][2]int
			for start, end := o.o.next(body, 0); start >= 0; start, end = o.o.next(body, end) {
				if !whole[[2]int{start, end}] {
					t.Fatalf("RewriteBody(%q, %q) rewrote %q at %d, not a whole origin", oo.origin, body, body[start:end], start)
				}
				matches = append(matches, [2]int{start, end})
			}
			want, last := "", 0
			for _, m := range matches {
				want += body[last:m[0]] + b.String()
				last = m[1]
			}
			want += body[last:]
			if got != want || n != len(matches) {
				t.Fatalf("RewriteBody(%q, %q) = %q, %d, want %q, %d", oo.origin, body, got, n, want, len(matches))
			}

			// Reverting the places it wrote gives back the body.
			spans := rewrittenSpans(b, o, body)
			var back strings.Builder
			from := 0
			for i, s := range spans {
				if got[s[0]:s[1]] != b.String() {
					t.Fatalf("RewriteBody(%q) = %q: at %d, want %q", body, got, s[0], b.String())
				}
				back.WriteString(got[from:s[0]])
				back.WriteString(body[matches[i][0]:matches[i][1]])
				from = s[1]
			}
			back.WriteString(got[from:])
			if back.String() != body {
				t.Fatalf("RewriteBody(%q) = %q, which reverts to %q", body, got, back.String())
			}

			// Issue 11-3: on the whole output, every link any reader finds
			// whose scheme or authority holds rewritten bytes leads to the
			// base, with no user info. (The model is quadratic: long bodies
			// are checked by the fuzzer's shorter inputs.)
			if len(body) <= 1024 {
				checkLinks(t, b, body, got, spans)
			}
		}
	})
}

// referenceMatches finds whole origins the slow, obvious way.
func referenceMatches(body string, spellings []string) [][2]int {
	b := []byte(body)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	lower := string(b)
	const schemeBytes = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."
	const afterBytes = "/?# \t\n\v\f\r\"'<>)],"
	var matches [][2]int
	for i := 0; i < len(body); i++ {
		if i > 0 && strings.IndexByte(schemeBytes, body[i-1]) >= 0 {
			continue
		}
		for _, s := range spellings {
			end := i + len(s)
			if strings.HasPrefix(lower[i:], s) && (end == len(body) || strings.IndexByte(afterBytes, body[end]) >= 0) {
				matches = append(matches, [2]int{i, end})
				i = end - 1
				break
			}
		}
	}
	return matches
}
