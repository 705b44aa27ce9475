package compose

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
)

// smuggling are the end-of-data confusion sequences of the research notes
// (§1.2, threat T1), with NUL, "\r\r\n" and a trailing CR.
var smuggling = []string{
	"x\r.\rSMUGGLED\r",
	"x\r.\r\nSMUGGLED\r\n",
	"x\n.\nSMUGGLED\n",
	"x\n.\r\nSMUGGLED\r\n",
	"x\r\n.\nSMUGGLED\r\n",
	"x\r\n.\r\nSMUGGLED\r\n",
	"a\n.\r\n",
	".",
	".\r\n",
	"\r\n.",
	"\r\n.\r\n\r\nMAIL FROM:<evil@example.com>\r\n",
	"x\x00y",
	"\r\r\n",
	"trailing\r",
}

// TestWireSmuggling places each smuggling sequence in every text a caller
// controls. WriteTo must either refuse the message before writing anything
// or write one with no bare CR, no bare LF, no NUL and no line that is just
// "."; and through NewCanonicalWriter and the DotWriter go-smtp uses, the
// only "." line on the wire is the terminator.
func TestWireSmuggling(t *testing.T) {
	places := []struct {
		name   string
		set    func(m *Message, s string)
		refuse bool // header text: Validate refuses CR, LF and NUL
	}{
		{"Text", func(m *Message, s string) { m.Text = s }, false},
		{"HTML", func(m *Message, s string) { m.HTML = s }, false},
		{"Text and HTML", func(m *Message, s string) { m.Text, m.HTML = s, s }, false},
		{"Subject", func(m *Message, s string) { m.Subject = s }, true},
		{"From.Name", func(m *Message, s string) { m.From.Name = s }, true},
		{"To.Name", func(m *Message, s string) { m.To[0].Name = s }, true},
		{"Header value", func(m *Message, s string) { m.Headers = []Header{{"X-Test", s}} }, true},
		{"Filename", func(m *Message, s string) {
			m.Attachments = []Attachment{{Filename: s, Content: strings.NewReader("x")}}
		}, true},
		{"Inline filename", func(m *Message, s string) {
			m.HTML = "<img src=cid:i@x>"
			m.Attachments = []Attachment{{Filename: s, Content: strings.NewReader("x"), Inline: true, ContentID: "i@x"}}
		}, true},
		{"Attachment content", func(m *Message, s string) {
			m.Attachments = []Attachment{{Filename: "a.txt", Content: strings.NewReader(s)}}
		}, false},
	}
	for _, pl := range places {
		for _, seq := range smuggling {
			t.Run(pl.name+"/"+seq, func(t *testing.T) {
				m := validMessage()
				pl.set(m, seq)
				var out bytes.Buffer
				n, err := m.WriteTo(&out)
				hostile := strings.ContainsAny(seq, "\r\n\x00")
				if err != nil {
					var fe *FieldError
					if !pl.refuse || !hostile || !errors.As(err, &fe) {
						t.Fatalf("WriteTo with %s %q = %v, want nil", pl.name, seq, err)
					}
					if n != 0 || out.Len() != 0 {
						t.Errorf("WriteTo refused but wrote %d octets", out.Len())
					}
					return
				}
				if pl.refuse && hostile {
					t.Fatalf("WriteTo with %s %q = nil, want a validation error", pl.name, seq)
				}
				if err := checkWire(out.Bytes()); err != nil {
					t.Fatalf("WriteTo with %s %q: %v\n%s", pl.name, seq, err, out.Bytes())
				}
				wire := dataWire(t, out.Bytes())
				if err := checkDATA(wire); err != nil {
					t.Errorf("DATA for %s %q: %v", pl.name, seq, err)
				}
				// The content survives, line endings made CRLF.
				root := parseEntity(t, out.Bytes())
				want := refCanonical.Replace(seq)
				switch pl.name {
				case "Text", "Text and HTML":
					if got := string(root.find("text/plain").body); got != want {
						t.Errorf("text = %q, want %q", got, want)
					}
				case "HTML":
					if got := string(root.find("text/html").body); got != want {
						t.Errorf("html = %q, want %q", got, want)
					}
				case "Attachment content":
					if got := string(root.parts[1].body); got != seq {
						t.Errorf("attachment = %q, want %q (byte for byte)", got, seq)
					}
				}
			})
		}
	}
}

// dataWire returns what go-smtp would send for msg after DATA: msg through
// NewCanonicalWriter and net/textproto's DotWriter (which go-smtp's Data
// returns), terminator included.
func dataWire(t *testing.T, msg []byte) []byte {
	t.Helper()
	var wire bytes.Buffer
	bw := bufio.NewWriter(&wire)
	dw := textproto.NewWriter(bw).DotWriter()
	cw := NewCanonicalWriter(dw)
	if _, err := cw.Write(msg); err != nil {
		t.Fatalf("canonical writer: %v", err)
	}
	if err := cw.Close(); err != nil {
		t.Fatalf("canonical writer Close: %v", err)
	}
	if err := dw.Close(); err != nil {
		t.Fatalf("DotWriter Close: %v", err)
	}
	bw.Flush()
	return wire.Bytes()
}

// checkDATA checks a DATA stream: CRLF line endings only, and exactly one
// line ".", the terminator at the end.
func checkDATA(wire []byte) error {
	if !bytes.HasSuffix(wire, []byte("\r\n.\r\n")) {
		return errors.New(`does not end with CRLF "." CRLF`)
	}
	body := wire[:len(wire)-len(".\r\n")]
	if err := checkWire(body); err != nil {
		return err
	}
	return nil
}

// TestWireRawMessage checks the raw path: a caller's message with bare line
// endings, sent through NewCanonicalWriter and the DotWriter, is received
// by a strict reader as the same message with CRLF line endings.
func TestWireRawMessage(t *testing.T) {
	for _, seq := range smuggling {
		if strings.Contains(seq, "\x00") {
			continue
		}
		raw := "From: a@example.com\nSubject: raw\n\n" + seq
		wire := dataWire(t, []byte(raw))
		if err := checkDATA(wire); err != nil {
			t.Errorf("raw message with %q: %v", seq, err)
			continue
		}
		r := textproto.NewReader(bufio.NewReader(bytes.NewReader(wire)))
		got, err := io.ReadAll(r.DotReader())
		if err != nil {
			t.Fatal(err)
		}
		want := refCanonical.Replace(raw)
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n" // the DotWriter ends the last line
		}
		// The DotReader returns LF line endings.
		if string(got) != strings.ReplaceAll(want, "\r\n", "\n") {
			t.Errorf("raw message with %q: received %q, want %q", seq, got, want)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(wire))
		if err != nil || msg.Header.Get("Subject") != "raw" {
			t.Errorf("raw message with %q: header %v, %v", seq, msg, err)
		}
	}
}
