// Package smtpconn wraps the network connection under an SMTP client so that
// go-smtp's per-command deadlines follow emailconn's timeout semantics, a
// context can end any blocking call, and a server cannot make the client
// read an endless reply.
//
// go-smtp sets a deadline of now+CommandTimeout before every command and
// clears it afterwards, sets none while the message body is written, and has
// no context support. Conn translates: a non-zero deadline set by go-smtp
// starts a reply (the reply byte budget is reset and the deadline becomes
// now+SendTimeout); a cleared deadline leaves only the phase and context
// deadlines; every Write gets a progress deadline of now+SendTimeout per
// chunk, and a wait for a reply is extended while the server keeps taking
// the bytes the client sent (it is still reading a large message). To spare
// a timer operation on every call, a progress deadline is moved only when
// it has fallen behind: the timeout fires between SendTimeout and 9/8 of it
// after the last progress. Whatever go-smtp sets, the phase deadline (the connect budget) and
// the context's deadline are never exceeded, and once the context is done
// the connection is closed and stays failed with the context's cause.
//
// Conn wraps the raw TCP connection, under TLS, so that crypto/tls and
// go-smtp keep their own view of the stream.
package smtpconn

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultReplyLimit is the number of bytes one server reply may take. EHLO
// replies are a few hundred bytes; a TLS handshake read during a reply is
// a few kilobytes.
const DefaultReplyLimit = 256 << 10

// writeChunk is the most bytes written under one progress deadline.
const writeChunk = 32 << 10

// ErrReplyTooLarge is returned by Read when the server sends more than the
// reply limit without the client starting a new command.
var ErrReplyTooLarge = errors.New("server reply exceeds the size limit")

// Limit says which deadline ended an operation.
type Limit int

// The limits a TimeoutError can name.
const (
	LimitSend    Limit = iota + 1 // the per-reply / write-progress timeout
	LimitPhase                    // the phase budget (the connect timeout)
	LimitContext                  // the context's deadline
)

// A TimeoutError is an I/O timeout with the limit that caused it.
type TimeoutError struct {
	Limit Limit
	// Stalled reports that the server had stopped taking the bytes the
	// client sent: a write made no progress, or a reply was awaited while
	// written bytes were still queued unsent.
	Stalled bool
	Err     error // the network error (matches os.ErrDeadlineExceeded)
}

func (e *TimeoutError) Error() string { return e.Err.Error() }
func (e *TimeoutError) Unwrap() error { return e.Err }

// Timeout reports true, as net.Error does.
func (e *TimeoutError) Timeout() bool { return true }

// Options configures a Conn.
type Options struct {
	// SendTimeout bounds each reply and each stretch of writing without
	// progress. Zero means none.
	SendTimeout time.Duration
	// ReplyLimit bounds the bytes of one reply. Zero means DefaultReplyLimit.
	ReplyLimit int64
}

// Conn is a net.Conn whose deadlines follow the rules of the package
// comment. It is safe for the concurrent use net.Conn allows.
type Conn struct {
	raw  net.Conn
	opts Options

	mu          sync.Mutex
	phase       time.Time // phase deadline; zero = none
	ctxDeadline time.Time // deadline of the bound context; zero = none
	cause       error     // set once the bound context is done
	replyBytes  int64
	readLimit   Limit     // which limit the current read deadline comes from
	writeErr    error     // the first write error
	queued      int       // unacknowledged bytes when the last reply wait started or progressed
	written     int64     // bytes written since the last reply wait started
	rdl, wdl    time.Time // the read and write deadlines last set on raw
}

// New wraps raw.
func New(raw net.Conn, opts Options) *Conn {
	if opts.ReplyLimit <= 0 {
		opts.ReplyLimit = DefaultReplyLimit
	}
	return &Conn{raw: raw, opts: opts}
}

// SetPhaseDeadline sets the deadline of the current phase, such as the
// connect budget; zero clears it. It applies to the operation in progress
// too.
func (c *Conn) SetPhaseDeadline(t time.Time) {
	c.mu.Lock()
	c.phase = t
	c.applyLocked(false)
	c.mu.Unlock()
}

