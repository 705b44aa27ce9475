package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"
)

// NotificationSize is the size of the notification of case 1.
const NotificationSize = 2 << 10

// notificationText is a 2 KB plain-text notification body: ASCII lines of
// about 70 characters, LF-terminated as a Go string usually is.
var notificationText = func() string {
	var b strings.Builder
	for i := 0; b.Len() < NotificationSize-200; i++ {
		fmt.Fprintf(&b, "Workunit 4711, step %3d: the activity failed and waits for a retry.\n", i)
	}
	return b.String()
}()

const notificationSubject = "Workunit 4711 failed: approval needed"

// rawNotification is the same notification as a finished RFC 5322
// message, CRLF line endings, for the clients that take bytes: the go-smtp
// rows and net/smtp send this, composed once.
var rawNotification = func() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", From, To, notificationSubject)
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <bench.1@example.com>\r\n", time.Now().Format(time.RFC1123Z))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n")
	b.WriteString(strings.ReplaceAll(notificationText, "\n", "\r\n"))
	return b.Bytes()
}()

// generator is a non-seekable reader of n pseudo-random bytes: it has no
// Len, Seek or WriteTo, so every client must stream it.
type generator struct {
	n     int64
	state uint64
}

func newGenerator(n int64) *generator { return &generator{n: n, state: 0x9e3779b97f4a7c15} }

func (g *generator) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	i := 0
	for ; i+8 <= len(p); i += 8 {
		g.state ^= g.state << 13
		g.state ^= g.state >> 7
		g.state ^= g.state << 17
		s := g.state
		p[i], p[i+1], p[i+2], p[i+3] = byte(s), byte(s>>8), byte(s>>16), byte(s>>24)
		p[i+4], p[i+5], p[i+6], p[i+7] = byte(s>>32), byte(s>>40), byte(s>>48), byte(s>>56)
	}
	for ; i < len(p); i++ {
		p[i] = byte(g.state >> (8 * (i % 8)))
	}
	g.n -= int64(len(p))
	return len(p), nil
}

// writeAttachmentMessage writes, to w, a multipart/mixed message with a
// short text part and the content of r as a base64 attachment in 76-column
// lines: what the raw go-smtp row streams into DATA.
func writeAttachmentMessage(w io.Writer, r io.Reader) error {
	const boundary = "bench-boundary-3f9a"
	head := "From: " + From + "\r\nTo: " + To + "\r\nSubject: Workunit 4711 log\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\nMessage-ID: <bench.2@example.com>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + "\"\r\n\r\n" +
		"--" + boundary + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe log is attached.\r\n" +
		"--" + boundary + "\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Disposition: attachment; filename=\"workunit.log\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n"
	if _, err := io.WriteString(w, head); err != nil {
		return err
	}
	lw := &lineWrapper{w: w}
	enc := base64.NewEncoder(base64.StdEncoding, lw)
	buf := make([]byte, 57*512) // whole 76-column lines per read
	if _, err := io.CopyBuffer(enc, struct{ io.Reader }{r}, buf); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	if err := lw.close(); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\r\n--"+boundary+"--\r\n")
	return err
}

// lineWrapper breaks a base64 stream into CRLF-terminated 76-column lines.
type lineWrapper struct {
	w   io.Writer
	col int
	out []byte
}

func (l *lineWrapper) Write(p []byte) (int, error) {
	n := len(p)
	l.out = l.out[:0]
	for len(p) > 0 {
		k := min(76-l.col, len(p))
		l.out = append(l.out, p[:k]...)
		p, l.col = p[k:], l.col+k
		if l.col == 76 {
			l.out = append(l.out, '\r', '\n')
			l.col = 0
		}
	}
	_, err := l.w.Write(l.out)
	return n, err
}

func (l *lineWrapper) close() error {
	if l.col == 0 {
		return nil
	}
	l.col = 0
	_, err := l.w.Write([]byte("\r\n"))
	return err
}
