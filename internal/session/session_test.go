package session

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"go.uber.org/goleak"

	"github.com/emailconn/emailconn/internal/smtptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// events records what Hooks hear.
type events struct {
	stages []string
	ext    []string
	tls    bool
	greet  string
	open   int // sessions opened and not closed
}

func (ev *events) hooks() *Hooks {
	return &Hooks{
		Stage: func(_ context.Context, stage string, _, _ time.Time, err error) {
			if err != nil {
				stage += "!"
			}
			ev.stages = append(ev.stages, stage)
		},
		Skip:       func(_ context.Context, stage, _ string) { ev.stages = append(ev.stages, stage+"-") },
		Extensions: func(_ context.Context, l []string) { ev.ext = l },
		TLS:        func(context.Context, *tls.ConnectionState) { ev.tls = true },
		Greeting:   func(_ context.Context, text string) { ev.greet = text },
		Opened:     func(context.Context) { ev.open++ },
		Closed:     func() { ev.open-- },
	}
}

func config(srv *smtptest.Server, mode Mode, h *Hooks) *Config {
	return &Config{
		Host: srv.Host(), Port: srv.Port(), Mode: mode, LocalName: "client.test",
		TLS:            &tls.Config{ServerName: srv.Host(), RootCAs: srv.CAPool(), MinVersion: tls.VersionTLS12},
		ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second,
		Dial: (&net.Dialer{}).DialContext, Hooks: h,
	}
}

func TestIssue12_SessionOpensThroughStages(t *testing.T) {
	tests := []struct {
		name  string
		srv   smtptest.Mode
		mode  Mode
		want  []string
		tlsOn bool
	}{
		{"starttls", smtptest.StartTLS, ModeStartTLS, []string{"resolve-", "connect", "greeting", "ehlo", "starttls"}, true},
		{"implicit", smtptest.Implicit, ModeImplicit, []string{"resolve-", "connect", "tls", "greeting", "ehlo"}, true},
		{"plain", smtptest.Plain, ModeNone, []string{"resolve-", "connect", "greeting", "ehlo"}, false},
		{"opportunistic without STARTTLS", smtptest.Plain, ModeOpportunistic, []string{"resolve-", "connect", "greeting", "ehlo", "starttls-"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{TLS: tt.srv})
			ev := &events{}
			s, err := Open(context.Background(), config(srv, tt.mode, ev.hooks()))
			if err != nil {
				t.Fatalf("Open = %v", err)
			}
			defer s.Quit()
			if !slices.Equal(ev.stages, tt.want) {
				t.Errorf("stages = %v, want %v", ev.stages, tt.want)
			}
			if (s.TLS != nil) != tt.tlsOn || ev.tls != tt.tlsOn {
				t.Errorf("TLS = %v (hook %v), want %v", s.TLS != nil, ev.tls, tt.tlsOn)
			}
			if len(s.Extensions()) == 0 || !slices.Equal(ev.ext, s.Extensions()) {
				t.Errorf("extensions = %v, hook saw %v", s.Extensions(), ev.ext)
			}
			if ev.greet == "" {
				t.Error("no greeting text")
			}
		})
	}
}

func TestIssue12_SessionRequiredSTARTTLSMissing(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	ev := &events{}
	_, err := Open(context.Background(), config(srv, ModeStartTLS, ev.hooks()))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageSTARTTLS || !errors.Is(err, ErrNoSTARTTLS) || !e.Usable {
		t.Fatalf("Open = %#v, want a usable ErrNoSTARTTLS at starttls", err)
	}
	if got := ev.stages[len(ev.stages)-1]; got != "starttls!" {
		t.Errorf("last stage %q, want starttls!", got)
	}
}

// TestIssue18_SessionOpenedClosedOnce: Opened hears of every session Open
// returns, Closed of its end once, however often it is closed; a session
// that failed to open is heard of by neither.
func TestIssue18_SessionOpenedClosedOnce(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	ev := &events{}
	s, err := Open(context.Background(), config(srv, ModeNone, ev.hooks()))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if ev.open != 1 {
		t.Fatalf("open = %d after Open, want 1", ev.open)
	}
	s.Quit()
	s.Close()
	if ev.open != 0 {
		t.Errorf("open = %d after Quit and Close, want 0", ev.open)
	}
	if _, err := Open(context.Background(), config(srv, ModeStartTLS, ev.hooks())); err == nil {
		t.Fatal("Open with STARTTLS against a plain server succeeded")
	}
	if ev.open != 0 {
		t.Errorf("open = %d after a failed Open, want 0", ev.open)
	}
}

func TestIssue12_SessionAuthScrubsEchoedSecret(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"u": "right-password"}})
	cfg := config(srv, ModeStartTLS, nil)
	var authErr error
	cfg.Auth = func(_ context.Context, s *Session) error {
		authErr = s.Auth("PLAIN", sasl.NewPlainClient("", "u", "wrong-password"), "wrong-password")
		return nil
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Quit()
	var se *smtp.SMTPError
	if !errors.As(authErr, &se) {
		t.Fatalf("Auth = %v, want a reply", authErr)
	}
	if got := s.Scrub("you said wrong-password"); strings.Contains(got, "wrong-password") {
		t.Errorf("Scrub left the password: %q", got)
	}
	if s.Mechanism != "" {
		t.Errorf("Mechanism = %q after a failed AUTH", s.Mechanism)
	}
}

func TestIssue12_ReadReplyEnhancedCode(t *testing.T) {
	tests := []struct {
		in   string
		code int
		enh  smtp.EnhancedCode
		msg  string
	}{
		{"454 4.7.0 TLS not available\r\n", 454, smtp.EnhancedCode{4, 7, 0}, "TLS not available"},
		{"454 TLS not available\r\n", 454, smtp.EnhancedCode{}, "TLS not available"},
		{"554-5.7.1 one\r\n554 5.7.1 two\r\n", 554, smtp.EnhancedCode{5, 7, 1}, "one\ntwo"},
	}
	for _, tt := range tests {
		err := readReply(bufio.NewReader(strings.NewReader(tt.in)), 220)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != tt.code || se.EnhancedCode != tt.enh || se.Message != tt.msg {
			t.Errorf("readReply(%q) = %#v, want %d %v %q", tt.in, err, tt.code, tt.enh, tt.msg)
		}
	}
	if got := ReplyText(550, [3]int{5, 1, 1}, "no such\nuser"); got != "550 5.1.1 no such user" {
		t.Errorf("ReplyText = %q", got)
	}
}
