package emailconn

import (
	"errors"
	"strings"
	"testing"
)

// TestIssue10_26_HeaderErrorNamesKey checks that a problem with a custom
// header names it by its key (Message.Headers is a map), and that a
// Subject with a 1,200-octet word is sent, not refused.
func TestIssue10_26_HeaderErrorNamesKey(t *testing.T) {
	t.Parallel()
	s, err := NewSender(Connection{MailServer: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t",
		Headers: map[string]string{"A-First": "ok", "X-Foo": "a\r\nBcc: c@example.com"}}
	_, err = s.prepare(msg, "", nil)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != `Headers["X-Foo"]` || !errors.Is(err, ErrInvalid) {
		t.Fatalf("prepare = %v, want a *FieldError for Headers[\"X-Foo\"]", err)
	}
	if want := `emailconn: Headers["X-Foo"]: value contains CR or LF`; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	msg = &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: strings.Repeat("T0k3n", 240), Text: "t"}
	if _, err := s.prepare(msg, "", nil); err != nil {
		t.Errorf("prepare with a 1,200-octet Subject word = %v, want nil", err)
	}
}

// TestIssue10_10_ContentLanguage checks that a header the composer does
// not write, such as Content-Language, may be set.
func TestIssue10_10_ContentLanguage(t *testing.T) {
	t.Parallel()
	s, err := NewSender(Connection{MailServer: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	msg := &Message{From: "a@example.com", To: []string{"b@example.com"}, Subject: "s", Text: "t",
		Headers: map[string]string{"Content-Language": "de-CH"}}
	pr, err := s.prepare(msg, "", nil)
	if err != nil {
		t.Fatalf("prepare = %v, want nil", err)
	}
	if !strings.Contains(string(pr.body), "\r\nContent-Language: de-CH\r\n") {
		t.Errorf("Content-Language missing from\n%s", pr.body)
	}
	msg.Headers = map[string]string{"Content-Type": "text/html"}
	if _, err := s.prepare(msg, "", nil); err == nil ||
		err.Error() != `emailconn: Headers["Content-Type"]: cannot be set: the composer writes the Content-Type field itself, from the message's text, HTML and attachments` {
		t.Errorf("prepare with Content-Type = %v", err)
	}
}
