package interop

import (
	"strings"
	"testing"
)

// TestSendRaw sends a prepared RFC 5322 message whose lines end in bare LF,
// with a line that is only a dot, and checks that Mailpit stored it with
// CRLF line ends and every line intact (dot-stuffing on the wire undone by
// the server), delivered to the envelope recipients only.
func TestSendRaw(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instPlain).reset(t)
	snd := newSender(t, s.conn(instPlain, "none"), nil)
	raw := "From: Workflow Engine <engine@example.com>\n" +
		"To: Ops <ops@example.com>\n" +
		"Subject: raw interop message\n" +
		"Message-ID: <raw-interop-1@example.com>\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=us-ascii\n" +
		"\n" +
		"first line\n" +
		".\n" +
		".. two dots\n" +
		"last line\n"
	rc, err := snd.SendRaw(t.Context(), "engine@example.com", []string{"ops@example.com", "audit@example.com"}, strings.NewReader(raw))
	if err != nil {
		t.Fatalf("SendRaw: %v", err)
	}
	if len(rc.Accepted) != 2 {
		t.Errorf("Receipt.Accepted = %q, want both envelope recipients", rc.Accepted)
	}
	list := mp.list(t)
	found := findByMessageID(list, "raw-interop-1@example.com")
	if len(found) != 1 {
		t.Fatalf("Mailpit holds %d messages with Message-ID raw-interop-1@example.com (of %d), want 1", len(found), len(list))
	}
	if rc.QueueID != found[0].ID {
		t.Errorf("Receipt.QueueID = %q, want Mailpit's ID %q", rc.QueueID, found[0].ID)
	}
	got := mp.message(t, found[0].ID)
	if want := "first line\r\n.\r\n.. two dots\r\nlast line\r\n"; got.Text != want {
		t.Errorf("Mailpit: Text = %q, want %q", got.Text, want)
	}
	// Mailpit lists envelope recipients missing from the header as Bcc.
	checkAddrs(t, "Mailpit: Bcc", got.Bcc, address{"", "audit@example.com"})
	stored := string(mp.raw(t, got.ID))
	if want := crlf(raw); !strings.HasSuffix(stored, want) {
		t.Errorf("raw message as stored does not end with the message sent, with CRLF line ends:\n%s", diffAt(stored[max(0, len(stored)-len(want)):], want))
	}
}
