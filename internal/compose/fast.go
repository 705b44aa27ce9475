package compose

import (
	"errors"
	"strings"
)

// A message without attachments — the usual notification — is written
// here without go-message: its header fields are formatted as for any
// message (headerFields, fold), and its one or two text parts are encoded
// by appendQP. The result is the same MIME structure WriteTo always writes;
// it only skips go-message's per-line allocations, which cost more than the
// rest of a send. Messages with attachments stream through go-message.

const hexUpper = "0123456789ABCDEF"

// qpMaxLine is the longest encoded line, soft-break "=" included (RFC 2045
// §6.7 rule 5: 76 characters).
const qpMaxLine = 76

// appendQP appends text to dst as quoted-printable (RFC 2045 §6.7),
// with every line ending (CRLF, bare CR, bare LF) written as CRLF: "=",
// control characters, DEL and every octet above 127 are written =XX, a
// space or tab that ends a line too, and lines are broken softly ("="
// CRLF) so that none is longer than 76 characters. A line that would
// consist of "." alone is written "=2E", so that no line of the output can
// end DATA even without dot-stuffing.
func appendQP(dst []byte, text string) []byte {
	for {
		i := strings.IndexAny(text, "\r\n")
		if i < 0 {
			return appendQPLine(dst, text)
		}
		dst = appendQPLine(dst, text[:i])
		dst = append(dst, '\r', '\n')
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// qpLiteral tells the octets written as they are: printable ASCII but "=",
// and space and tab (unless they end a line).
var qpLiteral = func() (t [256]bool) {
	for c := 33; c <= 126; c++ {
		t[c] = c != '='
	}
	t[' '], t['\t'] = true, true
	return t
}()

// appendQPLine encodes one line; a CR or LF in it (there is none after
// appendCRLF) is encoded like any control character. Runs of literal
// octets are copied whole.
func appendQPLine(dst []byte, line string) []byte {
	if len(line) == 1 && line[0] == '.' {
		return append(dst, "=2E"...)
	}
	n := 0 // characters on the current output line
	for i := 0; i < len(line); {
		j := i
		for j < len(line) && qpLiteral[line[j]] {
			j++
		}
		if j == len(line) && j > i && (line[j-1] == ' ' || line[j-1] == '\t') {
			j-- // whitespace that ends a line is encoded
		}
		for i < j {
			room := qpMaxLine - 1 - n // leave room for a soft break
			if j == len(line) && j-i <= qpMaxLine-n {
				room = j - i // the rest of the line fits
			}
			if room <= 0 {
				dst = append(dst, '=', '\r', '\n')
				n = 0
				continue
			}
			k := min(j, i+room)
			if n == 0 && k == len(line) && k-i == 1 && line[i] == '.' {
				// "." alone on the last physical line of a long line.
				dst = append(dst, "=2E"...)
				n, i = 3, k
				continue
			}
			dst = append(dst, line[i:k]...)
			n += k - i
			i = k
		}
		if i == len(line) {
			break
		}
		room := qpMaxLine - 1
		if i == len(line)-1 {
			room = qpMaxLine
		}
		if n+3 > room {
			dst = append(dst, '=', '\r', '\n')
			n = 0
		}
		c := line[i]
		dst = append(dst, '=', hexUpper[c>>4], hexUpper[c&15])
		n += 3
		i++
	}
	return dst
}

// writeSimple writes m, which must be valid and have no attachments, to
// out: the header, then the text part, the HTML part, or both in
// multipart/alternative.
func (m *Message) writeSimple(out *bodyWriter) error {
	_, err := out.put(m.appendSimple(nil))
	return err
}

// appendSimple appends m, which must be valid and have no attachments, to
// buf.
func (m *Message) appendSimple(buf []byte) []byte {
	root := m.tree()
	fields := m.headerFields()
	fields = append(fields, field{"MIME-Version", "1.0"})
	fields = append(fields, root.fields...)
	if buf == nil {
		size := 512 + len(m.Text) + len(m.HTML)
		buf = make([]byte, 0, size+size/8)
	}
	for _, f := range fields {
		buf = append(buf, fold(f.key, f.value)...)
	}
	buf = append(buf, '\r', '\n')
	if root.children == nil {
		return appendQP(buf, root.text)
	}
	for _, c := range root.children {
		buf = append(buf, "--"...)
		buf = append(buf, root.boundary...)
		buf = append(buf, '\r', '\n')
		for _, f := range c.fields {
			buf = append(buf, fold(f.key, f.value)...)
		}
		buf = append(buf, '\r', '\n')
		buf = appendQP(buf, c.text)
		buf = append(buf, '\r', '\n')
	}
	buf = append(buf, "--"...)
	buf = append(buf, root.boundary...)
	return append(buf, "--\r\n"...)
}

// Bytes validates m and returns it as WriteTo would write it, for a
// message without attachments; one with attachments is an error (stream
// it with WriteTo instead).
func (m *Message) Bytes() ([]byte, error) {
	if len(m.Attachments) > 0 {
		return nil, errors.New("compose: Bytes of a message with attachments")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.appendSimple(nil), nil
}
