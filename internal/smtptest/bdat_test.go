package smtptest

import (
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

func TestIssue17_BDAT(t *testing.T) {
	s := NewServer(t, Options{EnableCHUNKING: true, RcptHook: func(to string) *smtp.SMTPError {
		if strings.HasPrefix(to, "no") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	r := dialRaw(t, s.Addr())
	r.expect("220")
	if lines := r.cmd("EHLO client.test", "250"); !strings.Contains(strings.Join(lines, "\n"), "CHUNKING") {
		t.Fatalf("EHLO = %q, want CHUNKING", lines)
	}
	// A message in two chunks; the first looks like commands and a dot.
	r.send("MAIL FROM:<a@example.com>")
	r.send("RCPT TO:<b@example.com>")
	io.WriteString(r.conn, "BDAT 13\r\n.\r\nQUIT\r\nxx\r\nBDAT 3 LAST\r\nend")
	r.expect("250")
	r.expect("250")
	r.expect("250 2.0.0 13 bytes")
	r.expect("250 2.0.0 OK")
	msgs := s.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != ".\r\nQUIT\r\nxx\r\nend" || msgs[0].Chunks != 2 {
		t.Fatalf("messages = %+v", msgs)
	}
	// Every recipient refused: the chunk is read and refused.
	r.send("MAIL FROM:<a@example.com>")
	r.send("RCPT TO:<no@example.com>")
	io.WriteString(r.conn, "BDAT 6 LAST\r\nRSET\r\n")
	r.expect("250")
	r.expect("550")
	r.expect("554 5.5.1")
	r.cmd("RSET", "250")
	// Before MAIL: 503, the chunk still read.
	io.WriteString(r.conn, "BDAT 6 LAST\r\nNOOP\r\n")
	r.expect("503")
	r.cmd("NOOP", "250")
	if got := len(s.Messages()); got != 1 {
		t.Errorf("messages = %d, want 1", got)
	}
	tr := strings.Join(s.Transcript(), "\n")
	if !strings.Contains(tr, "<CHUNK 13 bytes>") || strings.Contains(tr, "QUIT\nxx") {
		t.Errorf("transcript = %q", tr)
	}
}

func TestIssue17_BDATFaults(t *testing.T) {
	t.Run("without CHUNKING", func(t *testing.T) {
		s := NewServer(t, Options{NoPipelining: true})
		r := dialRaw(t, s.Addr())
		r.expect("220")
		if lines := r.cmd("EHLO client.test", "250"); strings.Contains(strings.Join(lines, "\n"), "PIPELINING") {
			t.Fatalf("EHLO = %q, want no PIPELINING", lines)
		}
		r.cmd("BDAT 3 LAST", "502")
	})
	t.Run("refused chunk", func(t *testing.T) {
		s := NewServer(t, Options{EnableCHUNKING: true, Faults: []Fault{{At: "BDAT", Reply: "452 4.3.1 Out of memory", Times: 1}}})
		r := dialRaw(t, s.Addr())
		r.expect("220")
		r.cmd("EHLO client.test", "250")
		r.cmd("MAIL FROM:<a@example.com>", "250")
		r.cmd("RCPT TO:<b@example.com>", "250")
		io.WriteString(r.conn, "BDAT 3 LAST\r\nabc")
		r.expect("452")
		r.cmd("MAIL FROM:<a@example.com>", "250") // the transaction was reset
		<-s.Fired(0, 1)
	})
	t.Run("drop in the chunks", func(t *testing.T) {
		s := NewServer(t, Options{EnableCHUNKING: true, Faults: []Fault{{At: DataBody, Action: Drop, Bytes: 5}}})
		r := dialRaw(t, s.Addr())
		r.expect("220")
		r.cmd("EHLO client.test", "250")
		r.cmd("MAIL FROM:<a@example.com>", "250")
		r.cmd("RCPT TO:<b@example.com>", "250")
		io.WriteString(r.conn, "BDAT 3\r\nabc")
		r.expect("250")
		io.WriteString(r.conn, "BDAT 3 LAST\r\ndef")
		if _, err := r.reply(); err == nil {
			t.Fatal("a reply after the drop")
		}
		<-s.SessionClosed(1)
		if len(s.Messages()) != 0 {
			t.Error("a message was accepted")
		}
	})
	t.Run("drop after the last chunk", func(t *testing.T) {
		s := NewServer(t, Options{EnableCHUNKING: true, Faults: []Fault{{At: AfterDot, Action: Drop}}})
		r := dialRaw(t, s.Addr())
		r.expect("220")
		r.cmd("EHLO client.test", "250")
		r.cmd("MAIL FROM:<a@example.com>", "250")
		r.cmd("RCPT TO:<b@example.com>", "250")
		io.WriteString(r.conn, "BDAT 3 LAST\r\nabc")
		r.expectEOF()
	})
}
