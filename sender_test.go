package emailconn_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestSendModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		srv    smtptest.Mode
		mode   string
		mechs  []string
		tlsVer bool
	}{
		{"plain", smtptest.Plain, "none", nil, false},
		{"starttls plain auth", smtptest.StartTLS, "starttls", []string{"PLAIN", "LOGIN"}, true},
		{"starttls login auth", smtptest.StartTLS, "starttls", []string{"LOGIN"}, true},
		{"implicit", smtptest.Implicit, "implicit", []string{"PLAIN"}, true},
		{"opportunistic with starttls", smtptest.StartTLS, "opportunistic", []string{"PLAIN"}, true},
		{"opportunistic without", smtptest.Plain, "opportunistic", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := smtptest.Options{TLS: tt.srv}
			if tt.mechs != nil {
				opts.Users = map[string]string{"alice": "s3cret"}
				opts.Mechanisms = tt.mechs
				opts.RequireAuth = true
			}
			srv := smtptest.NewServer(t, opts)
			c := connFor(t, srv, tt.mode)
			if tt.mechs != nil {
				c.Username, c.Password = "alice", "s3cret"
			}
			s := mustSender(t, c, nil)
			rc, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "Workunit 42 failed", Text: "hello"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].From != "engine@example.com" || msgs[0].To[0] != "ops@example.com" {
				t.Fatalf("server got %+v", msgs)
			}
			if !strings.Contains(string(msgs[0].Data), "Subject: Workunit 42 failed") {
				t.Errorf("message lacks the subject:\n%s", msgs[0].Data)
			}
			if (rc.TLSVersion != "") != tt.tlsVer || msgs[0].TLS != tt.tlsVer {
				t.Errorf("TLS = %q (server %v), want TLS %v", rc.TLSVersion, msgs[0].TLS, tt.tlsVer)
			}
			if tt.mechs != nil && rc.Mechanism != tt.mechs[0] {
				t.Errorf("Mechanism = %q, want %q", rc.Mechanism, tt.mechs[0])
			}
			if rc.MessageID == "" || rc.Attempts != 1 {
				t.Errorf("receipt %+v", rc)
			}
		})
	}
}

func TestStartTLSRequiredButNotOffered(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.Plain, Users: map[string]string{"alice": "pw"}})
	c := connFor(t, srv, "starttls")
	c.Username, c.Password = "alice", "pw"
	s := mustSender(t, c, nil)
	_, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
	if !errors.Is(err, emailconn.ErrTLSUnavailable) {
		t.Fatalf("Send = %v, want ErrTLSUnavailable", err)
	}
	for _, l := range srv.Transcript() {
		if strings.HasPrefix(l, "AUTH") || strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "DATA") {
			t.Errorf("transcript has %q after STARTTLS failed", l)
		}
	}
	t.Log(err)
}

func TestZeroSender(t *testing.T) {
	t.Parallel()
	var s emailconn.Sender
	if _, err := s.Send(context.Background(), basicMessage()); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("zero Sender Send = %v, want ErrInvalid", err)
	}
	if _, err := s.SendRaw(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader("x")); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("zero Sender SendRaw = %v", err)
	}
	if _, err := s.Render(io.Discard, basicMessage()); !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("zero Sender Render = %v, want ErrInvalid", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("zero Sender Close = %v", err)
	}
}
