package session

import (
	"bufio"
	"errors"
	"io"
	"net/textproto"
	"strconv"

	"github.com/emersion/go-smtp"
)

// Pipelined commands (RFC 2920) and BDAT chunks (RFC 3030). go-smtp's
// client writes one command and waits for its reply; a Flight writes a
// group of commands in one write, and Reply reads their replies in order.
// Both work on the session's connection below go-smtp, through the same
// Tap, so the transcript and its redaction see every byte. go-smtp reads
// nothing of a flight: its own commands (RSET, QUIT, AUTH) run only when
// every reply of a flight has been read, and Synced tells whether the
// server sent more than was asked for.

// ErrDesync reports that the server sent bytes no command asked for: the
// session's replies can no longer be matched to its commands.
var ErrDesync = errors.New("server sent a reply no command asked for")

// A Flight is a group of commands written in one write. The zero value is
// not usable; get one from Session.Flight. It is used by one goroutine.
type Flight struct {
	s   *Session
	buf []byte
}

// Flight returns an empty flight. Its buffer is the session's and is
// reused: the flight must be sent before the next one is made.
func (s *Session) Flight() *Flight {
	f := &s.flight
	f.s, f.buf = s, f.buf[:0]
	return f
}

// Command adds a command line; CRLF is added. The caller makes sure the
// line holds no CR or LF.
func (f *Flight) Command(parts ...string) {
	for _, p := range parts {
		f.buf = append(f.buf, p...)
	}
	f.buf = append(f.buf, '\r', '\n')
}

// Bytes adds data written as is (the chunk after a BDAT command).
func (f *Flight) Bytes(p []byte) { f.buf = append(f.buf, p...) }

// Len returns the number of bytes in the flight.
func (f *Flight) Len() int { return len(f.buf) }

// Send writes the flight in one write. When it fails, a part of the flight
// may have reached the server.
func (f *Flight) Send() error {
	_, err := f.s.tap.Write(f.buf)
	if cap(f.buf) > 64<<10 {
		f.buf = nil // a flight that carried a large message is not kept
	}
	return err
}

// Write writes p at once, outside any flight.
func (s *Session) Write(p []byte) error {
	_, err := s.tap.Write(p)
	return err
}

// reader returns the reader of replies on the current Tap.
func (s *Session) reader() *textproto.Reader {
	if s.br == nil {
		s.br = bufio.NewReaderSize(s.tap, 4096)
		s.tr = textproto.NewReader(s.br)
	}
	return s.tr
}

// Reply reads the next reply, within the send timeout. A reply of 400 or
// above is returned as an *smtp.SMTPError, as go-smtp's client returns
// one; text is the reply's text (the enhanced code included), its lines
// joined by "\n". Any other error is the connection's.
func (s *Session) Reply() (code int, text string, err error) {
	s.Conn.StartReply()
	code, text, err = s.reader().ReadResponse(0)
	if err != nil {
		return 0, "", err
	}
	if code >= 400 {
		return code, text, toSMTPError(code, text)
	}
	return code, text, nil
}

// Synced reports whether every byte the server sent has been read as the
// reply to a command: the next command's reply will be its own.
func (s *Session) Synced() bool {
	return (s.br == nil || s.br.Buffered() == 0) && s.tap.Buffered() == 0
}

// DotWriter returns a writer of the message after a 354 reply: it
// dot-stuffs the message, makes bare line feeds CRLF (as go-smtp's does)
// and, on Close, writes the final "." line. It buffers; Close flushes.
func (s *Session) DotWriter() io.WriteCloser {
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(s.tap, 32<<10)
	}
	return &dotWriter{w: textproto.NewWriter(s.bw).DotWriter(), bw: s.bw}
}

type dotWriter struct {
	w  io.WriteCloser
	bw *bufio.Writer
}

func (d *dotWriter) Write(p []byte) (int, error) { return d.w.Write(p) }

func (d *dotWriter) Close() error {
	if err := d.w.Close(); err != nil {
		return err
	}
	return d.bw.Flush()
}

