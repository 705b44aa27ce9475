package compose

import (
	"bytes"
	"errors"
	"io"
)

// MaxLineLength is the longest line, in octets without the CRLF, that may
// appear in a message (RFC 5322 §2.1.1, RFC 5321 §4.5.3.1.6).
const MaxLineLength = 998

var (
	// ErrNUL reports a NUL octet in a message, which RFC 5322 forbids and
	// which some servers truncate at.
	ErrNUL = errors.New("message contains a NUL octet")
	// ErrLineTooLong reports a line longer than MaxLineLength octets, which
	// servers may refuse or break (breaking DKIM signatures).
	ErrLineTooLong = errors.New("message contains a line longer than 998 octets")
	// errClosed reports a Write after Close.
	errClosed = errors.New("write to a closed canonical writer")
)

// canonicalFlushSize is the size at which converted output is handed on,
// and the size above which an unconverted run is written directly rather
// than copied.
const canonicalFlushSize = 32 << 10

// NewCanonicalWriter returns a writer for an SMTP DATA stream that writes to
// w what it is given with every line ending made CRLF: a CR not followed by
// LF and an LF not preceded by CR (bare CR, bare LF) each become CRLF, so
// "\r\r\n" becomes "\r\n\r\n". A CR at the end of one Write followed by an LF
// at the start of the next is one CRLF.
//
// It refuses a NUL octet with ErrNUL and a line longer than MaxLineLength
// (998) octets with ErrLineTooLong. What reached w before an error is a
// prefix of the converted stream; after any error, including one from w,
// every later call returns the same error, and the caller must abandon the
// transaction (close the connection) rather than end DATA, because the
// message is incomplete.
//
// It does not dot-stuff: go-smtp's DotWriter, which w normally is, does that,
// and it does not transform line endings that are already CRLF. Because bare
// CR is what the DotWriter passes through unchanged, this writer closes the
// "<CR>.<CR>" smuggling gap (CVE-2023-51764 class).
//
// Write returns len(p) on success, and converts whole chunks without
// allocating: runs without bare line endings are passed to w unchanged, in
// one call when the whole chunk is canonical. It holds back at most a
// trailing CR between calls. Close writes a held-back CR as CRLF; it does not
// close w. The writer is not safe for concurrent use.
func NewCanonicalWriter(w io.Writer) io.WriteCloser {
	return &canonicalWriter{w: w}
}

type canonicalWriter struct {
	w       io.Writer
	buf     []byte // converted output not yet written to w
	lineLen int    // octets in the current line so far
	cr      bool   // the last octet seen was a CR, not yet written
	closed  bool
	err     error // sticky
}

func (c *canonicalWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.closed {
		return 0, errClosed
	}
	n := len(p)
	var bad error
	if i := bytes.IndexByte(p, 0); i >= 0 {
		p, n, bad = p[:i], i, ErrNUL
	}
	if err := c.convert(p); err != nil {
		bad = err
	}
	if err := c.flush(); err != nil && bad == nil {
		bad = err
	}
	if bad != nil {
		c.err = bad
		if bad != ErrNUL {
			n = 0
		}
		return n, bad
	}
	return n, nil
}

// convert converts p, appending to c.buf or writing to c.w directly.
func (c *canonicalWriter) convert(p []byte) error {
	if c.cr {
		if len(p) == 0 {
			return nil
		}
		c.cr = false
		c.crlf()
		if p[0] == '\n' {
			p = p[1:]
		}
	}
	start := 0 // p[start:] has not yet been emitted
	i := 0     // start of the current line's content in p
	for i <= len(p) {
		end := len(p) // end of the current line's content, exclusive
		lf := bytes.IndexByte(p[i:], '\n')
		if lf >= 0 {
			end = i + lf
		}
		// Bare CRs inside p[i:end] end lines too.
		for {
			r := bytes.IndexByte(p[i:end], '\r')
			if r < 0 {
				break
			}
			r += i
			if r == end-1 && lf >= 0 {
				break // CRLF
			}
			if err := c.addLine(r - i); err != nil {
				return err
			}
			if r == len(p)-1 {
				// A CR at the end of p: the next Write decides.
				if err := c.emit(p[start:r]); err != nil {
					return err
				}
				c.cr = true
				return nil
			}
			if err := c.emit(p[start:r]); err != nil {
				return err
			}
			c.crlf()
			start, i = r+1, r+1
		}
		if lf < 0 {
			if err := c.addLine(end - i); err != nil {
				return err
			}
			break
		}
		if end > i && p[end-1] == '\r' {
			if err := c.addLine(end - 1 - i); err != nil {
				return err
			}
		} else {
			// Bare LF.
			if err := c.addLine(end - i); err != nil {
				return err
			}
			if err := c.emit(p[start:end]); err != nil {
				return err
			}
			c.crlf()
			start = end + 1
		}
		c.lineLen = 0
		i = end + 1
	}
	if start == 0 && len(c.buf) == 0 {
		// Nothing converted: hand the chunk on as it is.
		if len(p) == 0 {
			return nil
		}
		_, err := c.w.Write(p)
		return err
	}
	return c.emit(p[start:])
}

// crlf queues a line ending and starts a new line. emit leaves room for it.
func (c *canonicalWriter) crlf() {
	if c.buf == nil {
		c.buf = make([]byte, 0, canonicalFlushSize+2)
	}
	c.buf = append(c.buf, '\r', '\n')
	c.lineLen = 0
}

// addLine adds n octets to the current line and checks its length.
func (c *canonicalWriter) addLine(n int) error {
	c.lineLen += n
	if c.lineLen > MaxLineLength {
		return ErrLineTooLong
	}
	return nil
}

// emit queues b for writing, writing queued output first when it is large.
func (c *canonicalWriter) emit(b []byte) error {
	if len(b) >= canonicalFlushSize {
		if err := c.flush(); err != nil {
			return err
		}
		_, err := c.w.Write(b)
		return err
	}
	if len(c.buf)+len(b) > canonicalFlushSize {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, 0, canonicalFlushSize+2)
	}
	c.buf = append(c.buf, b...) // fits: len(c.buf)+len(b) <= canonicalFlushSize
	return nil
}

// flush writes queued output to w.
func (c *canonicalWriter) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// Close writes a held-back CR as CRLF. It does not close the underlying
// writer. It returns the writer's sticky error, if any.
func (c *canonicalWriter) Close() error {
	if c.err != nil {
		return c.err
	}
	if c.closed {
		return nil
	}
	c.closed = true
	if c.cr {
		c.cr = false
		if _, err := c.w.Write([]byte{'\r', '\n'}); err != nil {
			c.err = err
			return err
		}
	}
	return nil
}
