package actionlink

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func mustBase(t testing.TB, s string) *Base {
	t.Helper()
	b, err := ParseBase(s)
	if err != nil {
		t.Fatalf("ParseBase(%q): %v", s, err)
	}
	return b
}

func mustOrigin(t testing.TB, s string) *Origin {
	t.Helper()
	o, err := ParseOrigin(s)
	if err != nil {
		t.Fatalf("ParseOrigin(%q): %v", s, err)
	}
	return o
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		base, link, want string
	}{
		{"https://approvals.example.com", "http://engine.internal:8080/actions/approve?wu=42&sig=abc#top",
			"https://approvals.example.com/actions/approve?wu=42&sig=abc#top"},
		{"https://approvals.example.com:8443/", "http://engine.internal:8080/actions/reject?wu=42",
			"https://approvals.example.com:8443/actions/reject?wu=42"},
		{"http://localhost:8080", "https://engine.internal/a", "http://localhost:8080/a"},
		{"https://[2001:db8::1]:8443", "http://engine.internal:8080/a", "https://[2001:db8::1]:8443/a"},
		{"https://xn--bcher-kva.example", "http://engine.internal:8080/a", "https://xn--bcher-kva.example/a"},

		// Any case of http or https.
		{"https://approvals.example.com", "HTTPS://ENGINE.INTERNAL/A?B#C", "https://approvals.example.com/A?B#C"},
		{"https://approvals.example.com", "hTTp://engine/a", "https://approvals.example.com/a"},

		// Path, query and fragment byte for byte: no decoding, no re-encoding,
		// no dot-segment removal, HTML escapes kept.
		{"https://approvals.example.com", "http://engine/a%2Fb/../c/./d?x=%41&amp;y=%2f#%7e",
			"https://approvals.example.com/a%2Fb/../c/./d?x=%41&amp;y=%2f#%7e"},
		{"https://approvals.example.com", "http://engine/a;b=c,d!$'()*+@:~", "https://approvals.example.com/a;b=c,d!$'()*+@:~"},
		{"https://approvals.example.com", "http://engine/ü?ö#ä", "https://approvals.example.com/ü?ö#ä"},
		{"https://approvals.example.com", "http://engine/?", "https://approvals.example.com/?"},
		{"https://approvals.example.com", "http://engine/#", "https://approvals.example.com/#"},
		{"https://approvals.example.com", "http://engine/a?next=https://evil.example/",
			"https://approvals.example.com/a?next=https://evil.example/"},

		// No path: nothing, or "/" before a query or fragment.
		{"https://approvals.example.com", "http://engine", "https://approvals.example.com"},
		{"https://approvals.example.com", "http://engine:8080", "https://approvals.example.com"},
		{"https://approvals.example.com", "http://engine?wu=42", "https://approvals.example.com/?wu=42"},
		{"https://approvals.example.com", "http://engine#top", "https://approvals.example.com/#top"},
		{"https://approvals.example.com", "http://engine?", "https://approvals.example.com/?"},

		// Origin-relative links become paths on the base.
		{"https://approvals.example.com", "/actions/approve?wu=42", "https://approvals.example.com/actions/approve?wu=42"},
		{"https://approvals.example.com", "/", "https://approvals.example.com/"},
		{"https://approvals.example.com", "/?x#y", "https://approvals.example.com/?x#y"},

		// A foreign host is replaced like the engine's: the base decides
		// where the link goes, never the link.
		{"https://approvals.example.com", "https://evil.example/p", "https://approvals.example.com/p"},
		{"https://approvals.example.com", "https://approvals.example.com.evil.example/p", "https://approvals.example.com/p"},
		{"https://approvals.example.com", "http://[::1]:9/p", "https://approvals.example.com/p"},

		// Encoded slashes and backslashes stay encoded, inside the base's path.
		{"https://approvals.example.com", "/%2F%2Fevil.example", "https://approvals.example.com/%2F%2Fevil.example"},
		{"https://approvals.example.com", "/%5Cevil.example", "https://approvals.example.com/%5Cevil.example"},
		{"https://approvals.example.com", "/%5C%5Cevil.example", "https://approvals.example.com/%5C%5Cevil.example"},
		{"https://approvals.example.com", "http://engine//evil.example/x", "https://approvals.example.com//evil.example/x"},
		{"https://approvals.example.com", "/@evil.example", "https://approvals.example.com/@evil.example"},
		{"https://approvals.example.com", "/a@evil.example", "https://approvals.example.com/a@evil.example"},
		{"https://approvals.example.com", "http://engine/x@evil.example", "https://approvals.example.com/x@evil.example"},
		{"https://approvals.example.com", "http://engine?@evil.example", "https://approvals.example.com/?@evil.example"},
		{"https://approvals.example.com", "http://engine#@evil.example", "https://approvals.example.com/#@evil.example"},
	}
	for _, tt := range tests {
		b := mustBase(t, tt.base)
		got, err := b.Rewrite(tt.link)
		if err != nil {
			t.Errorf("Rewrite(%q) on %q: error %v, want %q", tt.link, tt.base, err, tt.want)
			continue
		}
		if got != tt.want {
			t.Errorf("Rewrite(%q) = %q, want %q", tt.link, got, tt.want)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != b.Host() || u.User != nil {
			t.Errorf("Rewrite(%q) = %q, which url.Parse reads as %#v, %v", tt.link, got, u, err)
		}
	}
}

