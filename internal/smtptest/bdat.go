package smtptest

import (
	"fmt"

	"strconv"
	"strings"
)

// cmdBdat handles BDAT (RFC 3030, with Options.EnableCHUNKING): the chunk
// of the given size follows the command line and is read whatever the
// reply, so a refused chunk never turns into commands. A DataBody fault
// fires at its Bytes octets counted over the message's chunks; a fault at
// "BDAT" fires once the chunk was read and replaces its reply; AfterDot
// replaces the reply to the LAST chunk.
func (s *session) cmdBdat(arg string, f *Fault) error {
	if !s.srv.opts.EnableCHUNKING || s.srv.opts.BrokenCHUNKING {
		return s.reply(502, "5.5.1", "Error: command not implemented")
	}
	fields := strings.Fields(arg)
	size, err := strconv.ParseInt(strings.Join(fields[:min(1, len(fields))], ""), 10, 64)
	last := len(fields) == 2 && strings.EqualFold(fields[1], "LAST")
	if err != nil || size < 0 || len(fields) > 2 || len(fields) == 2 && !last {
		// Without a size the chunk cannot be told from what follows.
		s.reply(501, "5.5.4", "Syntax: BDAT size [LAST]")
		return errClose
	}
	if s.chunkSeen == 0 && s.bodyFault == nil {
		s.bodyFault = s.srv.takeFault(DataBody, false, s.id)
	}
	chunk, err := s.readChunk(size)
	if err != nil {
		s.srv.record(s.id, fmt.Sprintf("<CHUNK %d bytes, incomplete>", len(chunk)))
		return err
	}
	s.srv.record(s.id, fmt.Sprintf("<CHUNK %d bytes>", size))
	s.logf("C: <CHUNK %d bytes>", size)
	if f != nil {
		// A fault at BDAT: its reply (or action) stands for the chunk's.
		if done, closeAfter, err := s.runFault(f, "250"); err != nil || done {
			s.resetTx()
			if err == nil && closeAfter {
				err = errClose
			}
			return err
		}
	}
	switch {
	case s.bdatFailed:
		return s.reply(503, "5.5.1", "Error: a previous chunk was refused; RSET first")
	case !s.inTx:
		return s.reply(503, "5.5.1", "Error: need MAIL command")
	case len(s.rcpts) == 0:
		return s.reply(554, "5.5.1", "Error: no valid recipients")
	}
	s.chunks++
	s.bdatSize += size
	if max := s.srv.opts.MaxMessageBytes; max > 0 && s.bdatSize > max {
		s.bdatFailed, s.bdat = true, nil
		return s.reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
	}
	s.bdat = append(s.bdat, chunk...)
	if !last {
		return s.reply(250, "2.0.0", fmt.Sprintf("%d bytes received", size))
	}
	return s.queue(s.message(s.bdat, s.chunks), false)
}

// readChunk reads size octets of a chunk, applying the message's DataBody
// fault (Stall, Drop, Reset) at its Bytes octets.
func (s *session) readChunk(size int64) ([]byte, error) {
	trigger := int64(-1)
	if f := s.bodyFault; f != nil {
		switch f.Action {
		case Stall, Drop, Reset:
			trigger = int64(f.Bytes) - s.chunkSeen
		}
	}
	keep := s.inTx && len(s.rcpts) > 0 && !s.bdatFailed
	var out []byte
	for n := int64(0); n < size; {
		if n == trigger {
			s.logf("fault at %s: %v", s.bodyFault.At, s.bodyFault.Action)
			switch s.bodyFault.Action {
			case Stall:
				<-s.srv.done
			case Reset:
				s.resetConn()
			}
			s.abrupt = true
			return out, errClose
		}
		if _, err := s.br.Peek(1); err != nil {
			return out, err
		}
		p, _ := s.br.Peek(s.br.Buffered())
		want := size - n
		if trigger > n {
			want = min(want, trigger-n)
		}
		p = p[:min(int64(len(p)), want)]
		if keep {
			out = append(out, p...)
		}
		s.br.Discard(len(p))
		n += int64(len(p))
		s.chunkSeen += int64(len(p))
	}
	return out, nil
}
