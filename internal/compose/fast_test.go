package compose

import (
	"bytes"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"
)

// refQPLine is the octet-by-octet encoder appendQPLine must equal.
func refQPLine(dst []byte, line []byte) []byte {
	if len(line) == 1 && line[0] == '.' {
		return append(dst, "=2E"...)
	}
	n := 0
	for i, c := range line {
		literal := c >= 33 && c <= 126 && c != '='
		if (c == ' ' || c == '\t') && i < len(line)-1 {
			literal = true
		}
		w := 1
		if !literal {
			w = 3
		}
		room := qpMaxLine - 1
		if i == len(line)-1 {
			room = qpMaxLine
		}
		if n+w > room {
			dst = append(dst, '=', '\r', '\n')
			n = 0
			if c == '.' && i == len(line)-1 {
				literal, w = false, 3
			}
		}
		if literal {
			dst = append(dst, c)
		} else {
			dst = append(dst, '=', hexUpper[c>>4], hexUpper[c&15])
		}
		n += w
	}
	return dst
}

func checkQP(t *testing.T, text []byte) {
	t.Helper()
	crlf := appendCRLF(nil, string(text))
	got := appendQP(nil, string(text))
	var want []byte
	for i, l := range bytes.Split(crlf, []byte("\r\n")) {
		if i > 0 {
			want = append(want, '\r', '\n')
		}
		want = refQPLine(want, l)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendQP(%q) =\n%q\nwant\n%q", text, got, want)
	}
	for _, l := range bytes.Split(got, []byte("\r\n")) {
		if len(l) > qpMaxLine || string(l) == "." {
			t.Fatalf("appendQP(%q): line %q", text, l)
		}
	}
	back, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(got)))
	if err != nil || !bytes.Equal(back, crlf) {
		t.Fatalf("decoding appendQP(%q) = %q, %v; want %q", text, back, err, crlf)
	}
}

func TestAppendQP(t *testing.T) {
	for _, s := range []string{"", ".", "a\n.\nb", strings.Repeat("x", 75) + ".", strings.Repeat("x", 76) + ".", strings.Repeat("x", 200),
		strings.Repeat("ü", 60), "trailing  \nspace\t", strings.Repeat("a=", 50), strings.Repeat("x", 74) + " ", strings.Repeat("x ", 80) + "\r\n."} {
		checkQP(t, []byte(s))
	}
}

func FuzzAppendQP(f *testing.F) {
	f.Add([]byte("The workunit failed. Überstunden für Jürgen = 42\n.\n"))
	f.Fuzz(func(t *testing.T, text []byte) { checkQP(t, text) })
}

func TestBytesEqualsWriteTo(t *testing.T) {
	m := &Message{From: &mail.Address{Address: "a@example.com"}, To: []*mail.Address{{Name: "Jürgen", Address: "j@example.com"}},
		Subject: "Überstunden", Text: "text\n.\n", HTML: "<p>html</p>", Date: time.Unix(1e9, 0), MessageID: "x@example.com"}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	// The boundaries are random: compare the structure around them.
	re := regexp.MustCompile(`=_[0-9a-f]+`)
	if re.ReplaceAllString(string(b), "B") != re.ReplaceAllString(buf.String(), "B") {
		t.Errorf("Bytes() = %q\nWriteTo wrote %q", b, buf.String())
	}
	m.Attachments = []Attachment{{Filename: "a", Content: strings.NewReader("x")}}
	if _, err := m.Bytes(); err == nil {
		t.Error("Bytes of a message with attachments succeeded")
	}
}

// appendCRLF appends s to dst with every line ending (CRLF, bare CR, bare
// LF) written as CRLF.
func appendCRLF(dst []byte, s string) []byte {
	for len(s) > 0 {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		dst = append(dst, '\r', '\n')
		if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			i++
		}
		s = s[i+1:]
	}
	return dst
}
