package compose

import (
	"bytes"
	"errors"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzMessage composes a message from fuzzed header text and bodies.
// Either Validate refuses it (and WriteTo writes nothing), or the output
//
//   - has no NUL, bare CR, bare LF, line longer than 998 octets or line
//     that is just ".";
//   - parses with net/mail.ReadMessage to exactly the intended header: the
//     fields Date, From, To, Subject, Message-ID, X-Fuzz, MIME-Version and
//     Content-Type, plus Content-Transfer-Encoding when the message is a
//     single part, each exactly once, and no other (so no Bcc and no field
//     smuggled in through a value);
//   - gives back, after RFC 2047 decoding, Subject, the display name and
//     the X-Fuzz value equal to the input with whitespace normalised (see
//     Message), and the address unchanged;
//   - parses with go-message to the text and HTML bodies with line endings
//     made CRLF, and the attachment's name;
//   - has exactly the length EstimatedSize predicts.
func FuzzMessage(f *testing.F) {
	f.Add("Workunit failed", "Ops", "body\n", "", "wf-1")
	f.Add("Genehmigung erforderlich: Überstunden für Jürgen", "山田太郎", "Hallo\r\nJürgen", "<p>Hallo</p>", "ä")
	f.Add("x\r.\rSMUGGLED\r", "a\r\nBcc: x@example.com", "x\r.\r\nSMUGGLED\r\n", "a\n.\r\n", "\x00")
	f.Add("", "", "", "", "")
	f.Add(strings.Repeat("long subject ", 100), strings.Repeat("n", 200), strings.Repeat("t", 2000), ".", "  a  b  ")
	f.Add("=?utf-8?q?x?=", "\"quoted\" (comment) <x@y>", "\r\r\n", "trailing\r", "=?")
	f.Add("a\tb", "Team, Ops", ".\r\n", "\r\n.", strings.Repeat("é", 600))
	f.Fuzz(func(t *testing.T, subject, name, text, html, hdrValue string) {
		m := &Message{
			From:      &mail.Address{Name: name, Address: "from@example.com"},
			To:        []*mail.Address{{Address: "to@example.com"}},
			Subject:   subject,
			Text:      text,
			HTML:      html,
			Headers:   []Header{{"X-Fuzz", hdrValue}},
			Date:      testDate,
			MessageID: "fuzz@example.com",
		}
		content := []byte("attachment\r\x00\n.")
		if len(name) <= maxFilename {
			m.Attachments = []Attachment{{Filename: name, Content: bytes.NewReader(content), Size: int64(len(content))}}
		}
		var out bytes.Buffer
		n, err := m.WriteTo(&out)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("WriteTo = %v, want nil or a validation error", err)
			}
			if n != 0 || out.Len() != 0 {
				t.Fatalf("WriteTo refused (%v) but wrote %d octets", err, out.Len())
			}
			if ordinary(subject, name, hdrValue) && utf8.ValidString(text) && utf8.ValidString(html) {
				t.Fatalf("WriteTo refused ordinary input: %v", err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !slices.ContainsFunc(refusals, func(r string) bool { return strings.HasPrefix(line, r) }) {
					t.Fatalf("WriteTo refused with an unexpected reason: %q", line)
				}
			}
			return
		}
		if strings.ContainsAny(subject+name+hdrValue, "\r\n\x00") {
			t.Fatalf("WriteTo accepted CR, LF or NUL in header text")
		}
		b := out.Bytes()
		if err := checkWire(b); err != nil {
			t.Fatalf("%v\n%q", err, b)
		}
		if err := checkDATA(dataWire(t, b)); err != nil {
			t.Fatalf("DATA: %v", err)
		}
		if est, ok := m.EstimatedSize(); !ok || est != int64(len(b)) && est != int64(len(b))+2 {
			t.Errorf("EstimatedSize() = %d, %v; wrote %d", est, ok, len(b))
		}

		msg, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("net/mail.ReadMessage: %v\n%q", err, b)
		}
		want := []string{"Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Fuzz"}
		if len(m.Attachments) == 0 && (text == "" || html == "") {
			want = append(want, "Content-Transfer-Encoding")
		}
		slices.Sort(want)
		var got []string
		for k, vs := range msg.Header {
			for range vs {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("header fields = %q, want %q\n%q", got, want, b)
		}
		dec := new(mime.WordDecoder)
		if s, err := dec.DecodeHeader(msg.Header.Get("Subject")); err != nil || s != normWS(subject) {
			t.Errorf("Subject = %q, %v, want %q", s, err, normWS(subject))
		}
		if s, err := dec.DecodeHeader(msg.Header.Get("X-Fuzz")); err != nil || s != normWS(hdrValue) {
			t.Errorf("X-Fuzz = %q, %v, want %q", s, err, normWS(hdrValue))
		}
		from, err := msg.Header.AddressList("From")
		if err != nil || len(from) != 1 || from[0].Name != normWS(name) || from[0].Address != "from@example.com" {
			t.Errorf("From = %v, %v, want name %q", from, err, normWS(name))
		}

		root := parseEntity(t, b)
		if text != "" {
			if p := root.find("text/plain"); p == nil || string(p.body) != refCanonical.Replace(text) {
				t.Errorf("text/plain part = %v, want %q", p, refCanonical.Replace(text))
			}
		}
		if html != "" {
			if p := root.find("text/html"); p == nil || string(p.body) != refCanonical.Replace(html) {
				t.Errorf("text/html part = %v, want %q", p, refCanonical.Replace(html))
			}
		}
		if len(m.Attachments) > 0 {
			a := root.parts[len(root.parts)-1]
			if !bytes.Equal(a.body, content) {
				t.Errorf("attachment = %q, want %q", a.body, content)
			}
			if _, params, _ := a.header.ContentDisposition(); params["filename"] != normWS(name) {
				t.Errorf("filename = %q, want %q", params["filename"], normWS(name))
			}
		}
	})
}