// Bind makes ctx govern the connection until release is called: its
// deadline caps every deadline, and when it is done the connection is
// closed and every later call fails with context.Cause(ctx). Bind must not
// be called again before release. After a bound context ended, the Conn is
// unusable.
func (c *Conn) Bind(ctx context.Context) (release func()) {
	c.mu.Lock()
	if d, ok := ctx.Deadline(); ok {
		c.ctxDeadline = d
	} else {
		c.ctxDeadline = time.Time{}
	}
	c.applyLocked(false)
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.fail(context.Cause(ctx)) })
	return func() {
		stop()
		c.mu.Lock()
		c.ctxDeadline = time.Time{}
		c.applyLocked(false)
		c.mu.Unlock()
	}
}

// Err returns the cause the connection failed with when its bound context
// ended, or nil.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// fail ends the connection with cause.
func (c *Conn) fail(cause error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	// A past deadline wakes blocked calls at once; closing makes sure.
	_ = c.raw.SetDeadline(time.Unix(1, 0))
	_ = c.raw.Close()
}

// StartReply starts waiting for a reply, as go-smtp's command deadlines do:
// the reply budget is reset and the read deadline becomes now+SendTimeout,
// capped by the phase and context deadlines.
func (c *Conn) StartReply() { _ = c.SetDeadline(time.Now()) }

// earliest returns the earliest non-zero time of a and b, and whether b won.
func earliest(a, b time.Time) (time.Time, bool) {
	if b.IsZero() || (!a.IsZero() && a.Before(b)) {
		return a, false
	}
	return b, true
}

// deadlineLocked computes the effective deadline for an operation that may
// wait up to now+SendTimeout (when timed), capped by the phase and context
// deadlines, and says which limit it is.
func (c *Conn) deadlineLocked(timed bool) (time.Time, Limit) {
	var t time.Time
	var limit Limit
	if timed && c.opts.SendTimeout > 0 {
		t, limit = time.Now().Add(c.opts.SendTimeout), LimitSend
	}
	if nt, won := earliest(t, c.phase); won {
		t, limit = nt, LimitPhase
	}
	if nt, won := earliest(t, c.ctxDeadline); won {
		t, limit = nt, LimitContext
	}
	return t, limit
}

// applyLocked sets the read deadline. timed means go-smtp started waiting
// for a reply; otherwise it cleared its deadline, or a phase or context
// deadline changed.
func (c *Conn) applyLocked(timed bool) {
	if c.cause != nil {
		return
	}
	t, limit := c.deadlineLocked(timed)
	c.readLimit = limit
	if limit == LimitSend {
		if c.slide(c.rdl, t, limit) {
			return
		}
		t = t.Add(c.opts.SendTimeout / 8)
	} else if c.rdl.Equal(t) {
		return
	}
	c.rdl = t
	_ = c.raw.SetReadDeadline(t)
}

// SetDeadline translates go-smtp's deadlines: a non-zero t starts a reply
// (reset budget, deadline now+SendTimeout); a zero t clears it. The phase
// and context deadlines always apply.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.IsZero() {
		// go-smtp clears its deadline after every reply. Nothing reads
		// until it sets the next one, so a send-timeout deadline may stay:
		// clearing it would cost a timer operation per command.
		if c.readLimit != LimitSend || c.cause != nil {
			c.applyLocked(false)
		}
		return c.errLocked()
	}
	c.replyBytes = 0
	c.queued = 0
	if c.written > queueCheckMin {
		// A large upload ended: the server may still be reading it.
		c.queued = unsent(c.raw)
	}
	c.written = 0
	c.applyLocked(true)
	return c.errLocked()
}

// queueCheckMin is the upload size above which a reply wait watches the
// send queue drain (smaller uploads leave the kernel at once).
const queueCheckMin = 64 << 10

// slide reports whether a deadline of t may stay at cur instead: for the
// progress deadline now+SendTimeout, any deadline between t and
// t+SendTimeout/8 will do, which saves a timer operation on most calls.
func (c *Conn) slide(cur, t time.Time, limit Limit) bool {
	if limit != LimitSend || cur.IsZero() || cur.Before(t) {
		return cur.Equal(t)
	}
	return cur.Sub(t) <= c.opts.SendTimeout/8
}

