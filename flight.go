package emailconn

import (
	"errors"
	"strconv"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/session"
)

// What a pipelined transaction writes after its RCPT commands, in the same
// write.
const (
	flightEnvelope = iota // nothing: the message waits for the replies
	flightDATA            // DATA; the message follows its 354
	flightBDAT            // the whole message, as BDAT n LAST
)

// flightBodyCopy is the largest message copied into the flight's buffer;
// a larger one is written right after it.
const flightBodyCopy = 64 << 10

// errLineBreak refuses an envelope address with a line break, as go-smtp
// does.
var errLineBreak = errors.New("smtp: a line must not contain CR or LF")

// flightRcpts is the most RCPT commands a flight has written ahead of the
// reply being read. The client reads no reply while it writes: a flight
// far larger than the socket buffers (thousands of recipients) would have
// the server block on writing replies nobody reads, stop reading, and the
// client block on writing. A larger envelope goes in groups,
// each written once the replies have caught up with the one before.
const flightRcpts = 256

// A flight is a pipelined transaction's commands, written in groups.
type flight struct {
	t     *tx
	pr    *prepared
	rcpts []string
	kind  int
	sent  int  // RCPT commands written
	done  bool // the whole flight is written, DATA or the message included
}

// write writes MAIL and the first group of recipients (with the data
// command when they are all).
func (fl *flight) write(mail string) error {
	f := fl.t.sess.Flight()
	f.Command(mail)
	return fl.group(f)
}

// group adds the next group of RCPT commands to f, and the data command
// after the last, and writes it.
func (fl *flight) group(f *session.Flight) error {
	end := min(len(fl.rcpts), fl.sent+flightRcpts)
	for _, rc := range fl.rcpts[fl.sent:end] {
		f.Command("RCPT TO:<", rc, ">")
	}
	fl.sent = end
	var body []byte
	if end == len(fl.rcpts) {
		switch pr := fl.pr; fl.kind {
		case flightDATA:
			f.Command("DATA")
		case flightBDAT:
			f.Command("BDAT ", strconv.Itoa(len(pr.body)), " LAST")
			if body = pr.body; len(body) <= flightBodyCopy {
				f.Bytes(body)
				body = nil
			}
		}
	}
	err := f.Send()
	if err == nil && body != nil {
		err = fl.t.sess.Write(body)
	}
	if err == nil && end == len(fl.rcpts) {
		fl.done = true
	}
	return err
}

// ahead writes the groups due before the reply to the k-th RCPT is read.
func (fl *flight) ahead(k int) error {
	for fl.sent < len(fl.rcpts) && fl.sent-k < flightRcpts {
		if err := fl.group(fl.t.sess.Flight()); err != nil {
			return err
		}
	}
	return nil
}

// unread is the number of replies due to the commands written after MAIL.
func (fl *flight) unread() int {
	if fl.done && fl.kind != flightEnvelope {
		return fl.sent + 1
	}
	return fl.sent
}

// message reports whether the whole message went with the flight: from
// then on, a lost connection may have lost the reply to an accepted one.
func (fl *flight) message() bool { return fl.done && fl.kind == flightBDAT }

// mailLine is the MAIL FROM command as go-smtp's client writes it for
// opts.
func mailLine(sess *session.Session, from string, opts *smtp.MailOptions) (string, error) {
	if strings.ContainsAny(from, "\r\n") {
		return "", errLineBreak
	}
	var b strings.Builder
	b.Grow(len(from) + 64)
	b.WriteString("MAIL FROM:<")
	b.WriteString(from)
	b.WriteByte('>')
	if sess.Has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if opts.Size > 0 && sess.Has("SIZE") {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(opts.Size, 10))
	}
	if opts.UTF8 {
		b.WriteString(" SMTPUTF8")
	}
	return b.String(), nil
}

// canonical reports whether a composed message goes on the wire as it is:
// every line ends in CRLF, none is longer than 998 octets, and there is no
// NUL. Such a message's size is its length, which BDAT announces before
// the message; any other goes through the canonicalising writer.
func canonical(p []byte) bool {
	line := 0 // octets of the current line, its CRLF left out
	for i, c := range p {
		switch c {
		case 0:
			return false
		case '\r':
			if i+1 >= len(p) || p[i+1] != '\n' {
				return false
			}
		case '\n':
			if i == 0 || p[i-1] != '\r' {
				return false
			}
			line = 0
		default:
			if line++; line > compose.MaxLineLength {
				return false
			}
		}
	}
	return true
}