// refusals are the reasons FuzzMessage accepts for a refusal.
var refusals = func() []string {
	var r []string
	for _, f := range []string{"Subject: ", "From.Name: ", `Headers["X-Fuzz"]: value `, "Attachments[0].Filename: "} {
		for _, reason := range []string{"contains CR or LF", "contains NUL", "is not valid UTF-8",
			"contains control character", "contains an RFC 2047 encoded-word", "contains a word of",
			"is longer than 255 octets"} {
			if f == "Subject: " && reason == "contains a word of" {
				continue // issue 10-26: a long word in a Subject is encoded
			}
			r = append(r, f+reason)
		}
	}
	return append(r, "Text: is not valid UTF-8", "HTML: is not valid UTF-8")
}()

// ordinary reports whether header texts are what Validate must accept:
// short valid UTF-8 without control characters or "=?".
func ordinary(texts ...string) bool {
	for _, s := range texts {
		if len(s) > 200 || !utf8.ValidString(s) || strings.Contains(s, "=?") ||
			strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && unicode.IsControl(r) }) {
			return false
		}
	}
	return true
}

// FuzzValidateEnvelope checks that an accepted envelope address can never
// change an SMTP command: no CR, LF, NUL, other control character, space,
// angle bracket or other special outside an address literal; non-ASCII
// only with SMTPUTF8; at most 254 octets; and net/mail reads it back as the
// same address (except IPv6 literals, whose RFC 5321 "IPv6:" tag net/mail
// does not accept).
func FuzzValidateEnvelope(f *testing.F) {
	for _, s := range []string{
		"a@example.com", "a@x> RET=FULL", "a@b> SIZE=1", `"x> ORCPT=rfc822;a@evil.test"@example.com`,
		"a@example.com\r\nDATA", "a\x00@x", "jürgen@beispiel.de", "a@[192.0.2.1]", "a@[IPv6:2001:db8::1]",
		strings.Repeat("a", 300) + "@example.com", "a@b@c", "a.b@c-d.e", "a@[IPv6:::]", "\u00a0@x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		for _, smtpUTF8 := range []bool{false, true} {
			err := ValidateEnvelope(addr, smtpUTF8)
			if err != nil {
				var ae *AddressError
				if !errors.As(err, &ae) || ae.Addr != addr {
					t.Fatalf("ValidateEnvelope(%q, %v) = %#v, want an *AddressError", addr, smtpUTF8, err)
				}
				if strings.ContainsAny(err.Error(), "\r\n\x00") {
					t.Fatalf("ValidateEnvelope(%q, %v) = %q, prints a control character raw", addr, smtpUTF8, err)
				}
				continue
			}
			if strings.ContainsAny(addr, "\r\n<> \x00\t\"\\(),;") {
				t.Fatalf("ValidateEnvelope(%q, %v) = nil, want error", addr, smtpUTF8)
			}
			if !smtpUTF8 && NeedsSMTPUTF8(addr) {
				t.Fatalf("ValidateEnvelope(%q, false) = nil for non-ASCII, want error", addr)
			}
			if !utf8.ValidString(addr) || len(addr) > 254 || strings.Count(addr, "@") != 1 {
				t.Fatalf("ValidateEnvelope(%q, %v) = nil, want error", addr, smtpUTF8)
			}
			for _, r := range addr {
				if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
					t.Fatalf("ValidateEnvelope(%q, %v) = nil with control %U, want error", addr, smtpUTF8, r)
				}
			}
			if i := strings.IndexByte(addr, ':'); i >= 0 && !strings.Contains(addr, "@[IPv6:") {
				t.Fatalf("ValidateEnvelope(%q, %v) = nil with a colon outside an IPv6 literal", addr, smtpUTF8)
			}
			if strings.Contains(addr, "@[IPv6:") {
				continue // net/mail accepts only "[2001:db8::1]", not RFC 5321's "[IPv6:2001:db8::1]"
			}
			a, perr := mail.ParseAddress(addr)
			if perr != nil || a.Address != addr || a.Name != "" {
				t.Fatalf("ValidateEnvelope(%q, %v) = nil, but net/mail.ParseAddress = %v, %v", addr, smtpUTF8, a, perr)
			}
		}
	})
}