// SetReadDeadline is SetDeadline for reads; writes have their own progress
// deadline anyway.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.SetDeadline(t) }

// SetWriteDeadline is ignored: every Write sets its own progress deadline.
func (c *Conn) SetWriteDeadline(time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errLocked()
}

func (c *Conn) errLocked() error {
	if c.cause != nil {
		return c.cause
	}
	return nil
}

// Read reads from the raw connection within the current read deadline and
// the reply budget.
func (c *Conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if err := c.errLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	room := c.opts.ReplyLimit - c.replyBytes
	limit := c.readLimit
	c.mu.Unlock()
	if room <= 0 {
		_ = c.raw.Close()
		return 0, ErrReplyTooLarge
	}
	if int64(len(b)) > room {
		b = b[:room+1] // one byte more tells an overrun from an exact fit
	}
	n, err := c.raw.Read(b)
	for n == 0 && limit == LimitSend && errors.Is(err, os.ErrDeadlineExceeded) && c.drained() {
		n, err = c.raw.Read(b)
	}
	c.mu.Lock()
	c.replyBytes += int64(n)
	over := c.replyBytes > c.opts.ReplyLimit
	c.mu.Unlock()
	if over {
		_ = c.raw.Close()
		return n, ErrReplyTooLarge
	}
	err = c.mapErr(err, limit)
	if te, ok := err.(*TimeoutError); ok && te.Limit == LimitSend && unsent(c.raw) > 0 {
		te.Stalled = true
	}
	return n, err
}

// drained reports whether the server has taken more of the bytes the
// client sent since the reply wait started: a server still reading a large
// message before it replies is making progress, so the wait is extended by
// another SendTimeout.
func (c *Conn) drained() bool {
	q := unsent(c.raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != nil || q < 0 || q >= c.queued || c.readLimit != LimitSend {
		return false
	}
	c.queued = q
	c.applyLocked(true)
	return c.readLimit == LimitSend
}

// Write writes b in chunks, each with a progress deadline of
// now+SendTimeout capped by the phase and context deadlines.
func (c *Conn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		chunk := b[written:]
		if len(chunk) > writeChunk {
			chunk = chunk[:writeChunk]
		}
		c.mu.Lock()
		if err := c.errLocked(); err != nil {
			c.mu.Unlock()
			return written, err
		}
		t, limit := c.deadlineLocked(true)
		if limit == LimitSend {
			if !c.slide(c.wdl, t, limit) {
				c.wdl = t.Add(c.opts.SendTimeout / 8)
				_ = c.raw.SetWriteDeadline(c.wdl)
			}
		} else if !c.wdl.Equal(t) {
			c.wdl = t
			_ = c.raw.SetWriteDeadline(t)
		}
		c.written += int64(len(chunk))
		c.mu.Unlock()
		n, err := c.raw.Write(chunk)
		written += n
		if err != nil {
			err = c.mapErr(err, limit)
			if te, ok := err.(*TimeoutError); ok {
				te.Stalled = true
			}
			c.mu.Lock()
			if c.writeErr == nil {
				c.writeErr = err
			}
			c.mu.Unlock()
			return written, err
		}
	}
	return written, nil
}

// WriteErr returns the first error a Write returned, or nil: when nil after
// a failed exchange, every byte the client wrote reached the kernel, so the
// failure happened while waiting for the server.
func (c *Conn) WriteErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeErr
}

// mapErr turns the errors of a failed context or of an expired deadline
// into the context's cause or a *TimeoutError naming the limit.
func (c *Conn) mapErr(err error, limit Limit) error {
	if err == nil {
		return nil
	}
	c.mu.Lock()
	cause := c.cause
	c.mu.Unlock()
	if cause != nil {
		return cause
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && limit != 0 {
		return &TimeoutError{Limit: limit, Err: err}
	}
	return err
}

// Close closes the raw connection.
func (c *Conn) Close() error {
	return c.raw.Close()
}

// LocalAddr returns the raw connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.raw.LocalAddr() }

// RemoteAddr returns the raw connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }
