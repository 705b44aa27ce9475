package actionlink

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// benchBody returns a realistic notification body of about 200 KB: an HTML
// table of 100 work units with inline styles, images and unrelated links,
// each row with an approve and a reject link (HTML-escaped queries).
var benchBody = sync.OnceValue(func() string {
	var sb strings.Builder
	sb.WriteString(`<!DOCTYPE html><html xmlns="http://www.w3.org/1999/xhtml"><head>` +
		`<meta http-equiv="Content-Type" content="text/html; charset=utf-8">` +
		`<style>td{padding:4px 8px;border-bottom:1px solid #ddd;font-family:Arial,sans-serif}` +
		`a.btn{display:inline-block;padding:6px 12px;border-radius:4px;color:#fff}</style></head>` +
		`<body style="margin:0;padding:0;background:#f4f4f4"><table role="presentation" style="width:100%;border-collapse:collapse">`)
	for i := 0; sb.Len() < 200_000-2100; i++ {
		fmt.Fprintf(&sb, `<tr><td style="color:#333;font-size:14px;line-height:20px">`+
			`<img src="https://cdn.example.com/icons/workunit.png" width="16" height="16" alt="" style="vertical-align:middle;border:0">`+
			` Work unit <b>%d</b>: purchase requisition PR-%06d for <i>Facilities</i>, amount 1,%03d.00 EUR, `+
			`requested by <a href="mailto:requester%d@example.com" style="color:#0645ad">requester%d@example.com</a>. `+
			`Policy: <a href="https://intranet.example.com/policies/purchasing?section=%d&amp;lang=en" style="color:#0645ad">purchasing policy</a>.`+
			` Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.`+
			` Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.</td>`+
			`<td style="color:#555;font-size:13px;line-height:18px">Justification: replacement of the ageing air-handling units in building C, `+
			`phase 2 of 3, as agreed in the facilities review; three quotes attached (lowest accepted), budget line 4711-FAC-22, `+
			`cost centre 3100, delivery expected within six weeks of approval. Duis aute irure dolor in reprehenderit in voluptate `+
			`velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia `+
			`deserunt mollit anim id est laborum. Attachments: <a href="https://files.example.com/pr/quotes.pdf" style="color:#0645ad">quotes.pdf</a>.</td>`+
			`<td style="text-align:right;white-space:nowrap">`+
			`<a class="btn" style="background:#2e7d32;color:#ffffff;text-decoration:none" href="http://engine.internal:8080/lpa/actions/approve?wu=%d&amp;node=UA1&amp;sig=3q2%%2BB7w9x0aZkLmNpQr%d#decision">Approve</a> `+
			`<a class="btn" style="background:#c62828;color:#ffffff;text-decoration:none" href="http://engine.internal:8080/lpa/actions/reject?wu=%d&amp;node=UA1&amp;sig=9f8%%2Fe7d6c5b4a3%d#decision">Reject</a>`+
			`</td></tr>`+"\n", i, i, i%1000, i, i, i, i, i, i, i)
	}
	sb.WriteString(`</table><p style="font-size:12px;color:#777">Plain-text fallback: approve all at http://engine.internal:8080/lpa/actions/approve-all?batch=7 ` +
		`or open https://approvals.example.com/inbox. Sent by the workflow engine; do not reply.</p></body></html>`)
	return sb.String()
})

func BenchmarkRewriteBody(b *testing.B) {
	base := mustBase(b, "https://approvals.example.com:8443")
	o := mustOrigin(b, "http://engine.internal:8080")
	body := benchBody()
	if _, n := base.RewriteBody(o, body); n < 150 {
		b.Fatalf("benchmark body has %d action links, want about 200", n)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		base.RewriteBody(o, body)
	}
}

func BenchmarkRewrite(b *testing.B) {
	base := mustBase(b, "https://approvals.example.com")
	link := "http://engine.internal:8080/lpa/actions/approve?wu=42&node=UA1&sig=3q2%2BB7w9x0aZkLmNpQr#decision"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := base.Rewrite(link); err != nil {
			b.Fatal(err)
		}
	}
}