func TestRewriteRefused(t *testing.T) {
	tests := []struct {
		link, part, want string
	}{
		{"", "link", "link is empty"},

		// Hosts of their own.
		{"//evil.example/x", "link", "link is scheme-relative (//host), which is not allowed"},
		{"///evil.example/x", "link", "link is scheme-relative (//host), which is not allowed"},
		{`/\evil.example`, "link", `link contains a backslash at byte 1 (percent-encode it as %5C)`},
		{`\\evil.example`, "link", `link contains a backslash at byte 0 (percent-encode it as %5C)`},
		{`\/evil.example`, "link", `link contains a backslash at byte 0 (percent-encode it as %5C)`},
		{`https:\\evil.example`, "link", `link contains a backslash at byte 6 (percent-encode it as %5C)`},
		{`https://evil.example\@engine`, "link", `link contains a backslash at byte 20 (percent-encode it as %5C)`},
		{`https://engine/a\b`, "link", `link contains a backslash at byte 16 (percent-encode it as %5C)`},

		// User info.
		{"https://engine@evil.example/", "user info", "user info is not allowed"},
		{"https://user:secret@engine/", "user info", "user info is not allowed"},
		{"http://@engine/", "user info", "user info is not allowed"},
		{"http://engine.internal:8080@evil.example/approve", "user info", "user info is not allowed"},

		// Other schemes.
		{"javascript:alert(1)", "scheme", `scheme "javascript" is not allowed (use http or https)`},
		{"JaVaScRiPt:alert(1)", "scheme", `scheme "javascript" is not allowed (use http or https)`},
		{"data:text/html,<script>alert(1)</script>", "scheme", `scheme "data" is not allowed (use http or https)`},
		{"data:text/html;base64,PHNjcmlwdD4=", "scheme", `scheme "data" is not allowed (use http or https)`},
		{"mailto:approve@engine.internal", "scheme", `scheme "mailto" is not allowed (use http or https)`},
		{"vbscript:msgbox", "scheme", `scheme "vbscript" is not allowed (use http or https)`},
		{"ftp://engine/x", "scheme", `scheme "ftp" is not allowed (use http or https)`},
		{"httpx://engine/x", "scheme", `scheme "httpx" is not allowed (use http or https)`},
		{"http+unix://engine/x", "scheme", `scheme "http+unix" is not allowed (use http or https)`},
		{"evil.example:80/x", "scheme", `scheme "evil.example" is not allowed (use http or https)`},

		// Whitespace and control characters, which browsers strip.
		{"java\nscript:alert(1)", "link", "link contains whitespace or a control character at byte 4"},
		{"java\tscript:alert(1)", "link", "link contains whitespace or a control character at byte 4"},
		{"ht\ttps://evil.example/", "link", "link contains whitespace or a control character at byte 2"},
		{" https://engine/x", "link", "link contains whitespace or a control character at byte 0"},
		{"https://engine/x ", "link", "link contains whitespace or a control character at byte 16"},
		{"\x00javascript:alert(1)", "link", "link contains whitespace or a control character at byte 0"},
		{"/a\r\nSet-Cookie: x", "link", "link contains whitespace or a control character at byte 2"},
		{"/a\x7f", "link", "link contains whitespace or a control character at byte 2"},

		// Relative links, which a reader's client would resolve against
		// anything.
		{"%2F%2Fevil.example", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{"evil.example/x", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{"actions/approve", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{"?wu=42", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{"#top", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{"@evil.example", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},
		{":evil.example", "link", `link is relative (only absolute http or https links and paths starting with "/" are allowed)`},

		// http(s) without an authority.
		{"https:evil.example", "host", "host is missing"},
		{"https:/evil.example", "host", "host is missing"},
		{"https:", "host", "host is missing"},
		{"https://", "host", "host is missing"},
		{"https:///evil.example", "host", "host is missing"},
		{"https://?x", "host", "host is missing"},

		// Malformed percent-encoding.
		{"/a%zz", "link", "link has malformed percent-encoding at byte 2"},
		{"/a?b=%", "link", "link has malformed percent-encoding at byte 5"},
		{"http://engine/#%4", "link", "link has malformed percent-encoding at byte 15"},
	}
	b := mustBase(t, "https://approvals.example.com")
	for _, tt := range tests {
		got, err := b.Rewrite(tt.link)
		if err == nil {
			t.Errorf("Rewrite(%q) = %q, want error %q", tt.link, got, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Part != tt.part || err.Error() != tt.want {
			t.Errorf("Rewrite(%q) error = %q, want part %q: %q", tt.link, err, tt.part, tt.want)
		}
		if strings.Contains(err.Error(), "secret") || len(tt.link) > 12 && strings.Contains(err.Error(), tt.link) {
			t.Errorf("Rewrite(%q) error %q quotes the link", tt.link, err)
		}
	}
}

func TestRewriteBody(t *testing.T) {
	const base = "https://approvals.example.com"
	tests := []struct {
		origin, body, want string
		n                  int
	}{
		{"http://engine.internal:8080", "", "", 0},
		{"http://engine.internal:8080", "no links here", "no links here", 0},
		{"http://engine.internal:8080",
			"Approve: http://engine.internal:8080/actions/approve?wu=42&sig=abc#top\nReject: http://engine.internal:8080/actions/reject?wu=42\n",
			"Approve: https://approvals.example.com/actions/approve?wu=42&sig=abc#top\nReject: https://approvals.example.com/actions/reject?wu=42\n", 2},
		{"http://engine.internal:8080",
			`<a href="http://engine.internal:8080/a?wu=42&amp;sig=abc">Approve</a> <a href='http://engine.internal:8080/r?wu=42&amp;x=%2F'>Reject</a>`,
			`<a href="https://approvals.example.com/a?wu=42&amp;sig=abc">Approve</a> <a href='https://approvals.example.com/r?wu=42&amp;x=%2F'>Reject</a>`, 2},

		// Whole origins at the ends of the body and before terminators.
		{"http://engine.internal:8080", "http://engine.internal:8080", base, 1},
		{"http://engine.internal:8080", "http://engine.internal:8080?x", base + "?x", 1},
		{"http://engine.internal:8080", "http://engine.internal:8080#x", base + "#x", 1},
		{"http://engine.internal:8080", "(http://engine.internal:8080) [http://engine.internal:8080] <http://engine.internal:8080>, \"http://engine.internal:8080\" 'http://engine.internal:8080',\thttp://engine.internal:8080\r\n",
			"(" + base + ") [" + base + "] <" + base + ">, \"" + base + "\" '" + base + "',\t" + base + "\r\n", 6},
		{"http://engine.internal:8080", "x=http://engine.internal:8080/a;y", "x=" + base + "/a;y", 1},
		{"http://engine.internal:8080", "http://engine.internal:8080/http://engine.internal:8080/", base + "/" + base + "/", 2},

		// Case-insensitive scheme and host; the rest untouched.
		{"http://engine.internal:8080", "HTTP://Engine.INTERNAL:8080/A?B", base + "/A?B", 1},
		{"http://Engine.Internal:8080", "http://engine.internal:8080/a", base + "/a", 1},

		// Not whole origins.
		{"http://engine.internal:8080", "http://engine.internal:8080.evil.example/x", "http://engine.internal:8080.evil.example/x", 0},
		{"http://engine.internal:8080", "http://engine.internal:8080@evil.example/x", "http://engine.internal:8080@evil.example/x", 0},
		{"http://engine.internal:8080", "http://engine.internal:80800/x", "http://engine.internal:80800/x", 0},
		{"http://engine.internal:8080", "http://engine.internal:8080:9/x", "http://engine.internal:8080:9/x", 0},
		{"http://engine.internal:8080", `http://engine.internal:8080\evil.example`, `http://engine.internal:8080\evil.example`, 0},
		{"http://engine.internal:8080", "http://engine.internal:8080-x/", "http://engine.internal:8080-x/", 0},
		{"http://engine.internal:8080", "http://engine.internal:8080&amp;x", "http://engine.internal:8080&amp;x", 0},
		{"http://engine.internal:8080", "http://engine.internal:8080.", "http://engine.internal:8080.", 0},
		{"http://engine.internal:8080", "http://engine.internal/x", "http://engine.internal/x", 0},
		{"http://engine.internal:8080", "http://engine.internal:80/x", "http://engine.internal:80/x", 0},
		{"http://engine.internal:8080", "https://engine.internal:8080/x", "https://engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "http://x.engine.internal:8080/x", "http://x.engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "xhttp://engine.internal:8080/x", "xhttp://engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "svn+http://engine.internal:8080/x", "svn+http://engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "a.http://engine.internal:8080/x", "a.http://engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "1http://engine.internal:8080/x", "1http://engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "http://user@engine.internal:8080/x", "http://user@engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "http:/engine.internal:8080/x", "http:/engine.internal:8080/x", 0},
		{"http://engine.internal:8080", "http://engine.internal:808", "http://engine.internal:808", 0},
		{"http://engine.internal:8080", "http://engine.internal", "http://engine.internal", 0},
		{"http://engine.internal:8080", "http://engine.interna", "http://engine.interna", 0},
		{"http://engine.internal:8080", "ttp://engine.internal:8080/", "ttp://engine.internal:8080/", 0},

		// A default port may be written or not.
		{"http://engine.internal", "http://engine.internal/a http://engine.internal:80/b http://ENGINE.internal:80",
			base + "/a " + base + "/b " + base, 3},
		{"http://engine.internal:80", "http://engine.internal/a", base + "/a", 1},
		{"http://engine.internal", "http://engine.internal:8080/a", "http://engine.internal:8080/a", 0},
		{"http://engine.internal", "http://engine.internal:80800/a", "http://engine.internal:80800/a", 0},
		{"http://engine.internal", "http://engine.internal:80.evil.example/a", "http://engine.internal:80.evil.example/a", 0},
		{"http://engine.internal", "http://engine.internal:/a", "http://engine.internal:/a", 0},
		{"http://engine.internal", "http://engine.internal:443/a", "http://engine.internal:443/a", 0},
		{"https://engine.internal", "https://engine.internal:443/a https://engine.internal/b", base + "/a " + base + "/b", 2},
		{"https://engine.internal", "https://engine.internal:80/a", "https://engine.internal:80/a", 0},

		{"http://[::1]:8080", "http://[::1]:8080/a http://[0::1]:8080/b", base + "/a http://[0::1]:8080/b", 1},
	}
	for _, tt := range tests {
		b := mustBase(t, base)
		o := mustOrigin(t, tt.origin)
		got, n := b.RewriteBody(o, tt.body)
		if got != tt.want || n != tt.n {
			t.Errorf("RewriteBody(%q, %q) = %q, %d, want %q, %d", tt.origin, tt.body, got, n, tt.want, tt.n)
		}
	}
}

func TestRewriteBodyLongerAndShorterBase(t *testing.T) {
	body := strings.Repeat(`<a href="http://e/a?x=1&amp;y=2">a</a> http://e#f `, 100)
	o := mustOrigin(t, "http://e")
	for _, base := range []string{"https://approvals.very-long-host-name.example.com:8443", "http://b"} {
		b := mustBase(t, base)
		got, n := b.RewriteBody(o, body)
		want := strings.ReplaceAll(body, "http://e", b.String())
		if got != want || n != 200 {
			t.Errorf("RewriteBody(%q, …) = %q, %d, want %q, 200", base, got, n, want)
		}
	}
}

func TestRewriteBodyAllocs(t *testing.T) {
	b := mustBase(t, "https://approvals.example.com:8443")
	o := mustOrigin(t, "http://engine.internal:8080")
	body := benchBody()
	if a := testing.AllocsPerRun(10, func() { b.RewriteBody(o, body) }); a != 1 {
		t.Errorf("RewriteBody allocates %v times, want 1", a)
	}
	plain := strings.ReplaceAll(body, "http://engine.internal:8080", "http://other.internal:8080")
	if a := testing.AllocsPerRun(10, func() { b.RewriteBody(o, plain) }); a != 0 {
		t.Errorf("RewriteBody without links allocates %v times, want 0", a)
	}
}
