package compose

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateEnvelopeAccepts(t *testing.T) {
	tests := []struct {
		addr     string
		smtpUTF8 bool
	}{
		{"a@example.com", false},
		{"first.last@sub.example.co.uk", false},
		{"user+tag@example.com", false},
		{"!#$%&'*+-/=?^_`{|}~@example.com", false},
		{"a@localhost", false},
		{"a@xn--bcher-kva.example", false},
		{"a@[192.0.2.1]", false},
		{"a@[IPv6:2001:db8::1]", false},
		{"a@[IPv6:::ffff:192.0.2.1]", false},
		{"a@a1-b2.c3", false},
		{strings.Repeat("l", 64) + "@example.com", false},
		{"a@" + strings.Repeat(strings.Repeat("d", 63)+".", 3) + strings.Repeat("e", 60), false}, // 254 octets
		{"jürgen@beispiel.de", true},
		{"山田@例え.jp", true},
		{"user@bücher.example", true},
		{"a@example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if err := ValidateEnvelope(tt.addr, tt.smtpUTF8); err != nil {
				t.Errorf("ValidateEnvelope(%q, %v) = %v, want nil", tt.addr, tt.smtpUTF8, err)
			}
		})
	}
}

func TestValidateEnvelopeRefuses(t *testing.T) {
	long := strings.Repeat("a", 290) + "@example.com"
	tests := []struct {
		addr     string
		smtpUTF8 bool
		want     string // the error message
	}{
		// T2: ESMTP parameter injection.
		{"a@x> RET=FULL", false, `address "a@x> RET=FULL": contains ">"`},
		{"a@b> SIZE=1", false, `address "a@b> SIZE=1": contains ">"`},
		{`"x> ORCPT=rfc822;a@evil.test"@example.com`, false, `address "\"x> ORCPT=rfc822;a@evil.test\"@example.com": contains '"' (quoted local parts are not supported)`},
		{"victim@example.com> NOTIFY=SUCCESS ORCPT=rfc822;attacker@evil.test", false, `address "victim@example.com> NOTIFY=SUCCESS ORCPT=rfc822;attacker@evil.test": contains ">"`},
		{"a@example.com\r\nRCPT TO:<b@example.com>", false, `address "a@example.com\r\nRCPT TO:<b@example.com>": contains CR`},
		{"a@example.com\nDATA", false, `address "a@example.com\nDATA": contains LF`},
		{"a@example.com\r", false, `address "a@example.com\r": contains CR`},
		{"a\x00@example.com", false, `address "a\x00@example.com": contains NUL`},
		{"a\x1b@example.com", false, `address "a\x1b@example.com": contains control character '\x1b'`},
		{"a\x7f@example.com", false, `address "a\x7f@example.com": contains control character '\x7f'`},
		{long, false, `address "` + strings.Repeat("a", 100) + `"...: is longer than 254 octets`},
		{"a@" + strings.Repeat(strings.Repeat("d", 63)+".", 3) + strings.Repeat("e", 61), false, `address "a@` + strings.Repeat("d", 63) + "." + strings.Repeat("d", 34) + `"...: is longer than 254 octets`},
		{"jürgen@beispiel.de", false, `address "jürgen@beispiel.de": contains non-ASCII characters, which need SMTPUTF8`},
		{"a@bücher.example", false, `address "a@bücher.example": contains non-ASCII characters, which need SMTPUTF8`},
		// Syntax.
		{"", false, `address "": is empty`},
		{"<a@example.com>", false, `address "<a@example.com>": contains "<"`},
		{"A <a@example.com>", false, `address "A <a@example.com>": contains a space`},
		{" a@example.com", false, `address " a@example.com": contains a space`},
		{"a@example.com ", false, `address "a@example.com ": contains a space`},
		{"a(comment)@example.com", false, `address "a(comment)@example.com": contains "("`},
		{"a,b@example.com", false, `address "a,b@example.com": contains ","`},
		{"a;b@example.com", false, `address "a;b@example.com": contains ";"`},
		{`a\b@example.com`, false, `address "a\\b@example.com": contains "\\"`},
		{"a:b@example.com", false, `address "a:b@example.com": has ":" in the local part`},
		{"a@b@example.com", false, `address "a@b@example.com": contains more than one "@"`},
		{"example.com", false, `address "example.com": has no "@"`},
		{"@example.com", false, `address "@example.com": has an empty local part`},
		{"a@", false, `address "a@": has an empty domain`},
		{".a@example.com", false, `address ".a@example.com": has a local part with a leading, trailing or double dot`},
		{"a.@example.com", false, `address "a.@example.com": has a local part with a leading, trailing or double dot`},
		{"a..b@example.com", false, `address "a..b@example.com": has a local part with a leading, trailing or double dot`},
		{strings.Repeat("l", 65) + "@example.com", false, `address "` + strings.Repeat("l", 65) + `@example.com": has a local part longer than 64 octets`},
		{"a[1]@example.com", false, `address "a[1]@example.com": has "[" in the local part`},
		{"a@example.com.", false, `address "a@example.com.": has a domain that has an empty label (leading, trailing or double dot)`},
		{"a@.example.com", false, `address "a@.example.com": has a domain that has an empty label (leading, trailing or double dot)`},
		{"a@exa..mple.com", false, `address "a@exa..mple.com": has a domain that has an empty label (leading, trailing or double dot)`},
		{"a@-example.com", false, `address "a@-example.com": has a domain that has a label that starts or ends with "-"`},
		{"a@example-.com", false, `address "a@example-.com": has a domain that has a label that starts or ends with "-"`},
		{"a@exa_mple.com", false, `address "a@exa_mple.com": has a domain that contains "_", which is not allowed in a host name`},
		{"a@" + strings.Repeat("d", 64) + ".com", false, `address "a@` + strings.Repeat("d", 64) + `.com": has a domain that has a label longer than 63 octets`},
		{"a@192.0.2.1", false, `address "a@192.0.2.1": has a domain that ends in a numeric label (write an IP address as [192.0.2.1])`},
		{"a@[192.0.2.1", false, `address "a@[192.0.2.1": has an address literal without a closing "]"`},
		{"a@[300.0.2.1]", false, `address "a@[300.0.2.1]": has an invalid address literal (want [192.0.2.1] or [IPv6:2001:db8::1])`},
		{"a@[192.000.2.1]", false, `address "a@[192.000.2.1]": has an invalid address literal (want [192.0.2.1] or [IPv6:2001:db8::1])`},
		{"a@[2001:db8::1]", false, `address "a@[2001:db8::1]": has an invalid address literal (want [192.0.2.1] or [IPv6:2001:db8::1])`},
		{"a@[IPv6:192.0.2.1]", false, `address "a@[IPv6:192.0.2.1]": has an invalid IPv6 address literal`},
		{"a@[IPv6:fe80::1%eth0]", false, `address "a@[IPv6:fe80::1%eth0]": has an invalid IPv6 address literal`},
		{"a@[tag:x]", false, `address "a@[tag:x]": has an invalid address literal (want [192.0.2.1] or [IPv6:2001:db8::1])`},
		{"a@ex[a]mple.com", false, `address "a@ex[a]mple.com": has "[" or "]" in the domain`},
		// SMTPUTF8 still refuses controls, spaces and invalid UTF-8.
		{"j\xffrgen@example.com", true, `address "j\xffrgen@example.com": is not valid UTF-8`},
		{"a\u00a0b@example.com", true, `address "a\u00a0b@example.com": contains U+00A0`},
		{"a\u2028b@example.com", true, `address "a\u2028b@example.com": contains U+2028`},
		{"a\u0085b@example.com", true, `address "a\u0085b@example.com": contains U+0085`},
		{"a\u3000b@example.com", true, `address "a\u3000b@example.com": contains U+3000`},
		{"moc.\u202elive@example.com", true, `address "moc.\u202elive@example.com": contains U+202E`},
		{"jürgen@beispiel.de> RET=FULL", true, `address "jürgen@beispiel.de> RET=FULL": contains ">"`},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := ValidateEnvelope(tt.addr, tt.smtpUTF8)
			if err == nil {
				t.Fatalf("ValidateEnvelope(%q, %v) = nil, want error", tt.addr, tt.smtpUTF8)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("ValidateEnvelope(%q, %v) = %q, want %q", tt.addr, tt.smtpUTF8, got, tt.want)
			}
			var ae *AddressError
			if !errors.As(err, &ae) || ae.Addr != tt.addr {
				t.Errorf("ValidateEnvelope(%q, %v) = %#v, want *AddressError with Addr %q", tt.addr, tt.smtpUTF8, err, tt.addr)
			}
		})
	}
}

