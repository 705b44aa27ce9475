package smtptest

import (
	"fmt"
	"strings"
	"time"
)

// Point is where in a session a Fault fires: one of the named points below,
// or an SMTP command verb ("EHLO", "HELO", "STARTTLS", "AUTH", "MAIL",
// "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY"; matched
// case-insensitively against the verb the client sent), or AnyCommand.
//
// A fault at a command fires after the command line was read (and recorded in
// the transcript) and before the server handles it; at BDAT, once the chunk
// that follows the line was read too.
type Point string

const (
	// Greeting is the server's 220 greeting, after the TCP accept (and after
	// the TLS handshake in Implicit mode).
	Greeting Point = "greeting"
	// AnyCommand matches every command line, whatever its verb.
	AnyCommand Point = "*"
	// AuthResult is the final reply of an AUTH exchange (235, or 535 for
	// rejected credentials), after all SASL challenges and responses.
	// A Reply here replaces that final reply whether or not the credentials
	// were right; the session counts as authenticated only when the reply
	// actually sent is a 2xx.
	AuthResult Point = "auth-result"
	// DataBody is the message body, after the server sent 354, or the
	// chunks of a message sent with BDAT (Bytes counting over its chunks;
	// only Stall, Drop and Reset apply there).
	DataBody Point = "data-body"
	// AfterDot is the reply to the final dot, after the whole body was
	// received, or to the LAST chunk of a message sent with BDAT.
	AfterDot Point = "after-dot"
	// AfterMessage is the first command, whatever its verb, after the server
	// accepted a message on this session.
	AfterMessage Point = "after-message"
	// Idle fires when the server has waited Fault.Delay for the next command
	// line: it writes Fault.Reply, if any, and closes the connection.
	Idle Point = "idle"
)

var verbs = map[string]bool{
	"EHLO": true, "HELO": true, "STARTTLS": true, "AUTH": true, "MAIL": true,
	"RCPT": true, "DATA": true, "RSET": true, "NOOP": true, "QUIT": true,
	"VRFY": true, "BDAT": true,
}

// Action is what a Fault does when it fires.
type Action int

const (
	// Proceed waits Fault.Delay, then sends Fault.Reply instead of the normal
	// reply (or, when Reply is empty, handles the point normally), then closes
	// the connection if Fault.Close is set. It is the zero value.
	Proceed Action = iota
	// Silent never replies: the server keeps reading (and recording) lines
	// until the client closes the connection or the Server is closed.
	// At Greeting this is a tarpit.
	Silent
	// Stall stops reading and writing and keeps the connection open until
	// the Server is closed, so the client's writes eventually block once the
	// socket buffers are full (a few MiB on Linux loopback; see
	// Options.ReadBuffer). At DataBody it first reads Fault.Bytes body
	// octets.
	Stall
	// Drop closes the connection (FIN) without replying. At DataBody it first
	// reads Fault.Bytes body octets, then closes at once, so a client still
	// uploading sees a reset; at AfterDot it is "the connection broke after
	// the final dot, delivery state unknown".
	Drop
	// Reset aborts the connection with a TCP RST (SO_LINGER 0, then close)
	// without replying. At DataBody it first reads Fault.Bytes body octets.
	Reset
	// Endless sends a multi-line reply that never ends ("220-xxx…" at
	// Greeting, "250-xxx…" elsewhere, or Fault.Reply's first line repeated)
	// until the client closes the connection or the Server is closed.
	Endless
	// LongLine sends, as the reply, one line of Fault.Bytes octets including
	// CRLF (5000 when Bytes is zero), starting with "220 " at Greeting and
	// "250 " elsewhere, then carries on (closing if Fault.Close is set).
	LongLine
	// SlowRead reads the body at DataBody Fault.Bytes octets (64 KiB when
	// zero) every Fault.Interval (100ms when zero), so the upload is slow but
	// keeps moving.
	SlowRead
	// StripStartTLS, at "EHLO", leaves STARTTLS out of the EHLO reply even in
	// StartTLS mode; a STARTTLS command later in that session is refused
	// with 502 5.5.1.
	StripStartTLS
	// Inject, at "STARTTLS", appends Fault.Reply (plaintext) to the
	// "220 2.0.0 Ready to start TLS" reply in the same write, before the
	// handshake. With Fault.Delay set, the injected bytes are written
	// separately, Delay after the 220 (a later TCP segment).
	Inject
)

// String returns the constant's name.
func (a Action) String() string {
	switch a {
	case Proceed:
		return "Proceed"
	case Silent:
		return "Silent"
	case Stall:
		return "Stall"
	case Drop:
		return "Drop"
	case Reset:
		return "Reset"
	case Endless:
		return "Endless"
	case LongLine:
		return "LongLine"
	case SlowRead:
		return "SlowRead"
	case StripStartTLS:
		return "StripStartTLS"
	case Inject:
		return "Inject"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Fault is one injected misbehaviour. A Server checks its Options.Faults in
// order at each point of a session; the first fault whose At, Session and
// Times match fires (and counts toward its Times).
//
// Examples:
//
//	{At: smtptest.Greeting, Delay: 2 * time.Second}        // slow greeting
//	{At: smtptest.Greeting, Action: smtptest.Silent}       // tarpit
//	{At: smtptest.Greeting, Reply: "421 4.3.2 Service not available", Close: true}
//	{At: "MAIL", Reply: "421 4.3.2 Shutting down", Close: true}
//	{At: "RCPT", Reply: "450 4.2.0 Greylisted", Times: 1}
//	{At: "EHLO", Action: smtptest.StripStartTLS}
//	{At: smtptest.DataBody, Action: smtptest.Reset, Bytes: 1 << 20}
//	{At: smtptest.AfterDot, Action: smtptest.Drop}         // delivery unknown
//	{At: smtptest.AfterMessage, Reply: "421 4.4.2 Idle", Close: true}
//	{At: smtptest.Idle, Delay: 200 * time.Millisecond}      // idle timeout
type Fault struct {
	// At is where the fault fires. It is required.
	At Point

	// Action is what the fault does. The zero value is Proceed.
	Action Action

	// Reply is sent verbatim instead of the normal reply (Proceed), is the
	// repeated line (Endless), the injected text (Inject) or the farewell
	// before closing (Idle). Lone "\n" line ends become CRLF and a final CRLF
	// is added when missing. Multi-line replies are written in one write.
	// Empty means the normal reply (Proceed) or none.
	Reply string

	// Close closes the connection after the reply (Reply, or the normal reply
	// when Reply is empty). False keeps the session going. After a non-2xx
	// Reply at Greeting without Close, the server answers QUIT with 221 and
	// everything else with 503 5.5.1, as RFC 5321 §3.1 asks.
	Close bool

	// Delay is a pause before the fault acts (before the reply, before
	// reading the body, before the greeting). For Idle it is the idle time
	// and is required; for Inject it separates the 220 from the injected
	// bytes. Zero means no pause. A Delay is cut short when the Server is
	// closed.
	Delay time.Duration

	// Bytes is the body octets (as sent, before dot-unstuffing) read before
	// Stall, Drop or Reset act at DataBody, the chunk size of SlowRead, or the
	// line length of LongLine. Zero means act at once, 64 KiB (SlowRead) or
	// 5000 (LongLine). A body that ends before Bytes octets is received
	// normally.
	Bytes int

	// Interval is the pause between SlowRead chunks. Zero means 100ms.
	Interval time.Duration

	// Session restricts the fault to the Nth accepted connection (1-based,
	// in accept order). Zero means every session.
	Session int

	// Times limits how often the fault fires, counted across all sessions.
	// Zero means every time.
	Times int
}

// point returns the normalised At: a known verb in upper case or a named
// point.
func (f *Fault) point() Point {
	if up := strings.ToUpper(string(f.At)); verbs[up] {
		return Point(up)
	}
	return f.At
}

func isCommandPoint(p Point) bool { return verbs[string(p)] || p == AnyCommand }

// validate reports a fault that cannot work as configured.
func (f *Fault) validate() error {
	p := f.point()
	switch p {
	case Greeting, AnyCommand, AuthResult, DataBody, AfterDot, AfterMessage, Idle:
	default:
		if !verbs[string(p)] {
			return fmt.Errorf("unknown point %q", f.At)
		}
	}
	if f.Session < 0 || f.Times < 0 || f.Bytes < 0 || f.Delay < 0 || f.Interval < 0 {
		return fmt.Errorf("at %q: negative Session, Times, Bytes, Delay or Interval", f.At)
	}
	replyPoint := p == Greeting || p == AuthResult || p == AfterDot || p == AfterMessage || isCommandPoint(p)
	if p == Idle {
		if f.Action != Proceed || f.Delay <= 0 {
			return fmt.Errorf("at %q: Idle needs Action Proceed and a positive Delay", f.At)
		}
		return nil
	}
	switch f.Action {
	case Proceed:
		if p == DataBody {
			if f.Reply != "" || f.Close || f.Delay == 0 {
				return fmt.Errorf("at %q: Proceed at DataBody takes only a Delay", f.At)
			}
			return nil
		}
		if f.Reply == "" && !f.Close && f.Delay == 0 {
			return fmt.Errorf("at %q: Proceed needs a Reply, Close or Delay", f.At)
		}
	case Silent:
		if !replyPoint {
			return fmt.Errorf("at %q: Silent needs a reply point (for a body, use AfterDot)", f.At)
		}
	case Stall, Drop, Reset:
		if !replyPoint && p != DataBody {
			return fmt.Errorf("at %q: %v is not possible here", f.At, f.Action)
		}
	case Endless, LongLine:
		if !replyPoint {
			return fmt.Errorf("at %q: %v needs a reply point", f.At, f.Action)
		}
	case SlowRead:
		if p != DataBody {
			return fmt.Errorf("at %q: SlowRead works only at DataBody", f.At)
		}
	case StripStartTLS:
		if p != "EHLO" {
			return fmt.Errorf("at %q: StripStartTLS works only at EHLO", f.At)
		}
	case Inject:
		if p != "STARTTLS" || f.Reply == "" {
			return fmt.Errorf("at %q: Inject works only at STARTTLS with a Reply", f.At)
		}
	default:
		return fmt.Errorf("at %q: unknown %v", f.At, f.Action)
	}
	return nil
}

// sendsSuccess reports whether the reply a fired fault replaced the normal
// one with is a 2xx (so a message counts as accepted, a session as
// authenticated).
func (f *Fault) sendsSuccess() bool {
	return (f.Action == Proceed && strings.HasPrefix(f.Reply, "2")) || f.Action == LongLine
}

// matches reports whether the fault is for point p (for a command, p is the
// upper-case verb and command is true).
func (f *Fault) matches(p Point, command bool) bool {
	fp := f.point()
	if command && fp == AnyCommand {
		return true
	}
	return fp == p
}

// wire turns a Fault.Reply into the bytes to send.
func wire(reply string) []byte {
	if reply == "" {
		return nil
	}
	var b strings.Builder
	for i := 0; i < len(reply); i++ {
		c := reply[i]
		if c == '\n' && (i == 0 || reply[i-1] != '\r') {
			b.WriteByte('\r')
		}
		b.WriteByte(c)
	}
	if !strings.HasSuffix(reply, "\n") {
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}
