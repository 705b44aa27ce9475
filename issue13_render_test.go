package emailconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// renderMsg is a notification with every kind of content; its Date and
// Message-ID are fixed, as a golden file needs.
func renderMsg() *emailconn.Message {
	return &emailconn.Message{
		Subject: "Workunit 42 — approval needed",
		Text:    "Approve: http://engine.internal:8080/actions/approve?wu=42\nbare\rCR and a " + strings.Repeat("long line ", 30),
		HTML:    `<a href="http://engine.internal:8080/actions/approve?wu=42">Approve</a>`,
		Headers: map[string]string{"X-Workunit": "42"},
		Attachments: []emailconn.Attachment{
			{Filename: "report.bin", Content: bytes.NewReader(bytes.Repeat([]byte{0, 1, 2, 0xff}, 100))},
			{Filename: "logo.png", ContentType: "image/png", Content: strings.NewReader("png"), Inline: true, ContentID: "logo@x"},
		},
		Date:      time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC),
		MessageID: "golden.42@example.com",
	}
}

// TestIssue13_2_RenderIsWhatIsSent: Render writes the very bytes the server
// receives for the same message, and leaves seekable attachments where
// they were so the message can be sent afterwards.
func TestIssue13_2_RenderIsWhatIsSent(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, "none")
	c.ActionsBaseURL = "https://approvals.example.com"
	c.To = []string{"ops@example.com"}
	s := mustSender(t, c, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})

	msg := renderMsg()
	var golden bytes.Buffer
	n, err := s.Render(&golden, msg)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if n != int64(golden.Len()) {
		t.Errorf("Render returned %d, wrote %d bytes", n, golden.Len())
	}
	for _, want := range []string{"To: <ops@example.com>", "Message-ID: <golden.42@example.com>", "https://approvals.example.com/actions/approve?wu=3D42", "X-Workunit: 42"} {
		if !strings.Contains(golden.String(), want) {
			t.Errorf("Render output lacks %q:\n%s", want, golden.String())
		}
	}
	// Twice gives the same bytes: the readers were put back, and the
	// boundaries derive from the Message-ID.
	var again bytes.Buffer
	if _, err := s.Render(&again, msg); err != nil || !bytes.Equal(again.Bytes(), golden.Bytes()) {
		t.Errorf("a second Render differs (err %v)", err)
	}

	if _, err := s.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send after Render: %v", err)
	}
	got := srv.Messages()[0].Data
	if !bytes.Equal(got, golden.Bytes()) {
		t.Errorf("the server received\n%s\nRender wrote\n%s", got, golden.Bytes())
	}

	// Without attachments (composed in advance), the same holds.
	plain := &emailconn.Message{Subject: "s", Text: "no final newline", Date: msg.Date, MessageID: "p@example.com"}
	var pb bytes.Buffer
	if _, err := s.Render(&pb, plain); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), plain); err != nil {
		t.Fatal(err)
	}
	if got := srv.Messages()[1].Data; !bytes.Equal(got, pb.Bytes()) {
		t.Errorf("plain message: the server received\n%q\nRender wrote\n%q", got, pb.Bytes())
	}
}

// TestIssue13_2_RouteRender: a route renders with its own recipients, as
// Route.Send sends.
func TestIssue13_2_RouteRender(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, "none")
	c.To = []string{"ops@example.com"}
	reg, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}, Processes: map[string]string{"Payroll": "test"}}, allowCA(c, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	node := []string{"approver@example.com"}
	rt, _ := reg.Resolve("Payroll", node...)
	msg := &emailconn.Message{Subject: "s", Text: "t", Date: time.Unix(0, 0), MessageID: "r@example.com"}
	var b bytes.Buffer
	if _, err := rt.Render(&b, msg); err != nil {
		t.Fatalf("Route.Render: %v", err)
	}
	if _, err := rt.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if !bytes.Equal(m.Data, b.Bytes()) || !strings.Contains(b.String(), "To: <approver@example.com>") {
		t.Errorf("Route.Render wrote\n%s\nthe server received\n%s", b.Bytes(), m.Data)
	}
	if _, err := (emailconn.Route{Process: "x"}).Render(io.Discard, msg); !errors.Is(err, emailconn.ErrNotFound) {
		t.Errorf("zero Route: Render = %v, want ErrNotFound", err)
	}
}

func TestIssue13_2_RenderErrors(t *testing.T) {
	t.Parallel()
	s := mustSender(t, emailconn.Connection{MailServer: "smtp.example.com", From: "a@example.com"}, nil)
	if _, err := s.Render(io.Discard, &emailconn.Message{Subject: "x\r\nBcc: evil@example.com", To: []string{"b@example.com"}}); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("Render of a header injection = %v, want ErrInvalid", err)
	}
	if _, err := s.Render(io.Discard, nil); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("Render(nil) = %v, want ErrInvalid", err)
	}
	if _, err := new(emailconn.Sender).Render(io.Discard, &emailconn.Message{}); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("zero Sender: Render = %v, want ErrInvalid", err)
	}
	werr := errors.New("disk full")
	if _, err := s.Render(failWriter{werr}, &emailconn.Message{To: []string{"b@example.com"}, Text: "x"}); err != werr {
		t.Errorf("Render to a failing writer = %v, want the writer's error as it is", err)
	}
	rerr := errors.New("read failed")
	_, err := s.Render(io.Discard, &emailconn.Message{To: []string{"b@example.com"}, Text: "x",
		Attachments: []emailconn.Attachment{{Filename: "a", Content: iotest.ErrReader(rerr)}}})
	if !errors.Is(err, rerr) || !strings.HasPrefix(err.Error(), "emailconn: render: ") {
		t.Errorf("Render with a failing attachment = %v, want it wrapped", err)
	}
	s.Close()
	if _, err := s.Render(io.Discard, &emailconn.Message{To: []string{"b@example.com"}, Text: "x"}); err != nil {
		t.Errorf("Render on a closed Sender = %v, want it to work", err)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }
