package compose

import (
	"encoding/base64"
	"errors"
	"io"
	"strings"
)

// Messages are written here (see the package doc for why not with
// go-message): the header fields are formatted by headerFields and
// formatParams and folded by fold; text parts are encoded by appendQP and
// attachments by base64Writer. The MIME structure is the one tree
// describes, read back with go-message in the tests and fuzz targets.

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

// appendQPLine encodes one line; a CR or LF in it (appendQP splits lines
// at them) would be encoded like any control character. Runs of literal
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

// writeStream writes m, which must be valid, to out, streaming attachment
// content through base64Writer; with dry set it writes no attachment
// content (for EstimatedSize).
func (m *Message) writeStream(out *bodyWriter, dry bool) error {
	root := m.tree()
	fields := m.headerFields()
	fields = append(fields, field{"MIME-Version", "1.0"})
	fields = append(fields, root.fields...)
	if err := putFields(out, fields); err != nil {
		return err
	}
	return writePartBody(out, root, dry)
}

// putFields writes header fields, folded, and the empty line after them.
func putFields(out *bodyWriter, fields []field) error {
	var buf []byte
	for _, f := range fields {
		buf = append(buf, fold(f.key, f.value)...)
	}
	buf = append(buf, '\r', '\n')
	_, err := out.put(buf)
	return err
}

// writePartBody writes the body of p: the parts of a multipart between
// boundary lines, an attachment in base64, or a text in quoted-printable.
func writePartBody(out *bodyWriter, p *part, dry bool) error {
	switch {
	case p.children != nil:
		for _, c := range p.children {
			if _, err := out.put([]byte("--" + p.boundary + "\r\n")); err != nil {
				return err
			}
			if err := putFields(out, c.fields); err != nil {
				return err
			}
			if err := writePartBody(out, c, dry); err != nil {
				return err
			}
			if _, err := out.put([]byte("\r\n")); err != nil {
				return err
			}
		}
		_, err := out.put([]byte("--" + p.boundary + "--\r\n"))
		return err
	case p.att != nil:
		if dry {
			return nil
		}
		bw := newBase64Writer(out)
		if _, err := io.Copy(bw, p.att.Content); err != nil {
			return err
		}
		return bw.Close()
	default:
		_, err := out.put(appendQP(nil, p.text))
		return err
	}
}

// base64Line is the octets of one base64 line of 76 characters.
const base64Line = 57

// A base64Writer encodes what is written to it in base64 lines of 76
// characters, CRLF between lines and none after the last (as
// base64WireLen counts), without an allocation per line.
type base64Writer struct {
	w       *bodyWriter
	pending [base64Line]byte
	npend   int
	lines   int64
	out     []byte
}

func newBase64Writer(w *bodyWriter) *base64Writer {
	return &base64Writer{w: w, out: make([]byte, 0, 64<<10)}
}

func (b *base64Writer) line(chunk []byte) {
	if b.lines > 0 {
		b.out = append(b.out, '\r', '\n')
	}
	b.out = base64.StdEncoding.AppendEncode(b.out, chunk)
	b.lines++
}

func (b *base64Writer) flush() error {
	if len(b.out) == 0 {
		return nil
	}
	_, err := b.w.put(b.out)
	b.out = b.out[:0]
	return err
}

// Write encodes p.
func (b *base64Writer) Write(p []byte) (int, error) {
	n := len(p)
	if b.npend > 0 {
		k := copy(b.pending[b.npend:], p)
		b.npend += k
		p = p[k:]
		if b.npend < base64Line {
			return n, nil
		}
		b.line(b.pending[:])
		b.npend = 0
	}
	for len(p) >= base64Line {
		b.line(p[:base64Line])
		p = p[base64Line:]
		if len(b.out) >= cap(b.out)-100 {
			if err := b.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	b.npend = copy(b.pending[:], p)
	return n, b.flush()
}

// Close encodes what is pending; it does not close the underlying writer.
func (b *base64Writer) Close() error {
	if b.npend > 0 {
		b.line(b.pending[:b.npend])
		b.npend = 0
	}
	return b.flush()
}
