package smtptest

import (
	"bytes"
	"time"
)

// readBody reads a DATA body up to and including the CRLF.CRLF terminator,
// strictly as go-smtp's server does: only CRLF ends a line, so neither
// LF.LF nor LF.CRLF ends the data. It dot-unstuffs lines and applies a
// DataBody fault (counting octets as sent). size counts body octets after
// unstuffing, also past MaxMessageBytes, where data stops growing and tooBig
// is set.
func (s *session) readBody(f *Fault) (data []byte, size int, tooBig bool, err error) {
	chunk, interval := 0, time.Duration(0) // SlowRead pacing
	trigger := -1                          // octets before Stall, Drop or Reset
	if f != nil {
		s.logf("fault at %s: %v", f.At, f.Action)
		if !s.srv.sleep(f.Delay) {
			return nil, 0, false, errClose
		}
		switch f.Action {
		case SlowRead:
			chunk, interval = f.Bytes, f.Interval
			if chunk == 0 {
				chunk = 64 << 10
			}
			if interval == 0 {
				interval = 100 * time.Millisecond
			}
		case Stall, Drop, Reset:
			trigger = f.Bytes
		}
	}
	d := dotDecoder{limit: s.srv.opts.MaxMessageBytes}
	for n := 0; ; {
		if n == trigger {
			switch f.Action {
			case Stall:
				<-s.srv.done
			case Reset:
				s.resetConn()
			}
			s.abrupt = true
			return nil, d.size, false, errClose
		}
		if chunk > 0 && n > 0 && n%chunk == 0 && !s.srv.sleep(interval) {
			return nil, d.size, false, errClose
		}
		if _, err := s.br.Peek(1); err != nil {
			return nil, d.size, false, err
		}
		p, _ := s.br.Peek(s.br.Buffered())
		if trigger >= 0 {
			p = p[:min(len(p), trigger-n)]
		}
		if chunk > 0 {
			p = p[:min(len(p), chunk-n%chunk)]
		}
		used, done := d.feed(p)
		s.br.Discard(used)
		n += used
		if done {
			return d.out, d.size, d.tooBig, nil
		}
	}
}

// dotDecoder is the DATA state machine of go-smtp's dataReader, fed with
// slices rather than single bytes.
type dotDecoder struct {
	state  int
	out    []byte
	size   int
	limit  int64
	tooBig bool
}

const (
	stBeginLine = iota // at the start of a line
	stDot              // read "." at the start of a line
	stDotCR            // read ".\r" at the start of a line
	stCR               // read "\r"
	stData             // inside a line
)

// feed consumes p up to the end of the body; it returns how much of p it
// used and whether the terminating ".\r\n" was among it.
func (d *dotDecoder) feed(p []byte) (used int, done bool) {
	i := 0
	for i < len(p) {
		if d.state == stData {
			j := bytes.IndexByte(p[i:], '\r')
			if j < 0 {
				d.emit(p[i:])
				return len(p), false
			}
			d.emit(p[i : i+j+1])
			i += j + 1
			d.state = stCR
			continue
		}
		c := p[i]
		i++
		switch d.state {
		case stBeginLine:
			switch c {
			case '.':
				d.state = stDot
				continue
			case '\r':
				d.state = stCR
			default:
				d.state = stData
			}
		case stDot: // the dot is dropped (unstuffed)
			if c == '\r' {
				d.state = stDotCR
				continue
			}
			d.state = stData
		case stDotCR:
			if c == '\n' {
				return i, true
			}
			d.emit([]byte{'\r'})
			d.state = stData
			if c == '\r' {
				d.state = stCR
			}
		case stCR:
			if c == '\n' {
				d.state = stBeginLine
			} else if c != '\r' {
				d.state = stData
			}
		}
		d.emit(p[i-1 : i])
	}
	return len(p), false
}

func (d *dotDecoder) emit(b []byte) {
	d.size += len(b)
	if d.limit > 0 {
		if room := d.limit - int64(len(d.out)); int64(len(b)) > room {
			d.tooBig = true
			b = b[:max(room, 0)]
		}
	}
	d.out = append(d.out, b...)
}
