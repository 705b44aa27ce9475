// Package transcript turns the bytes of an SMTP session into lines for a
// debug log, leaving out every credential and the message content.
//
// AUTH lines keep only the mechanism; every client line of an AUTH exchange
// after that — LOGIN's user name and password, a SASL response, an XOAUTH2
// or OAUTHBEARER token — is replaced by "[redacted]" until the server's
// final reply. The message sent after DATA is replaced by one line giving
// its size.
package transcript

import (
	"bytes"
	"strconv"
	"strings"
)

// maxLine is the longest line emitted; longer lines are cut.
const maxLine = 512

// Redacted replaces credentials.
const Redacted = "[redacted]"

// A Recorder assembles lines from the bytes each side sends. Client and
// Server must not be called concurrently (go-smtp does not pipeline, so the
// session alternates).
type Recorder struct {
	// Emit receives each line, client lines with fromClient true.
	Emit func(fromClient bool, line string)

	client, server []byte
	inAuth         bool
	dataPending    bool // client sent DATA, 354 not yet seen
	inData         bool
	bodyBytes      int64
	tail           []byte // last bytes of the body, to find the terminator
}

// Client records bytes the client wrote.
func (r *Recorder) Client(p []byte) {
	for len(p) > 0 {
		if r.inData {
			p = r.body(p)
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.client = appendCapped(r.client, p)
			return
		}
		r.client = appendCapped(r.client, p[:i])
		p = p[i+1:]
		r.clientLine(string(bytes.TrimSuffix(r.client, []byte("\r"))))
		r.client = r.client[:0]
	}
}

// body consumes message bytes up to and including the final dot.
func (r *Recorder) body(p []byte) []byte {
	const term = "\r\n.\r\n"
	buf := make([]byte, 0, len(r.tail)+len(p))
	buf = append(append(buf, r.tail...), p...)
	if i := bytes.Index(buf, []byte(term)); i >= 0 {
		consumed := i + len(term) - len(r.tail)
		size := r.bodyBytes + int64(consumed) - int64(len(".\r\n"))
		r.Emit(true, "[message: "+strconv.FormatInt(size, 10)+" bytes]")
		r.Emit(true, ".")
		r.inData, r.tail, r.bodyBytes = false, nil, 0
		return p[consumed:]
	}
	r.bodyBytes += int64(len(p))
	keep := min(len(buf), len(term)-1)
	r.tail = append(r.tail[:0], buf[len(buf)-keep:]...)
	return nil
}

func (r *Recorder) clientLine(line string) {
	verb, rest, _ := strings.Cut(line, " ")
	switch {
	case r.inAuth:
		if line == "*" {
			r.Emit(true, line)
		} else {
			r.Emit(true, Redacted)
		}
	case strings.EqualFold(verb, "AUTH"):
		r.inAuth = true
		mech, ir, _ := strings.Cut(rest, " ")
		if ir != "" {
			r.Emit(true, verb+" "+mech+" "+Redacted)
		} else {
			r.Emit(true, verb+" "+mech)
		}
	case strings.EqualFold(verb, "DATA") && rest == "":
		r.dataPending = true
		r.Emit(true, line)
	default:
		r.Emit(true, line)
	}
}

// Server records bytes read from the server.
func (r *Recorder) Server(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			r.server = appendCapped(r.server, p)
			return
		}
		r.server = appendCapped(r.server, p[:i])
		p = p[i+1:]
		line := string(bytes.TrimSuffix(r.server, []byte("\r")))
		r.server = r.server[:0]
		r.Emit(false, line)
		if len(line) >= 4 && line[3] == '-' {
			continue // more lines of the same reply follow
		}
		code := line
		if len(code) > 3 {
			code = code[:3]
		}
		if r.inAuth && code != "334" {
			r.inAuth = false
		}
		if r.dataPending {
			r.dataPending = false
			r.inData = code == "354"
			r.tail = []byte("\r\n") // the message may be empty
			r.bodyBytes = 0
		}
	}
}

func appendCapped(dst, p []byte) []byte {
	if room := maxLine - len(dst); room < len(p) {
		p = p[:max(room, 0)]
	}
	return append(dst, p...)
}