// TestValidateEnvelopeHostileNeverPrintsRaw checks that an error message
// never carries a control character raw, whatever the address.
func TestValidateEnvelopeHostileNeverPrintsRaw(t *testing.T) {
	for _, addr := range []string{"a\r\nb@x", "a\x00@x", "\x1b[31m@x", strings.Repeat("\n", 300)} {
		err := ValidateEnvelope(addr, true)
		if err == nil {
			t.Fatalf("ValidateEnvelope(%q, true) = nil, want error", addr)
		}
		if strings.ContainsAny(err.Error(), "\r\n\x00\x1b") {
			t.Errorf("ValidateEnvelope(%q, true) = %q, has a raw control character", addr, err)
		}
	}
}

func TestNeedsSMTPUTF8(t *testing.T) {
	tests := []struct {
		addrs []string
		want  bool
	}{
		{nil, false},
		{[]string{"a@example.com"}, false},
		{[]string{"a@example.com", "jürgen@beispiel.de"}, true},
		{[]string{"a@bücher.example"}, true},
		{[]string{"\xff@x"}, true},
	}
	for _, tt := range tests {
		if got := NeedsSMTPUTF8(tt.addrs...); got != tt.want {
			t.Errorf("NeedsSMTPUTF8(%q) = %v, want %v", tt.addrs, got, tt.want)
		}
	}
}

// TestIssue10_06_ParseAddress checks the one address validator that
// Connection.Validate and the Sender share.
func TestIssue10_06_ParseAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a@example.com", ""},
		{"Alice <alice@example.com>", ""},
		{"jürgen@beispiel.de", ""},
		{"a@example.123", `address "a@example.123": has a domain that ends in a numeric label (write an IP address as [192.0.2.1])`},
		{"a@-x.example.com", `address "a@-x.example.com": has a domain that has a label that starts or ends with "-"`},
		{"Alice <a@-x.example.com>", `address "a@-x.example.com": has a domain that has a label that starts or ends with "-"`},
		{"not an address", `"not an address" is not an email address`},
		{"a@x.example\r\nBcc: b@y.example", "must not contain CR, LF or NUL"},
	}
	for _, tt := range tests {
		a, err := ParseAddress(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ParseAddress(%q) = %v, want nil", tt.in, err)
		case tt.want == "" && a == nil:
			t.Errorf("ParseAddress(%q) = nil, nil", tt.in)
		case tt.want != "" && (err == nil || err.Error() != tt.want):
			t.Errorf("ParseAddress(%q) = %v, want %q", tt.in, err, tt.want)
		}
	}
}
