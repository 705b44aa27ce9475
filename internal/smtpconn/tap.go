package smtpconn

import (
	"errors"
	"net"
)

// ErrAbortSuppressed is returned for the SASL abort ("*") a Tap refuses.
var ErrAbortSuppressed = errors.New("sasl abort not sent")

// A Tap is a net.Conn placed above TLS, where the session is plaintext. It
// serves Prefix before reading from the connection — a synthetic greeting
// when go-smtp takes over a session whose greeting was already read — and
// reports the bytes each side sent.
type Tap struct {
	net.Conn
	// Prefix is returned by Read before any byte of Conn.
	Prefix []byte
	// OnClient and OnServer, when set, receive the bytes the client wrote
	// and the bytes read from the server (Prefix excluded).
	OnClient, OnServer func(p []byte)
	// RefuseAbort makes a write of exactly "*\r\n" fail without reaching
	// the server. go-smtp answers every failed AUTH with that SASL abort and
	// then waits for a reply the server may never send; the session is
	// closed after a failed AUTH anyway.
	RefuseAbort bool
}

// Read returns Prefix first, then reads from the connection.
func (t *Tap) Read(b []byte) (int, error) {
	if len(t.Prefix) > 0 {
		n := copy(b, t.Prefix)
		t.Prefix = t.Prefix[n:]
		return n, nil
	}
	n, err := t.Conn.Read(b)
	if n > 0 && t.OnServer != nil {
		t.OnServer(b[:n])
	}
	return n, err
}

// Write writes to the connection and reports what was written.
func (t *Tap) Write(b []byte) (int, error) {
	if t.RefuseAbort && string(b) == "*\r\n" {
		return 0, ErrAbortSuppressed
	}
	n, err := t.Conn.Write(b)
	if n > 0 && t.OnClient != nil {
		t.OnClient(b[:n])
	}
	return n, err
}
