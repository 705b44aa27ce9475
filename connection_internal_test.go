package emailconn

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestSplitMailServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		host     string
		port     int
		wantProb string // substring of the problem; "" = valid
	}{
		{"smtp.example.com", "smtp.example.com", 0, ""},
		{"smtp.example.com:587", "smtp.example.com", 587, ""},
		{"SMTP.Example.COM:25", "smtp.example.com", 25, ""},
		{"127.0.0.1:2525", "127.0.0.1", 2525, ""},
		{"[::1]:25", "::1", 25, ""},
		{"[2001:db8::1]", "2001:db8::1", 0, ""},
		{"relay.internal.:25", "relay.internal.", 25, ""},
		{"", "", 0, "is required"},
		{"smtp://smtp.example.com", "", 0, "not a URL"},
		{" smtp.example.com", "", 0, "spaces"},
		{"smtp.example.com:", "", 0, "empty port"},
		{"smtp.example.com:0", "", 0, "1 to 65535"},
		{"smtp.example.com:65536", "", 0, "1 to 65535"},
		{"smtp.example.com:+25", "", 0, "1 to 65535"},
		{"smtp.example.com:025", "", 0, "1 to 65535"},
		{"smtp.example.com:smtp", "", 0, "1 to 65535"},
		{"::1", "", 0, "in brackets"},
		{"2001:db8::1:25", "", 0, "in brackets"},
		{"[::1", "", 0, "unclosed"},
		{"[::1]25", "", 0, "not a port"},
		{"[127.0.0.1]:25", "", 0, "only IPv6"},
		{"[::1]:", "", 0, "empty port"},
		{":25", "", 0, "no host"},
		{"smtp_ex..com", "", 0, "empty label"},
		{"-smtp.example.com", "", 0, "starts or ends"},
		{"smtp.exämple.com", "", 0, "punycode"},
		{"smtp.example.com/x", "", 0, "not allowed in a host name"},
	}
	for _, tt := range tests {
		host, port, prob := splitMailServer(tt.in)
		if tt.wantProb == "" {
			if prob != "" || host != tt.host || port != tt.port {
				t.Errorf("splitMailServer(%q) = %q, %d, %q; want %q, %d, valid", tt.in, host, port, prob, tt.host, tt.port)
			}
			continue
		}
		if !strings.Contains(prob, tt.wantProb) {
			t.Errorf("splitMailServer(%q) problem = %q, want it to contain %q", tt.in, prob, tt.wantProb)
		}
	}
}

func TestEndpointDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		conn Connection
		addr string
		mode string
	}{
		{Connection{MailServer: "mx.example.com"}, "mx.example.com:25", tlsNone},
		{Connection{MailServer: "mx.example.com", EnableTLS: true}, "mx.example.com:587", tlsStartTLS},
		{Connection{MailServer: "mx.example.com:465", EnableTLS: true}, "mx.example.com:465", tlsImplicit},
		{Connection{MailServer: "mx.example.com:2525", EnableTLS: true}, "mx.example.com:2525", tlsStartTLS},
		{Connection{MailServer: "mx.example.com", TLSMode: tlsImplicit}, "mx.example.com:465", tlsImplicit},
		{Connection{MailServer: "mx.example.com:587", EnableTLS: true, TLSMode: tlsImplicit}, "mx.example.com:587", tlsImplicit},
		{Connection{MailServer: "mx.example.com", TLSMode: tlsOpportunistic}, "mx.example.com:25", tlsOpportunistic},
		{Connection{MailServer: "[::1]", EnableTLS: true}, "[::1]:587", tlsStartTLS},
	}
	for _, tt := range tests {
		ep := tt.conn.endpoint()
		if ep.addr() != tt.addr || ep.mode != tt.mode {
			t.Errorf("%v endpoint = %s %s, want %s %s", tt.conn, ep.addr(), ep.mode, tt.addr, tt.mode)
		}
	}
}

// FuzzSplitMailServer: a mail server that validates yields a host and port
// that net.JoinHostPort and net.SplitHostPort agree on, and no host with
// characters a URL or command line could misread.
func FuzzSplitMailServer(f *testing.F) {
	for _, s := range []string{"smtp.example.com", "smtp.example.com:587", "[::1]:25", "[2001:db8::1]", "127.0.0.1:2525", "a:b:c", "[::1", "x:0", "host:+25", "exä.com", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, prob := splitMailServer(s)
		if prob != "" {
			return
		}
		if host == "" || port < 0 || port > 65535 || strings.ContainsAny(host, " /\\@?#\r\n\x00") {
			t.Fatalf("splitMailServer(%q) = %q, %d", s, host, port)
		}
		c := Connection{MailServer: s}
		ep := c.endpoint()
		h, p, err := net.SplitHostPort(ep.addr())
		if err != nil || h != host || p != strconv.Itoa(ep.port) {
			t.Fatalf("endpoint(%q) = %q: %v", s, ep.addr(), err)
		}
	})
}
