package smtpconn

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
)

// abortAnswer is what a Tap reads back for a SASL abort it did not send.
const abortAnswer = "501 5.7.0 SASL exchange already ended (answered by the client)\r\n"

// A NotSMTPError reports that the first line a server sent is not an SMTP
// reply: the service on the port speaks another protocol (SSH, HTTP, …).
type NotSMTPError struct {
	// Line is the start of the line, at most 64 bytes, with every byte
	// that is not printable ASCII replaced by '?'.
	Line string
}

func (e *NotSMTPError) Error() string {
	return fmt.Sprintf("its first line %s is not an SMTP reply", strconv.Quote(e.Line))
}

// maxHeld is the longest incomplete line a Tap holds back. A longer one is
// passed on, so that the reader above can refuse it as too long.
const maxHeld = 64 << 10

// A Tap is a net.Conn placed above TLS, where the session is plaintext. It
// serves Prefix before reading from the connection — a synthetic greeting
// when go-smtp takes over a session whose greeting was already read — and
// reports the bytes each side sent.
//
// A Tap passes server bytes on in whole lines: the bytes after the last
// line feed are held back until their line ends. When the connection fails
// in the middle of a line, the partial line is dropped and the error
// returned, so a reader above (bufio's ReadLine would otherwise return the
// partial line as if it were complete) never takes a partial line for a
// reply.
type Tap struct {
	net.Conn
	// Prefix is returned by Read before any byte of Conn.
	Prefix []byte
	// OnClient and OnServer, when set, receive the bytes the client wrote
	// and the bytes read from the server (Prefix excluded).
	OnClient, OnServer func(p []byte)
	// AnswerAbort keeps go-smtp's SASL abort ("*\r\n") from the server
	// when the server's last reply was final: go-smtp answers every failed
	// AUTH, even a final 535, with that abort and then waits for a reply to
	// it, which a server that already ended the exchange never sends (or
	// sends as a reply to the next command). The Tap then answers the
	// abort itself with a 501 the client reads, so go-smtp stays in step
	// with the server and the session can go on (to QUIT). While the
	// server is in the middle of an exchange (its last reply was 334), the
	// abort is sent: it is what the server waits for.
	AnswerAbort bool
	// Greeting says that the first line read from Conn is the server's
	// greeting: when it does not start like an SMTP reply (three digits),
	// Read fails with a *NotSMTPError as soon as the line has arrived,
	// instead of waiting for a reply that will never come.
	Greeting bool

	held     []byte // server bytes not passed on yet
	readErr  error  // the error that ended reading from Conn
	checked  bool   // the first line was checked
	buf      []byte
	lastLine [4]byte // the start of the last whole line passed on
}

// Read returns Prefix first, then reads from the connection, in whole
// lines.
func (t *Tap) Read(b []byte) (int, error) {
	if len(t.Prefix) > 0 {
		n := copy(b, t.Prefix)
		t.Prefix = t.Prefix[n:]
		return n, nil
	}
	for {
		if end := bytes.LastIndexByte(t.held, '\n') + 1; end > 0 || len(t.held) >= maxHeld {
			if end == 0 {
				end = len(t.held)
			}
			n := copy(b, t.held[:end])
			if t.AnswerAbort {
				t.noteLastLine(b[:n])
			}
			t.held = t.held[n:]
			if len(t.held) == 0 {
				t.held = t.held[:0:0]
			}
			return n, nil
		}
		if t.readErr != nil {
			t.held = nil
			return 0, t.readErr
		}
		if t.buf == nil {
			t.buf = make([]byte, 4096)
		}
		n, err := t.Conn.Read(t.buf)
		if n > 0 {
			if t.OnServer != nil {
				t.OnServer(t.buf[:n])
			}
			t.held = append(t.held, t.buf[:n]...)
			if perr := t.checkFirst(); perr != nil {
				t.held, err = nil, perr
			}
		}
		if err != nil {
			t.readErr = err
		}
	}
}

// checkFirst checks the greeting once its first line is complete (or as
// soon as its first three bytes show it cannot be one).
func (t *Tap) checkFirst() error {
	if !t.Greeting || t.checked {
		return nil
	}
	line := t.held
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
		t.checked = true
	}
	for i := 0; i < len(line) && i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			t.checked = true
			return &NotSMTPError{Line: printable(line, 64)}
		}
	}
	return nil
}

// printable returns up to max bytes of p with bytes that are not printable
// ASCII replaced by '?' and a trailing CR dropped.
func printable(p []byte, max int) string {
	p = bytes.TrimRight(p, "\r")
	if len(p) > max {
		p = p[:max]
	}
	out := []byte(string(p))
	for i, c := range out {
		if c < 0x20 || c > 0x7e {
			out[i] = '?'
		}
	}
	return string(out)
}

// noteLastLine remembers the start of the last whole line in p.
func (t *Tap) noteLastLine(p []byte) {
	if len(p) == 0 || p[len(p)-1] != '\n' {
		return
	}
	line := p[bytes.LastIndexByte(p[:len(p)-1], '\n')+1:]
	t.lastLine = [4]byte{}
	copy(t.lastLine[:], line)
}

// Buffered returns the number of server bytes read and not passed on yet.
func (t *Tap) Buffered() int { return len(t.held) }

// Write writes to the connection and reports what was written.
func (t *Tap) Write(b []byte) (int, error) {
	if t.AnswerAbort && string(b) == "*\r\n" && string(t.lastLine[:3]) != "334" {
		t.Prefix = append(t.Prefix, abortAnswer...)
		return len(b), nil
	}
	n, err := t.Conn.Write(b)
	if n > 0 && t.OnClient != nil {
		t.OnClient(b[:n])
	}
	return n, err
}
