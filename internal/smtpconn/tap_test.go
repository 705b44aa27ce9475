package smtpconn

import (
	"bufio"
	"errors"
	"io"
	"net/textproto"
	"strings"
	"testing"
)

// TestTapWholeLines: a line cut by the end of the connection never reaches
// the reader above as a complete line.
func TestTapWholeLines(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	tap := &Tap{Conn: raw}
	r := textproto.NewReader(bufio.NewReader(tap))
	io.WriteString(srv, "250-first\r\n250 second\r\n451 4.3.0 tempor")
	srv.Close()
	code, msg, err := r.ReadResponse(250)
	if err != nil || code != 250 || msg != "first\nsecond" {
		t.Fatalf("ReadResponse = %d %q %v, want the whole 250 reply", code, msg, err)
	}
	if code, msg, err := r.ReadResponse(250); err == nil || code != 0 {
		t.Errorf("partial line read as a reply: %d %q %v", code, msg, err)
	}
}

func TestTapLongLinePassedOn(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	tap := &Tap{Conn: raw}
	go func() { io.WriteString(srv, strings.Repeat("x", maxHeld+10)) }()
	b := make([]byte, 128<<10)
	n := 0
	for n < maxHeld {
		m, err := tap.Read(b[n:])
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", n, err)
		}
		n += m
	}
	if n < maxHeld {
		t.Errorf("read %d bytes of an endless line, want at least %d passed on", n, maxHeld)
	}
}

func TestTapGreetingNotSMTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ greeting, want string }{
		{"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH-2.0-OpenSSH_9.2p1"},
		{"\x16\x03\x01\x00", "?"},
		{"* OK IMAP4rev1 ready\r\n", "* OK IMAP4rev1 ready"},
	} {
		raw, srv := pair(t)
		tap := &Tap{Conn: raw, Greeting: true}
		io.WriteString(srv, tc.greeting)
		_, err := tap.Read(make([]byte, 100))
		var ns *NotSMTPError
		if !errors.As(err, &ns) || !strings.HasPrefix(ns.Line, tc.want) {
			t.Errorf("greeting %q: Read = %v, want a NotSMTPError starting %q", tc.greeting, err, tc.want)
		}
	}
	raw, srv := pair(t)
	tap := &Tap{Conn: raw, Greeting: true}
	io.WriteString(srv, "220 mx ESMTP\r\n")
	b := make([]byte, 100)
	if n, err := tap.Read(b); err != nil || string(b[:n]) != "220 mx ESMTP\r\n" {
		t.Errorf("SMTP greeting read as %q, %v", b[:n], err)
	}
	if tap.Buffered() != 0 {
		t.Errorf("Buffered() = %d after a whole line, want 0", tap.Buffered())
	}
}

// TestTapAbortMidExchange: in the middle of a SASL exchange (after a 334)
// the abort goes to the server.
func TestTapAbortMidExchange(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	tap := &Tap{Conn: raw, AnswerAbort: true}
	io.WriteString(srv, "334 VXNlcm5hbWU6\r\n")
	b := make([]byte, 100)
	if _, err := tap.Read(b); err != nil {
		t.Fatal(err)
	}
	if _, err := tap.Write([]byte("*\r\n")); err != nil {
		t.Fatal(err)
	}
	n, _ := srv.Read(b)
	if string(b[:n]) != "*\r\n" {
		t.Errorf("server read %q, want the abort", b[:n])
	}
}
