package emailconn_test

// Issue 17 against go-smtp's server, which offers PIPELINING and CHUNKING:
// the same message arrives byte for byte whichever way it went, and a
// streamed 100 MB attachment goes in BDAT chunks with flat memory.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
)

func TestIssue17_GoSMTPServerChunkingOnAndOff(t *testing.T) {
	t.Parallel()
	g := startGoSMTP(t, false, nil)
	text := "Line one.\n.\n..two dots\n.\r\nA line with only a dot is above.\n"
	date := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	var want []byte
	for _, m := range []struct {
		name                 string
		noPipelining, noBDAT bool
		attachment           bool
	}{
		{"pipelining+chunking", false, false, false},
		{"pipelining", false, true, false},
		{"lockstep", true, false, false},
		{"pipelining+chunking/attachment", false, false, true},
		{"pipelining/attachment", false, true, true},
		{"lockstep/attachment", true, false, true},
	} {
		c := goSMTPConn(t, g, "starttls")
		c.DisablePipelining, c.DisableChunking = m.noPipelining, m.noBDAT
		s := mustSender(t, c, nil)
		msg := &emailconn.Message{To: []string{"a@example.com", "b@example.com"}, Subject: "dots", Text: text,
			Date: date, MessageID: "issue17.dots@example.com"}
		if m.attachment {
			msg.MessageID = "issue17.attachment@example.com"
			msg.Attachments = []emailconn.Attachment{{Filename: "dots.txt", ContentType: "text/plain",
				Content: strings.NewReader(strings.Repeat(".\r\n..\n", 300000))}} // 2 MB: two chunks and more
		}
		if _, err := s.Send(context.Background(), msg); err != nil {
			t.Fatalf("%s: Send = %v", m.name, err)
		}
		msgs := g.messages()
		got := msgs[len(msgs)-1].data
		if strings.HasSuffix(m.name, "chunking") || m.name == "pipelining+chunking/attachment" {
			want = nil // the first of a kind sets what the others must equal
		}
		if want == nil {
			want = got
			d := decode(t, got)
			if wantText := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n"); d.text != wantText {
				t.Errorf("%s: text = %q, want %q", m.name, d.text, wantText)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the message differs from the one sent with BDAT (%d bytes, want %d)", m.name, len(got), len(want))
		}
	}
}

func TestIssue17_GoSMTPServerRefusesBDAT(t *testing.T) {
	t.Parallel()
	g := startGoSMTP(t, false, func(s *smtp.Server) { s.MaxMessageBytes = 4096 })
	c := goSMTPConn(t, g, "starttls")
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	// A streamed attachment of unknown size passes the SIZE check; the
	// server refuses its first chunk, and the last is never sent.
	msg := basicMessage()
	msg.Attachments = []emailconn.Attachment{{Filename: "x.bin", Content: io.LimitReader(zeros{}, 1<<20)}}
	_, err := s.Send(context.Background(), msg)
	var e *emailconn.Error
	var se *emailconn.SMTPError
	if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &e) || e.Stage != emailconn.StageData || !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("Send = %v, want the 552 refusal at data", err)
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatalf("next Send = %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// discardBackend is go-smtp's server with a backend that counts the
// message's bytes and keeps none.
type discardBackend struct{ n chan int64 }

func (b discardBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return b, nil }
func (discardBackend) Mail(string, *smtp.MailOptions) error          { return nil }
func (discardBackend) Rcpt(string, *smtp.RcptOptions) error          { return nil }
func (b discardBackend) Data(r io.Reader) error {
	n, err := io.Copy(io.Discard, r)
	b.n <- n
	return err
}
func (discardBackend) Reset()        {}
func (discardBackend) Logout() error { return nil }

// TestIssue17_StreamedAttachmentFlatMemory sends a 100 MB attachment from
// a reader in BDAT chunks: what the process allocates for it is a small
// fraction of its size (one chunk, the encoders' buffers, the server's),
// not the message.
func TestIssue17_StreamedAttachmentFlatMemory(t *testing.T) {
	if testing.Short() || slowdown > 1 {
		t.Skip("100 MB through loopback; not under -short or the race detector")
	}
	b := discardBackend{n: make(chan int64, 2)}
	srv := smtp.NewServer(b)
	srv.Domain, srv.MaxMessageBytes, srv.AllowInsecureAuth = "localhost", 1<<30, true
	g := &goSMTPServer{Server: srv}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })

	c := emailconn.Connection{Name: "flat", MailServer: g.addr, TLSMode: "none", From: "engine@example.com"}
	s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	send := func(size int64) uint64 {
		msg := basicMessage()
		msg.Attachments = []emailconn.Attachment{{Filename: "big.bin", Content: io.LimitReader(zeros{}, size)}}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := s.Send(context.Background(), msg); err != nil {
			t.Fatalf("Send = %v", err)
		}
		runtime.ReadMemStats(&after)
		if n := <-b.n; n < size {
			t.Fatalf("server got %d bytes, want more than %d", n, size)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	send(1 << 20) // the session and its buffers
	const size = 100 << 20
	alloc := send(size)
	t.Logf("allocated %.1f MB to send a %d MB attachment (%.3f bytes per byte)", float64(alloc)/1e6, size>>20, float64(alloc)/size)
	if alloc > size/10 {
		t.Errorf("allocated %d bytes for a %d-byte attachment: the message is held in memory", alloc, size)
	}
}

func TestIssue17_TestConnectionReportsPipelining(t *testing.T) {
	t.Parallel()
	g := startGoSMTP(t, false, nil)
	for _, tc := range []struct {
		name                     string
		noPipelining, noChunking bool
		restricted               bool
		pipeUsed, chunkUsed      bool
	}{
		{"both used", false, false, false, true, true},
		{"chunking off", false, true, false, true, false},
		{"pipelining off", true, false, false, false, false},
		{"restricted", false, false, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goSMTPConn(t, g, "starttls")
			c.DisablePipelining, c.DisableChunking = tc.noPipelining, tc.noChunking
			rep := runTest(c, &emailconn.TestOptions{Restricted: tc.restricted})
			if !rep.OK {
				t.Fatalf("report: %s", rep.Sentence)
			}
			sv := rep.Server
			if !sv.Pipelining || !sv.Chunking || sv.PipeliningUsed != tc.pipeUsed || sv.ChunkingUsed != tc.chunkUsed {
				t.Errorf("server = pipelining %v (used %v), chunking %v (used %v); want true (%v), true (%v)",
					sv.Pipelining, sv.PipeliningUsed, sv.Chunking, sv.ChunkingUsed, tc.pipeUsed, tc.chunkUsed)
			}
			notProven := strings.Join(rep.NotProven, "\n")
			if strings.Contains(notProven, "PIPELINING") != tc.pipeUsed || strings.Contains(notProven, "disableChunking") != tc.chunkUsed {
				t.Errorf("notProven = %q", rep.NotProven)
			}
			var j map[string]any
			if err := json.Unmarshal(reportJSON(rep), &j); err != nil {
				t.Fatal(err)
			}
			server := j["server"].(map[string]any)
			if got := fmt.Sprint(server["pipelining"], server["pipeliningUsed"], server["chunking"], server["chunkingUsed"]); got != fmt.Sprint(true, tc.pipeUsed, true, tc.chunkUsed) {
				t.Errorf("JSON server = %s", got)
			}
		})
	}
}
