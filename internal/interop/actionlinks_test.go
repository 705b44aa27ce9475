package interop

import (
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestActionLinks sends a message whose text and HTML hold action links
// under the engine's origin (Options.ActionOrigin) and links that only
// look like them, through a connection with an Email Actions Base URL, and
// checks in Mailpit that exactly the action links lead to the base URL,
// their path, query and fragment unchanged, and every other byte is as
// sent — also across quoted-printable's soft line breaks, which a long
// signed link needs.
func TestActionLinks(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instPlain).reset(t)
	c := s.conn(instPlain, "none")
	c.ActionsBaseURL = "https://approvals.example.com"
	snd := newSender(t, c, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})

	sig := strings.Repeat("a1B2c3D4e5F6", 20) // a long signed link: 240 characters of signature
	// {{A}} stands for the origin: the engine's in what is sent, the base's
	// in what must arrive. Everything else must arrive unchanged.
	text := "Genehmigen: {{A}}/actions/approve?wu=42&sig=" + sig + "#top\n" +
		"Ablehnen: <{{A}}/actions/reject?wu=42>\n" +
		"Upper case: HTTP://ENGINE.INTERNAL:8080/actions/Info?x=%2F\n" +
		"Status (another port): http://engine.internal:9090/status?wu=42\n" +
		"Other scheme: https://engine.internal:8080/actions/approve?wu=42\n" +
		"Look-alike host: http://engine.internal:8080.evil.example/actions/approve\n" +
		"Help: https://docs.example.com/approvals?from=engine\n"
	html := "<p><a href=\"{{A}}/actions/approve?wu=42&amp;sig=" + sig + "\">Genehmigen</a>\n" +
		"<a href='{{A}}/actions/reject?wu=42&amp;reason=%C3%BC'>Ablehnen</a>\n" +
		"<a href=\"https://docs.example.com/approvals\">Hilfe</a>\n" +
		"<img src=\"http://engine.internal:9090/pixel.gif\" alt=\"\"></p>\n"
	sent := func(s string) string { return strings.ReplaceAll(s, "{{A}}", "http://engine.internal:8080") }
	want := func(s string) string {
		s = strings.ReplaceAll(s, "{{A}}", "https://approvals.example.com")
		// Origins match case-insensitively, and only the origin changes.
		return strings.ReplaceAll(s, "HTTP://ENGINE.INTERNAL:8080/actions/Info", "https://approvals.example.com/actions/Info")
	}
	rc, err := snd.Send(t.Context(), &emailconn.Message{
		Subject: "Überstunden: Genehmigung erforderlich",
		Text:    sent(text),
		HTML:    sent(html),
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := mp.stored(t, rc)
	if got.Text != crlf(want(text)) {
		t.Errorf("Mailpit: Text with action links differs from what was expected:\n%s", diffAt(got.Text, crlf(want(text))))
	}
	if got.HTML != crlf(want(html)) {
		t.Errorf("Mailpit: HTML with action links differs from what was expected:\n%s", diffAt(got.HTML, crlf(want(html))))
	}
	if strings.Contains(got.Text+got.HTML, "http://engine.internal:8080/") {
		t.Errorf("Mailpit: an action link still leads to the engine's origin:\n%s\n%s", got.Text, got.HTML)
	}
}
