// Package transcript turns the bytes of an SMTP session into lines for a
// debug log, leaving out every credential and the message content.
//
// AUTH lines keep only the mechanism; every client line of an AUTH exchange
// after that — LOGIN's user name and password, a SASL response, an XOAUTH2
// or OAUTHBEARER token — is replaced by "[redacted]" up to the line the
// server's final reply answers, however the replies were split or
// pipelined. The message sent after DATA, and each BDAT chunk (RFC 3030),
// is replaced by one line giving its size.
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
// Server must not be called concurrently.
//
// What a client line is — a command, a SASL response inside an AUTH
// exchange, or the message after DATA — is decided from what the client
// sent and the server's replies matched to it in order (the greeting is
// reply 0, reply n answers the client's nth line or message), never from
// when the replies arrived: a server may answer ahead, for example
// "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 …" in one write right
// after AUTH LOGIN, and the user name and password the client sends after
// that are still redacted. Where the reply that decides is not known yet
// (a client that pipelines), the line is treated as secret: redacted after
// AUTH, counted as the message after DATA.
type Recorder struct {
	// Emit receives each line, client lines with fromClient true.
	Emit func(fromClient bool, line string)

	client, server []byte
	units          int     // client units completed: lines and messages
	prev           unit    // what the last completed unit was
	replies        int     // complete replies seen, the greeting being reply 0
	queued         []reply // replies not yet needed, in order
	inData         bool
	bodyBytes      int64
	tail           []byte // last bytes of the body, to find the terminator
	chunk, chunked int64  // the BDAT chunk's octets still to come, and its size
}

// unit is what a client line (or message) was.
type unit uint8

const (
	unitNone    unit = iota // nothing sent yet
	unitCommand             // any other command
	unitAuth                // AUTH or a SASL response
	unitData                // DATA
	unitBody                // the message after DATA, up to the final dot
)

type reply struct {
	n    int    // 0 for the greeting
	code string // the first three octets of its last line
}

// maxQueued bounds the replies kept ahead of the client; past it the
// replies are unknown, and so treated as continuing an AUTH or DATA.
const maxQueued = 64

// Client records bytes the client wrote.
func (r *Recorder) Client(p []byte) {
	for len(p) > 0 {
		if r.inData {
			p = r.body(p)
			continue
		}
		if r.chunk > 0 {
			n := min(int64(len(p)), r.chunk)
			p, r.chunk = p[n:], r.chunk-n
			if r.chunk == 0 {
				r.Emit(true, "[chunk: "+strconv.FormatInt(r.chunked, 10)+" bytes]")
			}
			continue
		}
		if len(r.client) == 0 && r.prev == unitData && r.prevAnswer("354") {
			r.inData, r.bodyBytes = true, 0
			r.tail = []byte("\r\n") // the message may be empty
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

// prevAnswer reports whether the server's reply to the client's previous
// unit has the given code, or is not known.
func (r *Recorder) prevAnswer(code string) bool {
	n := r.units // reply n answers unit n-1
	for _, q := range r.queued {
		if q.n == n {
			return q.code == code
		}
	}
	return true // not received yet, or not kept
}

// done ends the current client unit.
func (r *Recorder) done(u unit) {
	r.units++
	r.prev = u
	keep := r.queued[:0]
	for _, q := range r.queued {
		if q.n >= r.units {
			keep = append(keep, q)
		}
	}
	r.queued = keep
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
		r.done(unitBody)
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
	case r.prev == unitAuth && r.prevAnswer("334"):
		// A response to a challenge, or the abort.
		if line == "*" {
			r.Emit(true, line)
		} else {
			r.Emit(true, Redacted)
		}
		r.done(unitAuth)
	case strings.EqualFold(verb, "AUTH"):
		mech, ir, _ := strings.Cut(rest, " ")
		if ir != "" {
			r.Emit(true, verb+" "+mech+" "+Redacted)
		} else {
			r.Emit(true, verb+" "+mech)
		}
		r.done(unitAuth)
	case strings.EqualFold(verb, "DATA") && rest == "":
		r.Emit(true, line)
		r.done(unitData)
	case strings.EqualFold(verb, "BDAT"):
		// The chunk follows the command line, whatever the reply; its
		// reply, after the chunk, answers this unit.
		r.Emit(true, line)
		size, _, _ := strings.Cut(rest, " ")
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
			r.chunk, r.chunked = n, n
		} else if err == nil {
			r.Emit(true, "[chunk: 0 bytes]")
		}
		r.done(unitCommand)
	default:
		r.Emit(true, line)
		r.done(unitCommand)
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
		n := r.replies
		r.replies++
		// Reply n decides what the client's unit n is; one the client has
		// already passed is not needed.
		if n >= r.units && len(r.queued) < maxQueued {
			r.queued = append(r.queued, reply{n, code})
		}
	}
}

func appendCapped(dst, p []byte) []byte {
	if room := maxLine - len(dst); room < len(p) {
		p = p[:max(room, 0)]
	}
	return append(dst, p...)
}