// FuzzCanonicalWriter writes data split at two points and checks the output
// against the reference conversion of the whole input: equal when there is
// no error; otherwise ErrLineTooLong if a line of the converted input
// before the first NUL is longer than 998 octets, else ErrNUL, with the
// output a prefix of the reference.
func FuzzCanonicalWriter(f *testing.F) {
	for _, s := range append(slices.Clone(smuggling), "", "\r", "\n", "a\rb\nc\r\nd", strings.Repeat("x", 998)+"\r\n", strings.Repeat("y", 999)) {
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		cut1, cut2 := 0, 0
		if len(data) > 0 {
			cut1 = int(uint(split) % uint(len(data)+1))
			cut2 = cut1 + int(uint(split>>16)%uint(len(data)-cut1+1))
		}
		var out bytes.Buffer
		cw := NewCanonicalWriter(&out)
		var err error
		for _, chunk := range [][]byte{data[:cut1], data[cut1:cut2], data[cut2:]} {
			if _, err = cw.Write(chunk); err != nil {
				break
			}
		}
		if err == nil {
			err = cw.Close()
		}

		prefix := data
		if i := bytes.IndexByte(data, 0); i >= 0 {
			prefix = data[:i]
		}
		ref := refCanonical.Replace(string(prefix))
		var wantErr error
		for _, line := range strings.Split(ref, "\r\n") {
			if len(line) > MaxLineLength {
				wantErr = ErrLineTooLong
			}
		}
		if wantErr == nil && len(prefix) < len(data) {
			wantErr = ErrNUL
		}
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("canonical(%q split %d,%d) error = %v, want %v", data, cut1, cut2, err, wantErr)
		}
		if err == nil {
			if out.String() != ref {
				t.Fatalf("canonical(%q split %d,%d) = %q, want %q", data, cut1, cut2, out.Bytes(), ref)
			}
		} else if !strings.HasPrefix(ref, out.String()) {
			t.Fatalf("canonical(%q split %d,%d) = %q after %v, not a prefix of %q", data, cut1, cut2, out.Bytes(), err, ref)
		}
		if err == nil {
			if cerr := checkWire(out.Bytes()); cerr != nil && !strings.Contains(cerr.Error(), `line "."`) {
				t.Fatalf("canonical(%q) = %q: %v", data, out.Bytes(), cerr)
			}
		}
	})
}
