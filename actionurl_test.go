package emailconn_test

import (
	"errors"
	"testing"

	"github.com/emailconn/emailconn"
)

func TestRewriteActionURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, link, want string
	}{
		{"https://approvals.example.com", "http://engine.internal:8080/actions/approve?wu=42&sig=abc#top",
			"https://approvals.example.com/actions/approve?wu=42&sig=abc#top"},
		{"HTTPS://Approvals.Example.com:8443/", "/actions/reject?wu=42", "https://approvals.example.com:8443/actions/reject?wu=42"},
		{"https://approvals.example.com", "https://evil.example/x%2F..%2F?a=&amp;b", "https://approvals.example.com/x%2F..%2F?a=&amp;b"},
		{"https://approvals.example.com", "http://engine?wu=42", "https://approvals.example.com/?wu=42"},
	}
	for _, tt := range tests {
		got, err := emailconn.RewriteActionURL(tt.base, tt.link)
		if err != nil || got != tt.want {
			t.Errorf("RewriteActionURL(%q, %q) = %q, %v, want %q", tt.base, tt.link, got, err, tt.want)
		}
	}
}

func TestRewriteActionURLRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base, link, want string
	}{
		{"https://approvals.example.com?", "/a", "emailconn: base: query is not allowed"},
		{"https://app.example.com@evil.example/", "/a", "emailconn: base: user info is not allowed"},
		{"https://approvals.example.com/lpa", "/a", `emailconn: base: path "/lpa" is not allowed (only scheme, host and port)`},
		{"", "/a", "emailconn: base: url is empty"},
		{"https://approvals.example.com", "//evil.example/a", "emailconn: link: link is scheme-relative (//host), which is not allowed"},
		{"https://approvals.example.com", "JaVaScRiPt:alert(1)", `emailconn: link: scheme "javascript" is not allowed (use http or https)`},
		{"https://approvals.example.com", "https://engine@evil.example/?sig=secret", "emailconn: link: user info is not allowed"},
	}
	for _, tt := range tests {
		got, err := emailconn.RewriteActionURL(tt.base, tt.link)
		if err == nil {
			t.Errorf("RewriteActionURL(%q, %q) = %q, want error %q", tt.base, tt.link, got, tt.want)
			continue
		}
		var fe *emailconn.FieldError
		if err.Error() != tt.want || !errors.Is(err, emailconn.ErrInvalid) || !errors.As(err, &fe) {
			t.Errorf("RewriteActionURL(%q, %q) error = %q, want %q matching ErrInvalid", tt.base, tt.link, err, tt.want)
		}
	}
}

func TestRewriteActionLinks(t *testing.T) {
	t.Parallel()
	body := `<a href="http://engine.internal:8080/a?wu=1&amp;s=x">ok</a> http://engine.internal:8080.evil.example/ HTTP://ENGINE.INTERNAL:8080#f`
	want := `<a href="https://approvals.example.com/a?wu=1&amp;s=x">ok</a> http://engine.internal:8080.evil.example/ https://approvals.example.com#f`
	got, err := emailconn.RewriteActionLinks("https://approvals.example.com/", "http://engine.internal:8080", body)
	if err != nil || got != want {
		t.Errorf("RewriteActionLinks(…, %q) = %q, %v, want %q", body, got, err, want)
	}

	_, err = emailconn.RewriteActionLinks("https://approvals.example.com", "http://engine.internal:8080/lpa", body)
	if want := `emailconn: origin: path "/lpa" is not allowed (only scheme, host and port)`; err == nil || err.Error() != want || !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("RewriteActionLinks with an origin path: error = %v, want %q", err, want)
	}
	_, err = emailconn.RewriteActionLinks("ftp://approvals.example.com", "http://engine.internal:8080", body)
	if want := `emailconn: base: scheme "ftp" is not allowed (use http or https)`; err == nil || err.Error() != want {
		t.Errorf("RewriteActionLinks with an ftp base: error = %v, want %q", err, want)
	}
}
