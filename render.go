package emailconn

import (
	"fmt"
	"io"
)

// Render writes msg to w exactly as Send would send it — the same checks,
// the connection's sender and recipients where msg names none, action
// links rewritten with the connection's Email Actions Base URL, line ends
// made CRLF — as the server receives it after the final dot is taken off,
// without connecting to any server. It returns the number of bytes
// written. Tests use it to compare a notification with a golden file: set
// msg.Date and msg.MessageID, which are otherwise the time of the call and
// a random identifier.
//
// Render reads the attachments' Content and then puts every io.Seeker back
// where it was, so msg can be sent afterwards; other readers are used up.
// A message Send would refuse fails with the same ErrInvalid error; an
// error of w is returned as it is, and an error reading an attachment
// wrapped. Render is safe for concurrent use and
// works on a closed Sender too.
func (s *Sender) Render(w io.Writer, msg *Message) (int64, error) {
	return s.render(w, msg, "", nil)
}

// Render is Sender.Render with the route's sender and recipients where msg
// names none, as Route.Send sends it.
func (rt Route) Render(w io.Writer, msg *Message) (int64, error) {
	s, err := rt.Sender()
	if err != nil {
		return 0, err
	}
	return s.render(w, msg, rt.From, rt.To)
}

func (s *Sender) render(w io.Writer, msg *Message, fallbackFrom string, fallbackTo []string) (int64, error) {
	if s.slots == nil {
		return 0, errZeroSender
	}
	pr, err := s.prepare(msg, fallbackFrom, fallbackTo)
	if err != nil {
		return 0, err
	}
	out := &tailWriter{w: w}
	err = writeMessage(out, pr)
	if err != nil && err != out.err {
		err = fmt.Errorf("emailconn: render: reading an attachment: %w", err)
	}
	if err == nil && !out.endsCRLF() {
		// go-smtp's DATA writer ends the last line before the final dot.
		_, err = out.Write([]byte("\r\n"))
	}
	if rerr := pr.rewind(); err == nil && rerr != nil {
		err = fmt.Errorf("emailconn: render: rewinding an attachment: %w", rerr)
	}
	return out.n, err
}

// tailWriter counts what it writes and keeps the last two bytes.
type tailWriter struct {
	w    io.Writer
	n    int64
	tail [2]byte
	err  error // the last error of w
}

func (t *tailWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	t.n += int64(n)
	if err != nil {
		t.err = err
	}
	switch {
	case n >= 2:
		t.tail = [2]byte{p[n-2], p[n-1]}
	case n == 1:
		t.tail = [2]byte{t.tail[1], p[0]}
	}
	return n, err
}

func (t *tailWriter) endsCRLF() bool { return t.n >= 2 && t.tail == [2]byte{'\r', '\n'} }
