package emailconn_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestRouteSendUsesLayers(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	grid := smtptest.NewServer(t, smtptest.Options{})
	r, err := emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{{Name: "alerts", MailServer: srv.Addr(), From: "alerts@example.com", To: []string{"ops@example.com"}, ActionsBaseURL: "https://approvals.example.com"}},
		Grid:        &emailconn.Connection{MailServer: grid.Addr(), From: "engine@example.com", To: []string{"grid-ops@example.com"}},
		Processes:   map[string]string{"Payroll": "alerts"},
	}, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	send := func(process string, node ...string) {
		t.Helper()
		rt, err := r.Resolve(process, node...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.Send(context.Background(), &emailconn.Message{Subject: "s", Text: "approve: http://engine.internal:8080/a?x=1"}); err != nil {
			t.Fatal(err)
		}
	}
	send("Payroll")
	send("Payroll", "approver@example.com")
	send("Other")
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].From != "alerts@example.com" || msgs[0].To[0] != "ops@example.com" || msgs[1].To[0] != "approver@example.com" {
		t.Fatalf("connection server got %+v", msgs)
	}
	if !strings.Contains(string(msgs[0].Data), "https://approvals.example.com/a?x=3D1") {
		t.Errorf("action link not rewritten:\n%s", msgs[0].Data)
	}
	gm := grid.Messages()
	if len(gm) != 1 || gm[0].From != "engine@example.com" || gm[0].To[0] != "grid-ops@example.com" {
		t.Fatalf("grid server got %+v", gm)
	}
	if strings.Contains(string(gm[0].Data), "approvals.example.com") {
		t.Errorf("the grid route rewrote an action link with a connection's base URL")
	}
}

func TestReplaceKeepsUnchangedSenders(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	other := smtptest.NewServer(t, smtptest.Options{})
	cfg := emailconn.Config{
		Connections: []emailconn.Connection{{Name: "a", MailServer: srv.Addr(), From: "a@example.com"}, {Name: "b", MailServer: srv.Addr(), From: "b@example.com"}},
		Processes:   map[string]string{"P": "a", "Q": "b"},
	}
	r, err := emailconn.NewRegistry(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before, _ := r.Resolve("Q")
	sa1, _ := r.Sender("a")
	sb1, _ := r.Sender("b")
	if _, err := before.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}}); err != nil {
		t.Fatal(err)
	}
	cfg.Connections[1].MailServer = other.Addr()
	if err := r.Replace(cfg); err != nil {
		t.Fatal(err)
	}
	sa2, _ := r.Sender("a")
	sb2, _ := r.Sender("b")
	if sa1 != sa2 {
		t.Error("an unchanged connection got a new Sender (its sessions were dropped)")
	}
	if sb1 == sb2 {
		t.Error("a changed connection kept its old Sender")
	}
	// A route held from before the change still sends with its configuration.
	if _, err := before.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}}); err != nil {
		t.Fatalf("a route resolved before Replace: %v", err)
	}
	after, _ := r.Resolve("Q")
	if _, err := after.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if len(srv.Messages()) != 2 || len(other.Messages()) != 1 {
		t.Errorf("messages: old server %d, new server %d; want 2 and 1", len(srv.Messages()), len(other.Messages()))
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := after.Send(context.Background(), &emailconn.Message{To: []string{"x@example.com"}}); !errors.Is(err, emailconn.ErrClosed) {
		t.Errorf("Send after Registry.Close = %v, want ErrClosed", err)
	}
	if err := r.Replace(cfg); !errors.Is(err, emailconn.ErrClosed) {
		t.Errorf("Replace after Close = %v, want ErrClosed", err)
	}
}

// TestIssue10_07_ActionOriginWhereNeeded checks that Options.ActionOrigin
// is only required where links must be rewritten: a message with a body sent
// through a connection with an Email Actions Base URL. Before, one such
// connection made NewRegistry fail for all of them.
func TestIssue10_07_ActionOriginWhereNeeded(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := connFor(t, srv, "none")
	withBase, plain := c, c
	withBase.Name, withBase.ActionsBaseURL = "approvals", "https://x.example"
	plain.Name = "plain"
	grid := c
	grid.Name = ""
	r, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{withBase, plain}, Grid: &grid, Processes: map[string]string{"P": "approvals"}}, allowCA(c, nil))
	if err != nil {
		t.Fatalf("NewRegistry without ActionOrigin = %v, want nil", err)
	}
	defer r.Close()
	msg := &emailconn.Message{To: []string{"ops@example.com"}, Subject: "s", Text: "see http://engine:8080/a"}
	for _, name := range []string{"plain", ""} {
		s, err := r.Sender(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(context.Background(), msg); err != nil {
			t.Errorf("Send through %q = %v, want nil", name, err)
		}
	}
	rt, err := r.Resolve("P")
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Send(context.Background(), msg)
	var fe *emailconn.FieldError
	if !errors.Is(err, emailconn.ErrInvalid) || !errors.As(err, &fe) || fe.Field != "Options.ActionOrigin" || !strings.Contains(err.Error(), `connection "approvals"`) {
		t.Errorf("Send with a body through a connection with a base URL = %v, want ErrInvalid naming Options.ActionOrigin", err)
	}
	// A message without a body has no links to rewrite.
	if _, err := rt.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "s",
		Attachments: []emailconn.Attachment{{Filename: "a.txt", Content: strings.NewReader("x")}}}); err != nil {
		t.Errorf("Send without a body = %v, want nil", err)
	}
	if n := len(srv.Messages()); n != 3 {
		t.Errorf("server got %d messages, want 3", n)
	}
	if _, err := emailconn.NewSender(withBase, allowCA(c, nil)); err != nil {
		t.Errorf("NewSender without ActionOrigin = %v, want nil", err)
	}
}

func TestSendLogs(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	var buf syncBuffer
	s := mustSender(t, connFor(t, srv, "none"), &emailconn.Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"email sent", "connection=test", "messageID=", "to=[ops@example.com]", "duration="} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "Workunit 42 failed") || strings.Contains(out, "smtp") && strings.Contains(out, "dir=") {
		t.Errorf("info log has message content or the transcript: %s", out)
	}
}
