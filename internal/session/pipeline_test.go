package session

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func openPlain(t *testing.T, srv *smtptest.Server) *Session {
	t.Helper()
	s, err := Open(context.Background(), config(srv, ModeNone, nil))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(s.Quit)
	return s
}

func TestIssue17_FlightRepliesInOrder(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{RcptHook: func(to string) *smtp.SMTPError {
		if strings.HasPrefix(to, "no") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}})
	s := openPlain(t, srv)
	f := s.Flight()
	f.Command("MAIL FROM:<a@example.com>")
	f.Command("RCPT TO:<", "b@example.com", ">")
	f.Command("RCPT TO:<no@example.com>")
	f.Command("RSET")
	if err := f.Send(); err != nil {
		t.Fatal(err)
	}
	want := []int{250, 250, 550, 250}
	for i, w := range want {
		code, text, err := s.Reply()
		var se *smtp.SMTPError
		switch {
		case w >= 400 && (!errors.As(err, &se) || se.Code != w || se.EnhancedCode != smtp.EnhancedCode{5, 1, 1} || se.Message != "no such user"):
			t.Errorf("reply %d = %d %q %v, want a %d *smtp.SMTPError", i, code, text, err, w)
		case w < 400 && (err != nil || code != w):
			t.Errorf("reply %d = %d %q %v, want %d", i, code, text, err, w)
		}
	}
	if !s.Synced() {
		t.Error("not in step after every reply was read")
	}
	// go-smtp carries on on the same session.
	if err := s.Client.Noop(); err != nil {
		t.Errorf("go-smtp after a flight: %v", err)
	}
}

func TestIssue17_ChunkWriter(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true})
	s := openPlain(t, srv)
	for _, size := range []int{0, 5, ChunkSize, 2*ChunkSize + 12345} {
		f := s.Flight()
		f.Command("MAIL FROM:<a@example.com>")
		f.Command("RCPT TO:<b@example.com>")
		if err := f.Send(); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, _, err := s.Reply(); err != nil {
				t.Fatal(err)
			}
		}
		msg := bytes.Repeat([]byte("x.\r\n"), size/4+1)[:size]
		w := s.Chunks()
		for p := msg; len(p) > 0; { // odd-sized writes
			n := min(len(p), 70001)
			if _, err := w.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, text, err := s.Reply(); err != nil || !strings.Contains(text, "queued") {
			t.Fatalf("LAST reply = %q, %v", text, err)
		}
		msgs := srv.Messages()
		m := msgs[len(msgs)-1]
		if !bytes.Equal(m.Data, msg) || m.Chunks != max(1, (size+ChunkSize-1)/ChunkSize) {
			t.Errorf("size %d: got %d bytes in %d chunks", size, len(m.Data), m.Chunks)
		}
	}
	if cap(s.chunk) > bdatHeader+ChunkSize {
		t.Errorf("chunk buffer grew to %d", cap(s.chunk))
	}
}

func TestIssue17_ChunkWriterStopsAtARefusal(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{EnableCHUNKING: true, MaxMessageBytes: ChunkSize + 10})
	s := openPlain(t, srv)
	f := s.Flight()
	f.Command("MAIL FROM:<a@example.com>")
	f.Command("RCPT TO:<b@example.com>")
	if err := f.Send(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := s.Reply(); err != nil {
			t.Fatal(err)
		}
	}
	w := s.Chunks()
	big := make([]byte, 4*ChunkSize)
	_, err := w.Write(big)
	if err == nil {
		err = w.Close()
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 || !errors.Is(w.Err(), err) {
		t.Fatalf("Write/Close = %v, want the 552", err)
	}
	if !s.Synced() {
		t.Error("not in step after the refusal")
	}
	if len(srv.Messages()) != 0 {
		t.Error("a message was accepted")
	}
	tr := strings.Join(srv.Transcript(), "\n")
	if strings.Contains(tr, "LAST") {
		t.Errorf("the last chunk was sent after a refusal:\n%s", tr)
	}
}
