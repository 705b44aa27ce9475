package compose

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
)

// binary returns n octets with every octet value, CR, LF and NUL included.
func binary(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/256)
	}
	return b
}

func TestWriteToGolden(t *testing.T) {
	png := binary(3000)
	pdf := binary(10000)
	csv := []byte("id;name\r\n1;Jürgen\r\n")
	m := &Message{
		From: &mail.Address{Name: "山田太郎", Address: "taro@example.com"},
		To: []*mail.Address{
			{Name: "Jürgen Müller", Address: "juergen@example.com"},
			{Address: "ops@example.com"},
		},
		Cc:        []*mail.Address{{Name: "Team, Ops \"Night\"", Address: "team@example.com"}},
		ReplyTo:   []*mail.Address{{Name: "No Reply", Address: "noreply@example.com"}},
		Subject:   "Genehmigung erforderlich: Überstunden für Jürgen",
		Text:      "Hallo Jürgen,\nbitte genehmigen.\n.\nDanke",
		HTML:      "<p>Hallo J&uuml;rgen,</p>\n<img src=\"cid:logo@example.com\">\n",
		Headers:   []Header{{"X-Workflow-Id", "wf-42"}, {"X-Priority", "1"}},
		Date:      testDate,
		MessageID: "20261127.abc@engine.example.com",
		Attachments: []Attachment{
			{Filename: "Überstunden März.pdf", Content: bytes.NewReader(pdf)},
			{Filename: "logo.png", Content: bytes.NewReader(png), Inline: true, ContentID: "logo@example.com"},
			{Filename: "report.csv", ContentType: "text/csv; charset=utf-8", Content: bytes.NewReader(csv)},
		},
	}
	out := compose(t, m)

	// Header fields, in order; the body has no Bcc and nothing else.
	wantKeys := []string{"Date", "From", "Reply-To", "To", "Cc", "Subject", "Message-ID",
		"X-Workflow-Id", "X-Priority", "MIME-Version", "Content-Type"}
	if got := headerKeys(out); !slices.Equal(got, wantKeys) {
		t.Errorf("header fields = %q, want %q", got, wantKeys)
	}

	// net/mail sees the intended values.
	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("net/mail.ReadMessage: %v", err)
	}
	dec := new(mime.WordDecoder)
	if got, _ := dec.DecodeHeader(msg.Header.Get("Subject")); got != m.Subject {
		t.Errorf("Subject = %q, want %q", got, m.Subject)
	}
	if got, err := msg.Header.Date(); err != nil || !got.Equal(m.Date) {
		t.Errorf("Date = %v, %v, want %v", got, err, m.Date)
	}
	if got := msg.Header.Get("Message-Id"); got != "<"+m.MessageID+">" {
		t.Errorf("Message-Id = %q, want <%s>", got, m.MessageID)
	}
	for key, want := range map[string][]*mail.Address{"From": {m.From}, "To": m.To, "Cc": m.Cc, "Reply-To": m.ReplyTo} {
		got, err := msg.Header.AddressList(key)
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s = %v, want %v", key, got, want)
			continue
		}
		for i := range got {
			if *got[i] != *want[i] {
				t.Errorf("%s[%d] = %+v, want %+v", key, i, *got[i], *want[i])
			}
		}
	}
	if got := msg.Header.Get("X-Workflow-Id"); got != "wf-42" {
		t.Errorf("X-Workflow-Id = %q, want wf-42", got)
	}

	// go-message sees the intended structure and content.
	root := parseEntity(t, out)
	wantShape := "multipart/mixed[multipart/related[multipart/alternative[text/plain text/html] image/png] application/pdf text/csv]"
	if got := root.shape(); got != wantShape {
		t.Fatalf("structure = %s, want %s", got, wantShape)
	}
	if got := root.parts[0].params["type"]; got != "multipart/alternative" {
		t.Errorf("multipart/related type = %q, want multipart/alternative", got)
	}
	if got, want := string(root.find("text/plain").body), "Hallo Jürgen,\r\nbitte genehmigen.\r\n.\r\nDanke"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	if got, want := string(root.find("text/html").body), strings.ReplaceAll(m.HTML, "\n", "\r\n"); got != want {
		t.Errorf("html = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		mt, disp, filename, cid string
		body                    []byte
	}{
		{"image/png", "inline", "logo.png", "<logo@example.com>", png},
		{"application/pdf", "attachment", "Überstunden März.pdf", "", pdf},
		{"text/csv", "attachment", "report.csv", "", csv},
	} {
		p := root.find(tt.mt)
		if !bytes.Equal(p.body, tt.body) {
			t.Errorf("%s body differs (%d octets, want %d)", tt.mt, len(p.body), len(tt.body))
		}
		disp, params, err := p.header.ContentDisposition()
		if err != nil || disp != tt.disp || params["filename"] != tt.filename {
			t.Errorf("%s Content-Disposition = %q %q, %v, want %q filename %q", tt.mt, disp, params, err, tt.disp, tt.filename)
		}
		if got := p.header.Get("Content-Id"); got != tt.cid {
			t.Errorf("%s Content-Id = %q, want %q", tt.mt, got, tt.cid)
		}
		if got := p.params["name"]; got != tt.filename {
			t.Errorf("%s Content-Type name = %q, want %q", tt.mt, got, tt.filename)
		}
	}

	// go-message's mail reader finds the two attachments by name.
	mr, err := gomail.CreateReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("mail.CreateReader: %v", err)
	}
	var names []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("NextPart: %v", err)
		}
		if h, ok := p.Header.(*gomail.AttachmentHeader); ok {
			name, err := h.Filename()
			if err != nil {
				t.Errorf("Filename: %v", err)
			}
			names = append(names, name)
		}
	}
	if want := []string{"Überstunden März.pdf", "report.csv"}; !slices.Equal(names, want) {
		t.Errorf("attachments = %q, want %q", names, want)
	}
}

func TestWriteToStructure(t *testing.T) {
	img := func(inline bool) Attachment {
		return Attachment{Filename: "a.png", Content: strings.NewReader("img"), Inline: inline, ContentID: "a@x"}
	}
	tests := []struct {
		name        string
		text, html  string
		attachments []Attachment
		want        string
	}{
		{"text", "t", "", nil, "text/plain"},
		{"html", "", "h", nil, "text/html"},
		{"both", "t", "h", nil, "multipart/alternative[text/plain text/html]"},
		{"nothing", "", "", nil, "text/plain"},
		{"html+inline", "", "h", []Attachment{img(true)}, "multipart/related[text/html image/png]"},
		{"both+inline", "t", "h", []Attachment{img(true)}, "multipart/related[multipart/alternative[text/plain text/html] image/png]"},
		{"text+attachment", "t", "", []Attachment{img(false)}, "multipart/mixed[text/plain image/png]"},
		{"attachment only", "", "", []Attachment{img(false)}, "multipart/mixed[image/png]"},
		{"html+inline+attachment", "", "h", []Attachment{img(true), {Filename: "b.pdf", Content: strings.NewReader("pdf")}},
			"multipart/mixed[multipart/related[text/html image/png] application/pdf]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			m.Text, m.HTML, m.Attachments = tt.text, tt.html, tt.attachments
			root := parseEntity(t, compose(t, m))
			if got := root.shape(); got != tt.want {
				t.Errorf("structure = %s, want %s", got, tt.want)
			}
			if root.parts == nil {
				if got := root.header.Get("Content-Transfer-Encoding"); got != "quoted-printable" {
					t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", got)
				}
				if got := root.params["charset"]; got != "utf-8" {
					t.Errorf("charset = %q, want utf-8", got)
				}
			}
		})
	}
}

func TestAttachmentContentType(t *testing.T) {
	tests := []struct {
		filename, contentType string
		want                  string
	}{
		{"report.pdf", "", "application/pdf"},
		{"photo.JPG", "", "image/jpeg"},
		{"notes", "", "application/octet-stream"},
		{"data.unknownext", "", "application/octet-stream"},
		{"", "", "application/octet-stream"},
		{"x.pdf", "application/vnd.custom+json", "application/vnd.custom+json"},
	}
	for _, tt := range tests {
		m := validMessage()
		m.Attachments = []Attachment{{Filename: tt.filename, ContentType: tt.contentType, Content: strings.NewReader("x")}}
		root := parseEntity(t, compose(t, m))
		if got := root.parts[1].mediaType; got != tt.want {
			t.Errorf("attachment %q %q: Content-Type %q, want %q", tt.filename, tt.contentType, got, tt.want)
		}
	}
}

