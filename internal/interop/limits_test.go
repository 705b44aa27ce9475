package interop

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// onlyReader hides every method of a reader but Read, so that its size
// is unknown and it cannot be rewound.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// TestMessageSize checks Mailpit's message size limit (SIZE 1048576 on the
// faulty instance): a message known to be larger fails before it is
// uploaded, one of unknown size is refused by the server after the upload
// with a permanent 552 — not reported as a delivery of unknown state — and
// the Sender goes on sending afterwards.
func TestMessageSize(t *testing.T) {
	s := setup(t)
	big := make([]byte, 2<<20)
	fillRandom(big, 7)
	cases := []struct {
		name     string
		content  io.Reader
		sentinel error
		code     int // the server's reply, 0 for none
		stage    emailconn.Stage
	}{
		{"size known", bytes.NewReader(big), emailconn.ErrMessageTooLarge, 0, emailconn.StageMail},
		{"size unknown", onlyReader{bytes.NewReader(big)}, emailconn.ErrRefused, 552, emailconn.StageData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(instChaos).reset(t)
			snd := newSender(t, s.conn(instChaos, "none"), nil)
			_, err := snd.Send(t.Context(), &emailconn.Message{
				Subject:     "too large",
				Text:        "2 MiB attached",
				Attachments: []emailconn.Attachment{{Filename: "big.bin", Content: tc.content}},
			})
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("Send of a 2 MiB message to a 1 MiB server: error = %v, want %v", err, tc.sentinel)
			}
			if errors.Is(err, emailconn.ErrDeliveryUnknown) {
				t.Errorf("Send error = %v: the server replied, so delivery is not unknown", err)
			}
			var ee *emailconn.Error
			if errors.As(err, &ee) && (ee.Stage != tc.stage || ee.Temporary()) {
				t.Errorf("Error.Stage = %q, Temporary = %v; want %q, false", ee.Stage, ee.Temporary(), tc.stage)
			}
			if tc.code != 0 {
				var se *emailconn.SMTPError
				if !errors.As(err, &se) || se.Code != tc.code {
					t.Errorf("Send error = %v, want the server's %d reply as *SMTPError", err, tc.code)
				}
			}
			mp.mustBeEmpty(t)

			// The same Sender, and its pooled session, go on working.
			t.Run("next send", func(t *testing.T) {
				rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: "small after large 1", Text: "x"})
				if err != nil {
					t.Fatalf("Send of a small message right after the refused one: %v", err)
				}
				mp.stored(t, rc)
			})
			mp.reset(t)
			rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: "small after large 2", Text: "x"})
			if err != nil {
				t.Fatalf("second Send of a small message after the refused one: %v", err)
			}
			mp.stored(t, rc)
		})
	}
}

// TestRecipientRejected uses the faulty instance's recipient filter
// (550 5.1.0 for any address not at example.com) to check partial
// delivery: by default the message goes to the accepted recipients and
// the Receipt and ErrRecipientRejected name the refused one; with
// RequireAllRecipients, or when every recipient is refused, nothing is
// delivered.
func TestRecipientRejected(t *testing.T) {
	s := setup(t)
	cases := []struct {
		name       string
		to         []string
		requireAll bool
		delivered  bool
	}{
		{"partial", []string{"ok@example.com", "nope@example.org"}, false, true},
		{"partial, RequireAllRecipients", []string{"ok@example.com", "nope@example.org"}, true, false},
		{"all refused", []string{"nope@example.org", "nein@example.net"}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(instChaos).reset(t)
			snd := newSender(t, s.conn(instChaos, "none"), nil)
			rc, err := snd.Send(t.Context(), &emailconn.Message{To: tc.to, Subject: "recipients " + tc.name, Text: "x", RequireAllRecipients: tc.requireAll})
			if !errors.Is(err, emailconn.ErrRecipientRejected) {
				t.Fatalf("Send error = %v, want ErrRecipientRejected", err)
			}
			var re *emailconn.RecipientsError
			if !errors.As(err, &re) {
				t.Fatalf("Send error %v holds no *RecipientsError", err)
			}
			for _, r := range re.Rejected {
				if strings.HasSuffix(r.Address, "@example.com") || r.Err.Code != 550 || r.Err.Temporary() {
					t.Errorf("rejected %s with %v; want only addresses outside example.com, with a permanent 550", r.Address, r.Err)
				}
			}
			if !tc.delivered {
				if rc != nil {
					t.Errorf("Receipt = %+v, want nil: nothing was delivered", rc)
				}
				mp.mustBeEmpty(t)
				return
			}
			if rc == nil {
				t.Fatalf("Receipt = nil with error %v, want the receipt of the partial delivery", err)
			}
			if len(rc.Accepted) != 1 || rc.Accepted[0] != "ok@example.com" || len(rc.Rejected) != 1 || rc.Rejected[0].Address != "nope@example.org" {
				t.Errorf("Receipt: Accepted %q, Rejected %v; want [ok@example.com], [nope@example.org]", rc.Accepted, rc.Rejected)
			}
			if re.Accepted != 1 || len(re.Rejected) != 1 {
				t.Errorf("RecipientsError: Accepted %d, Rejected %v; want 1, [nope@example.org]", re.Accepted, re.Rejected)
			}
			got := mp.stored(t, rc)
			raw := string(mp.raw(t, got.ID))
			if !strings.Contains(raw, "for <ok@example.com>;") {
				t.Errorf("Mailpit's Received header does not name the envelope recipient ok@example.com:\n%.400s", raw)
			}
		})
	}
}