var errWriteAfterClose = errors.New("write after the last chunk")

// ChunkSize is the size of the BDAT chunks a streamed message is sent in.
const ChunkSize = 1 << 20

// bdatHeader is room for "BDAT 1048576 LAST\r\n" in front of a chunk.
const bdatHeader = 32

// A ChunkWriter sends a message as BDAT chunks of at most ChunkSize bytes
// (RFC 3030), holding one chunk in memory whatever the message's size. A
// chunk is written with its BDAT command in one write; the reply to a
// chunk is read after the next chunk was written, so the connection stays
// busy, and every chunk before the last has been answered before the last
// is written: a failure before Close returns means the server has not seen
// the whole message. Close writes the last chunk ("BDAT n LAST") and does
// not read its reply, the server's verdict on the message, which the
// caller reads with Reply.
//
// Write and Close return the first error: a write's, or a refusal of a
// chunk (an *smtp.SMTPError), after which nothing more is sent. The zero
// value is not usable; get one from Session.Chunks. It is used by one
// goroutine, like its Session.
type ChunkWriter struct {
	s       *Session
	buf     []byte // bdatHeader bytes of room, then the chunk
	pending bool   // a chunk's reply has not been read
	err     error
	closed  bool
}

// Chunks returns a ChunkWriter on the session. Its buffer is the
// session's, reused by the next message.
func (s *Session) Chunks() *ChunkWriter {
	if s.chunk == nil {
		s.chunk = make([]byte, bdatHeader, 16<<10)
	}
	return &ChunkWriter{s: s, buf: s.chunk[:bdatHeader]}
}

// Write adds p to the message, sending each full chunk once more bytes
// follow it (the last chunk is sent by Close).
func (w *ChunkWriter) Write(p []byte) (int, error) {
	n := 0
	if w.closed && w.err == nil {
		return 0, errWriteAfterClose
	}
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		if len(w.buf) == cap(w.buf) {
			if cap(w.buf) < bdatHeader+ChunkSize {
				// The buffer grows to a chunk only for a message that
				// needs it.
				grown := make([]byte, len(w.buf), min(2*cap(w.buf), bdatHeader+ChunkSize))
				copy(grown, w.buf)
				w.buf, w.s.chunk = grown, grown
				continue
			}
			w.err = w.send(false)
			continue
		}
		k := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf = w.buf[:len(w.buf)+k]
		p, n = p[k:], n+k
	}
	return n, nil
}

// Close reads the reply to the previous chunk and writes the last one.
func (w *ChunkWriter) Close() error {
	if w.closed || w.err != nil {
		return w.err
	}
	w.closed = true
	if w.pending {
		if _, _, err := w.s.Reply(); err != nil {
			w.err = err
			return err
		}
		w.pending = false
	}
	w.err = w.send(true)
	return w.err
}

// Err returns the error that stopped the writer: a write's, or a
// chunk's refusal; nil when none did.
func (w *ChunkWriter) Err() error { return w.err }

// send writes the chunk in buf with its BDAT command, then reads the reply
// to the chunk before it.
func (w *ChunkWriter) send(last bool) error {
	size := len(w.buf) - bdatHeader
	var h [bdatHeader]byte
	line := append(strconv.AppendInt(append(h[:0], "BDAT "...), int64(size), 10), " LAST\r\n"...)
	if !last {
		line = append(line[:len(line)-len(" LAST\r\n")], '\r', '\n')
	}
	start := bdatHeader - len(line)
	copy(w.buf[start:], line)
	if err := w.s.Write(w.buf[start:]); err != nil {
		return err
	}
	w.buf = w.buf[:bdatHeader]
	if w.pending {
		if _, _, err := w.s.Reply(); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				// The chunk just written has a reply of its own to come
				// (a refusal, RFC 3030 §2): read it, to stay in step.
				if _, _, derr := w.s.Reply(); derr != nil && !errors.As(derr, new(*smtp.SMTPError)) {
					return derr
				}
			}
			return err
		}
	}
	w.pending = !last
	return nil
}