func TestWriteToHeaderText(t *testing.T) {
	long := strings.Repeat("Überstunden ", 200)
	tests := []struct {
		name, subject string
	}{
		{"ascii", "Workunit failed"},
		{"non-ASCII", "Genehmigung erforderlich: Überstunden für Jürgen"},
		{"CJK", "山田太郎さんの承認が必要です"},
		{"long ASCII", strings.Repeat("word ", 400)},
		{"long non-ASCII", long},
		{"long words", strings.Repeat(strings.Repeat("x", 120)+" ", 20)},
		{"one long word", strings.Repeat("y", 900)},
		{"longest word", "a " + strings.Repeat("z", 989) + " b"},
		{"whitespace", "  a \t\t b  "},
		{"empty", ""},
		{"tab and control-free symbols", "a\tb ~!@#$%^&*()_+{}|:\"<>?"},
		{"looks encoded but is not", "a =? b ?= c"},
		{"emoji", "✅ done 🎉"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			m.Subject = tt.subject
			m.To[0].Name = tt.subject
			out := compose(t, m)
			msg, err := mail.ReadMessage(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("net/mail.ReadMessage: %v", err)
			}
			want := normWS(tt.subject)
			got, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			if err != nil || got != want {
				t.Errorf("Subject = %q, %v, want %q", got, err, want)
			}
			to, err := msg.Header.AddressList("To")
			if err != nil || len(to) != 1 || to[0].Name != want {
				t.Errorf("To = %v, %v, want name %q", to, err, want)
			}
			// Lines are folded at 78 octets wherever a space allows it.
			head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			for _, line := range strings.Split(string(head), "\r\n") {
				if len(line) <= 78 {
					continue
				}
				words := line
				if line[0] != ' ' {
					_, words, _ = strings.Cut(line, ": ")
				}
				if strings.Contains(strings.TrimPrefix(words, " "), " ") {
					t.Errorf("header line of %d octets could have been folded: %q", len(line), line)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *Message)
		want   []string // the messages of the joined errors
	}{
		{"valid", func(m *Message) {}, nil},
		{"zero value", func(m *Message) { *m = Message{} }, []string{
			"From: is required", "Date: is required", "MessageID: is required"}},
		{"subject CRLF", func(m *Message) { m.Subject = "hi\r\nBcc: victim@example.com" }, []string{"Subject: contains CR or LF"}},
		{"subject LF", func(m *Message) { m.Subject = "hi\nthere" }, []string{"Subject: contains CR or LF"}},
		{"subject NUL", func(m *Message) { m.Subject = "a\x00b" }, []string{"Subject: contains NUL"}},
		{"subject ESC", func(m *Message) { m.Subject = "a\x1b[31mb" }, []string{"Subject: contains control character U+001B"}},
		{"subject C1", func(m *Message) { m.Subject = "a\u0085b" }, []string{"Subject: contains control character U+0085"}},
		{"subject UTF-8", func(m *Message) { m.Subject = "a\xffb" }, []string{"Subject: is not valid UTF-8"}},
		{"subject encoded", func(m *Message) { m.Subject = "=?utf-8?q?a=0D=0ABcc:_x?=" }, []string{
			"Subject: contains an RFC 2047 encoded-word (=?…?=): pass the decoded text, which the composer encodes itself"}},
		// issue10-26: a Subject word too long for a line is encoded, not refused.
		{"subject long word", func(m *Message) { m.Subject = strings.Repeat("x", 990) }, nil},
		{"subject longest word", func(m *Message) { m.Subject = "a " + strings.Repeat("x", 989) + " b" }, nil},
		{"name unfoldable", func(m *Message) { m.To[0].Name = strings.Repeat("n", 1000) }, []string{
			"To[0].Name: contains a word of 1002 octets, longer than a header line can hold with the field name (998 octets), and a word cannot be folded"}},
		{"header value unfoldable", func(m *Message) { m.Headers = []Header{{"X-Long", strings.Repeat("v", 991)}} }, []string{
			`Headers["X-Long"]: value contains a word of 991 octets, longer than a header line can hold with the field name (998 octets), and a word cannot be folded`}},
		{"from name", func(m *Message) { m.From.Name = "Evil\r\nBcc: x@example.com" }, []string{"From.Name: contains CR or LF"}},
		{"from address", func(m *Message) { m.From.Address = "a@x> RET=FULL" }, []string{`From: address "a@x> RET=FULL": contains ">"`}},
		{"to nil", func(m *Message) { m.To = append(m.To, nil) }, []string{"To[1]: is nil"}},
		{"to bad", func(m *Message) { m.To[0].Address = "not an address" }, []string{`To[0]: address "not an address": contains a space`}},
		{"cc name", func(m *Message) { m.Cc = []*mail.Address{{Name: "a\rb", Address: "c@example.com"}} }, []string{"Cc[0].Name: contains CR or LF"}},
		{"reply-to", func(m *Message) { m.ReplyTo = []*mail.Address{{Address: "x"}} }, []string{`ReplyTo[0]: address "x": has no "@"`}},
		{"EAI without UTF8Headers", func(m *Message) { m.To[0].Address = "jürgen@beispiel.de" }, []string{
			`To[0]: address "jürgen@beispiel.de": contains non-ASCII characters, which need SMTPUTF8 and UTF8Headers`}},
		{"EAI with UTF8Headers", func(m *Message) { m.To[0].Address = "jürgen@beispiel.de"; m.UTF8Headers = true }, nil},
		{"date range", func(m *Message) { m.Date = m.Date.AddDate(10000, 0, 0) }, []string{"Date: year 12026 is out of range (1900 to 9999)"}},
		{"message-id brackets", func(m *Message) { m.MessageID = "<a@b>" }, []string{`MessageID: contains "<" or ">" (give it without angle brackets)`}},
		{"message-id no at", func(m *Message) { m.MessageID = "abc" }, []string{`MessageID: has no "@" (want id-left@id-right)`}},
		{"message-id space", func(m *Message) { m.MessageID = "a b@c" }, []string{
			"MessageID: is not ASCII dot-atom text (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)"}},
		{"message-id CRLF", func(m *Message) { m.MessageID = "a@b\r\nBcc: x" }, []string{
			"MessageID: is not ASCII dot-atom text (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)"}},
		{"header key structural", func(m *Message) { m.Headers = []Header{{"bcc", "x@example.com"}} }, []string{
			`Headers["bcc"]: cannot be set: a Bcc field would show the blind copies to every recipient (put them in Bcc, which goes to the envelope only)`}},
		{"header key content", func(m *Message) { m.Headers = []Header{{"Content-Type", "text/html"}} }, []string{
			`Headers["Content-Type"]: cannot be set: the composer writes the Content-Type field itself, from the message's text, HTML and attachments`}},
		{"header key mime", func(m *Message) { m.Headers = []Header{{"MIME-Version", "2"}} }, []string{
			`Headers["MIME-Version"]: cannot be set: the composer writes the MIME-Version field itself, from the message's text, HTML and attachments`}},
		{"header key colon", func(m *Message) { m.Headers = []Header{{"X-A: b\r\nBcc", "x"}} }, []string{
			`Headers["X-A: b\r\nBcc"]: is not a valid header field name: it contains ":" (a field name is letters, digits and !#$%&'*+-.^_` + "`|~)"}},
		{"header key space", func(m *Message) { m.Headers = []Header{{"X A", "x"}} }, []string{
			`Headers["X A"]: is not a valid header field name: it contains " " (a field name is letters, digits and !#$%&'*+-.^_` + "`|~)"}},
		{"header key empty", func(m *Message) { m.Headers = []Header{{"", "x"}} }, []string{`Headers[""]: is not a valid header field name: the name is empty`}},
		{"header key 64", func(m *Message) {
			m.Headers = []Header{{"X-" + strings.Repeat("k", 62), "v " + strings.Repeat("w", 100)}}
		}, nil},
		{"header key 65", func(m *Message) { m.Headers = []Header{{"X-" + strings.Repeat("k", 63), "v"}} }, []string{`Headers["X-` + strings.Repeat("k", 62) + `"…]: is not a valid header field name: the name is longer than 64 octets`}},
		{"header value", func(m *Message) { m.Headers = []Header{{"X-A", "a\r\nBcc: x"}} }, []string{`Headers["X-A"]: value contains CR or LF`}},
		{"text UTF-8", func(m *Message) { m.Text = "\xff" }, []string{"Text: is not valid UTF-8"}},
		{"html UTF-8", func(m *Message) { m.HTML = "\xc3" }, []string{"HTML: is not valid UTF-8"}},
		{"text smuggling is fine", func(m *Message) { m.Text = "x\r.\rSMUGGLED\r\x00" }, nil},
		{"attachment", func(m *Message) {
			m.Attachments = []Attachment{{Filename: "a\nb", ContentType: "multipart/mixed"}}
		}, []string{
			"Attachments[0].Content: is required",
			"Attachments[0].Filename: contains CR or LF",
			"Attachments[0].ContentType: multipart/* cannot be sent base64-encoded (use application/octet-stream)"}},
		{"attachment type", func(m *Message) {
			m.Attachments = []Attachment{
				{Content: strings.NewReader(""), ContentType: "message/rfc822"},
				{Content: strings.NewReader(""), ContentType: "text/plain; charset=iso-8859-1"},
				{Content: strings.NewReader(""), ContentType: "text"},
				{Content: strings.NewReader(""), ContentType: "text/plain\r\nBcc: x"},
				{Content: strings.NewReader(""), ContentType: "text/plain; name*=utf-8''a%0D%0Ab"},
			}
		}, []string{
			"Attachments[0].ContentType: message/* cannot be sent base64-encoded (use application/octet-stream)",
			`Attachments[1].ContentType: charset "iso-8859-1" is not supported (only utf-8 and us-ascii)`,
			`Attachments[2].ContentType: "text" is not a valid media type (write type/subtype, such as application/pdf)`,
			"Attachments[3].ContentType: contains a control character",
			`Attachments[4].ContentType: parameter "name" contains a control character`}},
		{"attachment filename", func(m *Message) {
			m.Attachments = []Attachment{{Content: strings.NewReader(""), Filename: strings.Repeat("n", 256)}}
		}, []string{"Attachments[0].Filename: is longer than 255 octets"}},
		{"inline", func(m *Message) {
			m.Attachments = []Attachment{{Content: strings.NewReader(""), Inline: true}}
		}, []string{"Attachments[0].ContentID: is required for an inline attachment", "Attachments[0].Inline: needs an HTML body to show the image"}},
		{"content-id", func(m *Message) {
			m.HTML = "h"
			m.Attachments = []Attachment{
				{Content: strings.NewReader(""), Inline: true, ContentID: "<a@b>"},
				{Content: strings.NewReader(""), Inline: true, ContentID: "a\r\nb"},
				{Content: strings.NewReader(""), Inline: true, ContentID: "logo"},
				{Content: strings.NewReader(""), Inline: true, ContentID: "logo"},
			}
		}, []string{
			`Attachments[0].ContentID: contains "<" or ">" (give it without angle brackets)`,
			"Attachments[1].ContentID: is not ASCII dot-atom text (letters, digits, !#$%&'*+-/=?^_`{|}~ and single dots)",
			`Attachments[3].ContentID: "logo" is already used by Attachments[2]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMessage()
			tt.modify(m)
			err := m.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("Validate() = %#v, want a *FieldError in the chain", err)
				}
				var b bytes.Buffer
				if n, werr := m.WriteTo(&b); werr == nil || n != 0 || b.Len() != 0 {
					t.Errorf("WriteTo of an invalid message = %d, %v and wrote %d octets, want 0, error, 0", n, werr, b.Len())
				}
				if _, ok := m.EstimatedSize(); ok {
					t.Errorf("EstimatedSize of an invalid message: ok = true, want false")
				}
			}
		})
	}
}

func TestValidateAddressError(t *testing.T) {
	m := validMessage()
	m.To[0].Address = "a@b> SIZE=1"
	var ae *AddressError
	if err := m.Validate(); !errors.As(err, &ae) || ae.Addr != "a@b> SIZE=1" {
		t.Errorf("Validate() = %v, want an *AddressError for %q", err, "a@b> SIZE=1")
	}
}

func TestUTF8Headers(t *testing.T) {
	m := validMessage()
	m.UTF8Headers = true
	m.From = &mail.Address{Name: "Jürgen", Address: "jürgen@beispiel.de"}
	m.To = []*mail.Address{{Name: "山田太郎", Address: "山田@例え.jp"}}
	m.Subject = "Überstunden"
	out := compose(t, m)
	if !bytes.Contains(out, []byte("<jürgen@beispiel.de>")) || !bytes.Contains(out, []byte("<山田@例え.jp>")) {
		t.Errorf("the header does not carry the addresses as raw UTF-8:\n%s", out)
	}
	head, _, _ := bytes.Cut(out, []byte("\r\n\r\n"))
	for _, line := range strings.Split(string(head), "\r\n") {
		if !strings.HasPrefix(line, "From:") && !strings.HasPrefix(line, "To:") && strings.ContainsFunc(line, func(r rune) bool { return r > 127 }) {
			t.Errorf("raw UTF-8 outside the address fields: %q", line)
		}
	}
	msg, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]mail.Address{"From": *m.From, "To": *m.To[0]} {
		got, err := msg.Header.AddressList(key)
		if err != nil || len(got) != 1 || *got[0] != want {
			t.Errorf("%s = %v, %v, want %v", key, got, err, want)
		}
	}
	m.UTF8Headers = false
	if err := m.Validate(); err == nil {
		t.Errorf("Validate() with UTF8Headers false = nil, want an error for the EAI addresses")
	}
}

func TestHeaderOrderAndNoBcc(t *testing.T) {
	m := validMessage()
	m.Cc = []*mail.Address{{Address: "cc@example.com"}}
	m.Headers = []Header{{"X-B", "2"}, {"X-A", "1"}, {"X-B", "3"}}
	out := compose(t, m)
	want := []string{"Date", "From", "To", "Cc", "Subject", "Message-ID", "X-B", "X-A", "X-B",
		"MIME-Version", "Content-Type", "Content-Transfer-Encoding"}
	if got := headerKeys(out); !slices.Equal(got, want) {
		t.Errorf("header fields = %q, want %q", got, want)
	}
	if bytes.Contains(bytes.ToLower(out), []byte("bcc")) {
		t.Errorf("output mentions Bcc:\n%s", out)
	}
}

func TestEstimatedSize(t *testing.T) {
	sizes := []int{1, 2, 3, 4, 56, 57, 58, 59, 60, 113, 114, 115, 1000, 65536, 1 << 20}
	for _, n := range sizes {
		for _, single := range []bool{true, false} {
			m := validMessage()
			m.HTML = "<p>x</p>"
			m.Attachments = []Attachment{
				{Filename: "a.bin", Content: bytes.NewReader(binary(n)), Size: int64(n)},
				{Filename: "b.png", Content: bytes.NewReader(binary(n + 1)), Size: int64(n + 1), Inline: true, ContentID: "b@x"},
			}
			if single {
				m.Attachments = m.Attachments[:1]
			}
			est, ok := m.EstimatedSize()
			if !ok {
				t.Fatalf("EstimatedSize() with sizes known: ok = false")
			}
			out := compose(t, m)
			if est != int64(len(out)) {
				t.Errorf("attachment of %d octets (single %v): EstimatedSize() = %d, WriteTo wrote %d", n, single, est, len(out))
			}
		}
	}
	// A single-part message may end without CRLF; the DATA writer adds it.
	m := validMessage()
	m.Text = "no newline at the end"
	est, ok := m.EstimatedSize()
	if out := compose(t, m); !ok || est != int64(len(out))+2 {
		t.Errorf("EstimatedSize() = %d, %v, want %d (output plus the final CRLF)", est, ok, len(out)+2)
	}
	m.Attachments = []Attachment{{Content: strings.NewReader("x")}}
	if _, ok := m.EstimatedSize(); ok {
		t.Errorf("EstimatedSize() with an unknown attachment size: ok = true, want false")
	}
	if m.Attachments[0].Content.(*strings.Reader).Len() != 1 {
		t.Errorf("EstimatedSize read an attachment")
	}
}

func TestWriteToAttachmentError(t *testing.T) {
	boom := errors.New("boom")
	m := validMessage()
	m.Attachments = []Attachment{{Content: io.MultiReader(strings.NewReader("abc"), errReader{boom})}}
	if _, err := m.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Errorf("WriteTo with a failing attachment = %v, want boom", err)
	}
	if _, err := validMessage().WriteTo(failWriter{boom}); !errors.Is(err, boom) {
		t.Errorf("WriteTo to a failing writer = %v, want boom", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestDateHeader(t *testing.T) {
	tests := []struct {
		loc  *time.Location
		want string
	}{
		{time.UTC, "Fri, 27 Nov 2026 09:30:00 +0000"},
		{time.FixedZone("CET", 3600), "Fri, 27 Nov 2026 09:30:00 +0100"},
		{time.FixedZone("", -(3*3600 + 30*60)), "Fri, 27 Nov 2026 09:30:00 -0330"},
		// Offsets with seconds (local mean time) are written in UTC.
		{time.FixedZone("LMT", 3208), "Fri, 27 Nov 2026 08:36:32 +0000"},
	}
	for _, tt := range tests {
		m := validMessage()
		m.Date = time.Date(2026, 11, 27, 9, 30, 0, 0, tt.loc)
		msg, err := mail.ReadMessage(bytes.NewReader(compose(t, m)))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("Date"); got != tt.want {
			t.Errorf("Date in %v = %q, want %q", tt.loc, got, tt.want)
		}
		if got, err := msg.Header.Date(); err != nil || !got.Equal(m.Date) {
			t.Errorf("Date in %v parses as %v, %v, want %v", tt.loc, got, err, m.Date)
		}
	}
}
