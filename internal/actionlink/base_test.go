package actionlink

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBase(t *testing.T) {
	tests := []struct {
		in, want, host string
	}{
		{"https://approvals.example.com", "https://approvals.example.com", "approvals.example.com"},
		{"https://approvals.example.com/", "https://approvals.example.com", "approvals.example.com"},
		{"https://approvals.example.com:8443/", "https://approvals.example.com:8443", "approvals.example.com:8443"},
		{"HTTPS://Approvals.EXAMPLE.com", "https://approvals.example.com", "approvals.example.com"},
		{"Http://localhost:8080", "http://localhost:8080", "localhost:8080"},
		{"https://approvals.example.com:443", "https://approvals.example.com", "approvals.example.com"},
		{"http://approvals.example.com:80/", "http://approvals.example.com", "approvals.example.com"},
		{"http://approvals.example.com:443", "http://approvals.example.com:443", "approvals.example.com:443"},
		{"https://approvals.example.com:08443", "https://approvals.example.com:8443", "approvals.example.com:8443"},
		{"https://xn--bcher-kva.example", "https://xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"https://XN--BCHER-KVA.example", "https://xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"https://[2001:DB8::1]", "https://[2001:db8::1]", "[2001:db8::1]"},
		{"https://[2001:db8::1]:8443/", "https://[2001:db8::1]:8443", "[2001:db8::1]:8443"},
		{"https://[::ffff:192.0.2.1]", "https://[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]"},
		{"http://192.0.2.10:65535", "http://192.0.2.10:65535", "192.0.2.10:65535"},
		{"https://a_b.internal", "https://a_b.internal", "a_b.internal"},
		{"https://x1", "https://x1", "x1"},
		{"https://a.0x7g", "https://a.0x7g", "a.0x7g"},
		{"https://a.123x", "https://a.123x", "a.123x"},
		{"https://approvals.example.com:000000000443", "https://approvals.example.com", "approvals.example.com"},
	}
	for _, tt := range tests {
		b, err := ParseBase(tt.in)
		if err != nil {
			t.Errorf("ParseBase(%q) error: %v", tt.in, err)
			continue
		}
		if got := b.String(); got != tt.want {
			t.Errorf("ParseBase(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := b.Host(); got != tt.host {
			t.Errorf("ParseBase(%q).Host() = %q, want %q", tt.in, got, tt.host)
		}
	}
}

func TestParseBaseRefused(t *testing.T) {
	tests := []struct {
		in, part, want string
	}{
		{"", "url", "url is empty"},
		{" https://a.example", "url", "url contains whitespace or a control character at byte 0"},
		{"https://a.example/ ", "url", "url contains whitespace or a control character at byte 18"},
		{"https://a.exa\tmple", "url", "url contains whitespace or a control character at byte 13"},
		{"ht\ntps://a.example", "url", "url contains whitespace or a control character at byte 2"},
		{"https://a.example\x00", "url", "url contains whitespace or a control character at byte 17"},
		{"https://a.example\x7f", "url", "url contains whitespace or a control character at byte 17"},
		{`https://a.example\@evil.example`, "url", "url contains a backslash, which is not allowed"},
		{`https:\\evil.example`, "url", "url contains a backslash, which is not allowed"},
		{"approvals.example.com", "scheme", "scheme is missing (write an absolute url such as https://approvals.example.com)"},
		{"localhost:8080", "scheme", "scheme is missing (write an absolute url such as https://approvals.example.com)"},
		{"//approvals.example.com", "scheme", "scheme is missing (write an absolute url such as https://approvals.example.com)"},
		{"/actions", "scheme", "scheme is missing (write an absolute url such as https://approvals.example.com)"},
		{"ftp://approvals.example.com", "scheme", `scheme "ftp" is not allowed (use http or https)`},
		{"FTP://approvals.example.com", "scheme", `scheme "ftp" is not allowed (use http or https)`},
		{"javascript:alert(1)", "scheme", `scheme "javascript" is not allowed (use http or https)`},
		{"data:text/html,x", "scheme", `scheme "data" is not allowed (use http or https)`},
		{"https:approvals.example.com", "host", "host is missing"},
		{"https:/approvals.example.com", "host", "host is missing"},
		{"https://", "host", "host is missing"},
		{"https:///x", "host", "host is missing"},
		{"https://:443", "host", "host is missing"},
		{"https://app.example.com@evil.example/", "user info", "user info is not allowed"},
		{"https://user:secret@approvals.example.com", "user info", "user info is not allowed"},
		{"https://@approvals.example.com", "user info", "user info is not allowed"},
		{"https://approvals.example.com/x", "path", `path "/x" is not allowed (only scheme, host and port)`},
		{"https://approvals.example.com//", "path", `path "//" is not allowed (only scheme, host and port)`},
		{"https://approvals.example.com/@evil.example", "path", `path "/@evil.example" is not allowed (only scheme, host and port)`},
		{"https://approvals.example.com?", "query", "query is not allowed"},
		{"https://approvals.example.com/?a=b", "query", "query is not allowed"},
		{"https://approvals.example.com#", "fragment", "fragment is not allowed"},
		{"https://approvals.example.com/#x?y", "fragment", "fragment is not allowed"},
		{"https://approvals.example.com:99999", "port", `port "99999" is out of range`},
		{"https://approvals.example.com:0", "port", `port "0" is out of range`},
		{"https://approvals.example.com:65536", "port", `port "65536" is out of range`},
		{"https://approvals.example.com:", "port", "port is empty"},
		{"https://approvals.example.com:-1", "port", `port "-1" is not a number`},
		{"https://approvals.example.com:443x", "port", `port "443x" is not a number`},
		{"https://%65vil.example", "host", `host "%65vil.example" is percent-encoded, which is not allowed`},
		{"https://b%C3%BCcher.example", "host", `host "b%C3%BCcher.example" is percent-encoded, which is not allowed`},
		{"https://bücher.example", "host", `host "bücher.example" is not ASCII (write an internationalised name in punycode, xn--…)`},
		{"https://аpple.com", "host", `host "аpple.com" is not ASCII (write an internationalised name in punycode, xn--…)`},
		{"https://a!b.example", "host", `host "a!b.example" contains "!", which is not allowed in a host name`},
		{"https://a,b.example", "host", `host "a,b.example" contains ",", which is not allowed in a host name`},
		{"https://a..example", "host", `host "a..example" has an empty label (leading, trailing or double dot)`},
		{"https://.example", "host", `host ".example" has an empty label (leading, trailing or double dot)`},
		{"https://example.", "host", `host "example." has an empty label (leading, trailing or double dot)`},
		{"https://0x7f.1", "host", `host "0x7f.1" is not a valid ipv4 address`},
		{"https://127.1", "host", `host "127.1" is not a valid ipv4 address`},
		{"https://1.2.3.4.5", "host", `host "1.2.3.4.5" is not a valid ipv4 address`},
		{"https://010.0.0.1", "host", `host "010.0.0.1" is not a valid ipv4 address`},
		{"https://::1", "host", `host "::1" is not valid (write an ipv6 address in brackets)`},
		{"https://[::1", "host", `host "[::1" is missing the closing "]"`},
		{"https://[::1]x", "host", `host "[::1]x" is not valid`},
		{"https://[192.0.2.1]", "host", `host "[192.0.2.1]" is not a valid ipv6 address`},
		{"https://[v1.x]", "host", `host "[v1.x]" is not a valid ipv6 address`},
		{"https://[fe80::1%25en0]", "host", `host "[fe80::1%25en0]" is percent-encoded, which is not allowed`},
		{"https://[::1]:", "port", "port is empty"},
		{"https://-x.example.com", "host", `host "-x.example.com" has a label that starts or ends with "-"`}, // issue10-6
		{"https://x-.example.com", "host", `host "x-.example.com" has a label that starts or ends with "-"`},
		{"https://a.0x7F", "host", `host "a.0x7F" is not a valid ipv4 address`},
		{"https://" + strings.Repeat("a", 64) + ".example", "host", `host "` + strings.Repeat("a", 64) + `"… has a label longer than 63 octets`},
		{"https://" + strings.Repeat("a.", 127) + "example", "host", `host "` + strings.Repeat("a.", 32) + `"… is longer than 253 octets`},
		{"1http://a.example", "scheme", "scheme is missing (write an absolute url such as https://approvals.example.com)"},
	}
	for _, tt := range tests {
		b, err := ParseBase(tt.in)
		if err == nil {
			t.Errorf("ParseBase(%q) = %q, want error %q", tt.in, b, tt.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Part != tt.part || err.Error() != tt.want {
			t.Errorf("ParseBase(%q) error = %q (%#v), want part %q: %q", tt.in, err, err, tt.part, tt.want)
		}
	}
}

func TestParseBaseErrorHidesUserInfo(t *testing.T) {
	_, err := ParseBase("https://user:hunter2@approvals.example.com/x?y#z")
	if err == nil || err.Error() != "user info is not allowed" {
		t.Errorf("ParseBase with user info: error = %v, want %q", err, "user info is not allowed")
	}
}

func TestParseOrigin(t *testing.T) {
	o, err := ParseOrigin("HTTP://Engine.Internal:80/")
	if err != nil || o.String() != "http://engine.internal" {
		t.Errorf("ParseOrigin(%q) = %v, %v, want %q", "HTTP://Engine.Internal:80/", o, err, "http://engine.internal")
	}
	if o, err := ParseOrigin("http://engine.internal/lpa"); err == nil {
		t.Errorf("ParseOrigin(%q) = %q, want an error", "http://engine.internal/lpa", o)
	}
}
