package actionlink

import "testing"

// TestIssue11_03_RewriteBodyNeverLeadsElsewhere checks the cases of issue
// 11 item 3: an occurrence of the origin is rewritten only where, read as
// a browser or a mail client reads it at that position, its authority ends
// right after it; otherwise it is left alone.
func TestIssue11_03_RewriteBodyNeverLeadsElsewhere(t *testing.T) {
	const base = "https://approvals.example.com"
	tests := []struct {
		name, origin, body, want string
	}{
		// Left alone: the rewritten text would lead to evil.example.
		{"quote-in-href", "http://engine.internal",
			`<a href="http://engine.internal'@evil.example/approve?wu=1">`, ""},
		{"quote-in-href-port", "http://engine.internal:8080",
			`<a href="http://engine.internal:8080'@evil.example/approve?wu=1">`, ""},
		{"dquote-in-single-quoted", "http://engine.internal",
			`<a href='http://engine.internal"@evil.example/approve'>`, ""},
		{"paren-in-href", "http://engine.internal", `<a href="http://engine.internal)@evil.example/a">`, ""},
		{"bracket-in-href", "http://engine.internal", `<a href="http://engine.internal]@evil.example/a">`, ""},
		{"comma-in-href", "http://engine.internal", `<a href="http://engine.internal,@evil.example/a">`, ""},
		{"gt-in-href", "http://engine.internal", `<a href="http://engine.internal>@evil.example/a">`, ""},
		{"space-in-href", "http://engine.internal", `<a href="http://engine.internal x@evil.example/a">`, ""},
		{"tab-in-href", "http://engine.internal", "<a href=\"http://engine.internal\t@evil.example/a\">", ""},
		{"newline-in-href", "http://engine.internal", "<a href=\"http://engine.internal\n@evil.example/a\">", ""},
		{"cr-in-href-port", "http://engine.internal:8080", "<a href=\"http://engine.internal:8080\r@evil.example/a\">", ""},
		{"reference-at", "http://engine.internal", `<a href="http://engine.internal'&#64;evil.example/a">`, ""},
		{"reference-named-at", "http://engine.internal", `<a href="http://engine.internal'&commat;evil.example/a">`, ""},
		{"text-quote", "http://engine.internal", "Approve: http://engine.internal'@evil.example/approve", ""},
		{"text-paren", "http://engine.internal", "Approve: http://engine.internal)@evil.example/approve", ""},
		{"text-dot-label", "http://engine.internal", "Approve: http://engine.internal).evil.example/approve", ""},
		{"unquoted", "http://engine.internal", `<a href=http://engine.internal'@evil.example/a>`, ""},
		{"meta-refresh", "http://engine.internal", `<meta http-equiv="refresh" content="0;url=http://engine.internal x@evil.example/">`, ""},
		{"inside-userinfo", "http://engine.internal", "http://evil.example@http://engine.internal/approve", ""},
		{"inside-userinfo-href", "http://engine.internal", `<a href="http://x@http://engine.internal/a">`, ""},
		{"inside-authority-no-slashes", "http://engine.internal", `<a href="http:x@http://engine.internal/a">`, ""},
		{"inside-authority-tab", "http://engine.internal", "<a href=\"http:\n/x@http://engine.internal/a\">", ""},
		{"inside-authority-reference", "http://engine.internal", `<a href="http&colon;//x@http://engine.internal/a">`, ""},
		{"inside-scheme-relative", "http://engine.internal", `<a href="//x@http://engine.internal/a">`, ""},
		{"inside-authority-paren", "http://engine.internal", `<a href="http://x)http://engine.internal/a">`, ""},

		// Rewritten: the authority ends right after the origin.
		{"href", "http://engine.internal:8080",
			`<a href="http://engine.internal:8080/approve?wu=1">`, `<a href="` + base + `/approve?wu=1">`},
		{"bare-href", "http://engine.internal", `<a href="http://engine.internal">Open</a>`, `<a href="` + base + `">Open</a>`},
		{"bare-single-quoted", "http://engine.internal", `<a href='http://engine.internal'>Open</a>`, `<a href='` + base + `'>Open</a>`},
		{"bare-unquoted", "http://engine.internal", `<a href=http://engine.internal>Open</a>`, `<a href=` + base + `>Open</a>`},
		{"newline-before-path", "http://engine.internal", "<a href=\"http://engine.internal\n/a\">", "<a href=\"" + base + "\n/a\">"},
		{"text-parens", "http://engine.internal", "(see http://engine.internal), or [http://engine.internal]", "(see " + base + "), or [" + base + "]"},
		{"text-angle", "http://engine.internal", "<http://engine.internal>", "<" + base + ">"},
		{"after-another-link", "http://engine.internal", "http://engine.internal) http://engine.internal/x", base + ") " + base + "/x"},

		// Inside another link's query, mailto: or javascript: text and
		// <code>: rewritten, as documented.
		{"query", "http://engine.internal",
			`<a href="https://tracker.example/c?u=1&amp;next=http://engine.internal/approve">`,
			`<a href="https://tracker.example/c?u=1&amp;next=` + base + `/approve">`},
		{"mailto", "http://engine.internal",
			`<a href="mailto:boss@example.com?subject=Approve&amp;body=http://engine.internal/approve">`,
			`<a href="mailto:boss@example.com?subject=Approve&amp;body=` + base + `/approve">`},
		{"javascript", "http://engine.internal",
			`<a href="javascript:open('http://engine.internal/approve')">`,
			`<a href="javascript:open('` + base + `/approve')">`},
		{"code", "http://engine.internal", `<code>http://engine.internal/api</code>`, `<code>` + base + `/api</code>`},
		{"escaped-by-reference", "http://engine.internal", `<code>http:&#47;&#47;engine.internal/api</code>`, `<code>http:&#47;&#47;engine.internal/api</code>`},
	}
	b := mustBase(t, base)
	for _, tt := range tests {
		t.Run("issue11-3/"+tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.body
			}
			got, _ := b.RewriteBody(mustOrigin(t, tt.origin), tt.body)
			if got != want {
				t.Errorf("RewriteBody(%q, %q) = %q, want %q", tt.origin, tt.body, got, want)
			}
			checkLinks(t, b, tt.body, got, rewrittenSpans(b, mustOrigin(t, tt.origin), tt.body))
		})
	}
}
