package interop

import (
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestSMTPUTF8 sends to internationalised addresses (RFC 6531), which
// Mailpit accepts as it announces SMTPUTF8, and checks that Mailpit got
// them — in the envelope and in the header — exactly as written.
func TestSMTPUTF8(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instPlain).reset(t)
	snd := newSender(t, s.conn(instPlain, "none"), nil)
	rc, err := snd.Send(t.Context(), &emailconn.Message{
		From:    "Prozess-Engine <engine@example.com>",
		To:      []string{"Jürgen Groß <jürgen.groß@bücher.example>", "山田太郎 <山田@例え.example>"},
		Subject: "Überstunden für Jürgen",
		Text:    "Grüße\n",
	})
	if err != nil {
		t.Fatalf("Send to internationalised addresses: %v", err)
	}
	if want := "jürgen.groß@bücher.example 山田@例え.example"; strings.Join(rc.Accepted, " ") != want {
		t.Errorf("Receipt.Accepted = %q, want %q", rc.Accepted, want)
	}
	got := mp.stored(t, rc)
	checkAddrs(t, "Mailpit: To", got.To, address{"Jürgen Groß", "jürgen.groß@bücher.example"}, address{"山田太郎", "山田@例え.example"})
	if len(got.Bcc) != 0 {
		t.Errorf("Mailpit: Bcc = %+v: an envelope recipient is missing from To as Mailpit read it", got.Bcc)
	}
	if got.Subject != "Überstunden für Jürgen" || got.Text != "Grüße\r\n" {
		t.Errorf("Mailpit: Subject %q, Text %q; want %q, %q", got.Subject, got.Text, "Überstunden für Jürgen", "Grüße\r\n")
	}
	raw := string(mp.raw(t, got.ID))
	if !strings.Contains(raw, "for <jürgen.groß@bücher.example>;") {
		t.Errorf("Mailpit's Received header does not name the envelope recipient in UTF-8:\n%.300s", raw)
	}
}
