package compose

import (
	"bytes"
	"io"
	"mime"
	"strings"
	"testing"

	gomail "github.com/emersion/go-message/mail"
)

// TestIssue10_25_NonASCIIFilenameRFC2231 checks that a non-ASCII
// attachment name is written as an RFC 2231 parameter (filename*=, with
// continuations when long) beside a plain ASCII fallback, never as an RFC
// 2047 encoded-word inside a quoted parameter, and that Go's mime package
// and go-message read the original name back from Content-Disposition and
// from Content-Type.
func TestIssue10_25_NonASCIIFilenameRFC2231(t *testing.T) {
	for _, name := range []string{
		"Überstunden März.pdf",
		"山田太郎の報告書.xlsx",
		"a\"b\\c ü.txt",
		strings.Repeat("Ü", 60) + " " + strings.Repeat("é", 40) + ".pdf", // 205 octets: continuations
		"report.csv", // ASCII: plain parameter only
	} {
		t.Run(name, func(t *testing.T) {
			m := validMessage()
			m.Attachments = []Attachment{{Filename: name, ContentType: "application/pdf", Content: strings.NewReader("x")}}
			var out bytes.Buffer
			if _, err := m.WriteTo(&out); err != nil {
				t.Fatal(err)
			}
			if err := checkWire(out.Bytes()); err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out.Bytes(), []byte("=?utf-8?")) && !strings.Contains(m.Subject, "=?") {
				if i := bytes.Index(out.Bytes(), []byte("=?utf-8?")); i > bytes.Index(out.Bytes(), []byte("MIME-Version")) {
					t.Errorf("an RFC 2047 encoded-word in a MIME parameter:\n%s", out.Bytes())
				}
			}
			for _, line := range strings.Split(out.String(), "\r\n") {
				if len(line) > 78 && (strings.Contains(line, "name") || strings.HasPrefix(line, " ")) && !isASCII(name) {
					t.Errorf("parameter line of %d octets: %q", len(line), line)
				}
			}
			root := parseEntity(t, out.Bytes())
			p := root.find("application/pdf")
			for _, f := range []struct{ field, param string }{{"Content-Disposition", "filename"}, {"Content-Type", "name"}} {
				raw := p.header.Get(f.field)
				_, params, err := mime.ParseMediaType(raw)
				if err != nil || params[f.param] != name {
					t.Errorf("mime.ParseMediaType(%s %q) = %q, %v, want %s %q", f.field, raw, params, err, f.param, name)
				}
				if !isASCII(name) && !strings.Contains(raw, f.param+"*") {
					t.Errorf("%s %q has no RFC 2231 %s*", f.field, raw, f.param)
				}
				if !isASCII(name) && !strings.Contains(raw, "; "+f.param+"=") {
					t.Errorf("%s %q has no plain %s fallback", f.field, raw, f.param)
				}
			}

			mr, err := gomail.CreateReader(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for {
				part, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if h, ok := part.Header.(*gomail.AttachmentHeader); ok {
					n, err := h.Filename()
					if err != nil {
						t.Errorf("go-message Filename: %v", err)
					}
					names = append(names, n)
				}
			}
			if len(names) != 1 || names[0] != name {
				t.Errorf("go-message reads attachment names %q, want %q", names, name)
			}
		})
	}
}

func TestIssue10_25_Fallback(t *testing.T) {
	got := formatParams("attachment", map[string]string{"filename": "Überstunden März.pdf"})
	want := `attachment; filename="_berstunden M_rz.pdf"; filename*=utf-8''%C3%9Cberstunden%20M%C3%A4rz.pdf`
	if got != want {
		t.Errorf("formatParams = %q, want %q", got, want)
	}
}

// TestIssue10_26_LongSubjectWord checks that a Subject with a word longer
// than a header line is written as encoded-words and reads back exactly.
func TestIssue10_26_LongSubjectWord(t *testing.T) {
	token := strings.Repeat("A1b2C3", 200) // 1,200 octets, no space
	for _, subject := range []string{
		token,
		"Token " + token + " expired",
		token + " " + token, // the space between two encoded runs survives
		"x=?_" + strings.Repeat("y", 1000) + "?=_z",
		"Überstunden " + token,
		strings.Repeat("x", 989) + " " + strings.Repeat("z", 990),
	} {
		m := validMessage()
		m.Subject = subject
		var out bytes.Buffer
		if _, err := m.WriteTo(&out); err != nil {
			t.Fatalf("WriteTo with a %d-octet Subject: %v", len(subject), err)
		}
		if err := checkWire(out.Bytes()); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out.String(), "\r\n") {
			if len(line) > 998 {
				t.Errorf("line of %d octets", len(line))
			}
		}
		msg, err := gomail.CreateReader(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := msg.Header.Subject()
		if err != nil || got != subject {
			t.Errorf("go-message reads Subject %q, %v, want %q", got, err, subject)
		}
		raw := parseEntity(t, out.Bytes()).header.Get("Subject")
		if dec, err := new(mime.WordDecoder).DecodeHeader(raw); err != nil || dec != subject {
			t.Errorf("mime.WordDecoder reads Subject %q, %v, want %q", dec, err, subject)
		}
	}
}

// TestIssue10_10_OwnFieldsOnly checks that a custom header is refused
// exactly when the composer writes that field itself (or it is Bcc), and
// that the refusal says what to do instead.
func TestIssue10_10_OwnFieldsOnly(t *testing.T) {
	for _, key := range []string{"Content-Language", "Content-Description", "Content-Location", "X-Workflow-Id",
		"List-Unsubscribe", "Auto-Submitted", "Precedence", "Importance", "Content-Base"} {
		m := validMessage()
		m.Headers = []Header{{key, "de"}}
		var out bytes.Buffer
		if _, err := m.WriteTo(&out); err != nil {
			t.Errorf("custom header %s: %v, want it written", key, err)
		} else if !strings.Contains(out.String(), "\r\n"+key+": de\r\n") {
			t.Errorf("custom header %s missing from\n%s", key, out.String())
		}
	}
	for key, want := range map[string]string{
		"From":                      "cannot be set: the composer writes the From field itself (set From instead)",
		"reply-to":                  "cannot be set: the composer writes the Reply-To field itself (set ReplyTo instead)",
		"Message-ID":                "cannot be set: the composer writes the Message-ID field itself (set MessageID instead)",
		"Date":                      "cannot be set: the composer writes the Date field itself (set Date instead)",
		"Content-Transfer-Encoding": "cannot be set: the composer writes the Content-Transfer-Encoding field itself, from the message's text, HTML and attachments",
		"Content-Disposition":       "cannot be set: the composer writes the Content-Disposition field itself, from the message's text, HTML and attachments",
		"Content-ID":                "cannot be set: the composer writes the Content-ID field itself, from the message's text, HTML and attachments",
		"BCC":                       "cannot be set: a Bcc field would show the blind copies to every recipient (put them in Bcc, which goes to the envelope only)",
	} {
		m := validMessage()
		m.Headers = []Header{{key, "x"}}
		err := m.Validate()
		if want := headerField(key) + ": " + want; err == nil || err.Error() != want {
			t.Errorf("custom header %s: Validate() = %v, want %q", key, err, want)
		}
	}
}
