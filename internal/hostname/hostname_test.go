package hostname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	strict := Rules{}
	host := Rules{Underscore: true, TrailingDot: true}
	utf := Rules{Unicode: true}
	tests := []struct {
		name string
		r    Rules
		want string // "" means accepted
	}{
		{"example.com", strict, ""},
		{"localhost", strict, ""},
		{"a1-b2.c3", strict, ""},
		{"xn--bcher-kva.example", strict, ""},
		{strings.Repeat(strings.Repeat("d", 63)+".", 3) + strings.Repeat("e", 61), strict, ""},
		{"smtp_relay.internal", host, ""},
		{"relay.internal.", host, ""},
		{"bücher.example", utf, ""},

		{"", strict, "is empty"},
		{".", host, "has an empty label (leading, trailing or double dot)"},
		{"relay.internal.", strict, "has an empty label (leading, trailing or double dot)"},
		{"relay.internal..", host, "has an empty label (leading, trailing or double dot)"},
		{"a..b", strict, "has an empty label (leading, trailing or double dot)"},
		{"smtp_relay.internal", strict, `contains "_", which is not allowed in a host name`},
		{"a!b.example", host, `contains "!", which is not allowed in a host name`},
		{"a b", host, `contains " ", which is not allowed in a host name`},
		{"bücher.example", host, "is not ASCII (write an internationalised name in punycode, xn--…)"},
		{"b\xffcher.example", utf, "is not valid UTF-8"},
		{"-x.example.com", host, `has a label that starts or ends with "-"`},
		{"x-.example.com", strict, `has a label that starts or ends with "-"`},
		{strings.Repeat("d", 64) + ".com", strict, "has a label longer than 63 octets"},
		{strings.Repeat("a.", 127) + "example", strict, "is longer than 253 octets"},
		{"example.123", strict, "ends in a numeric label, which reads as an IP address"},
		{"192.0.2.1", host, "ends in a numeric label, which reads as an IP address"},
		{"a.0x7F", host, "ends in a numeric label, which reads as an IP address"},
		{"a.0x", host, "ends in a numeric label, which reads as an IP address"},
	}
	for _, tt := range tests {
		if got := Check(tt.name, tt.r); got != tt.want {
			t.Errorf("Check(%q, %+v) = %q, want %q", tt.name, tt.r, got, tt.want)
		}
	}
}

func TestEndsInNumber(t *testing.T) {
	for name, want := range map[string]bool{
		"127.1": true, "0x7f.1": true, "a.0X1f": true, "1.": true, "a.b": false,
		"a.0xg": false, "a.1a": false, "": false, "a.": false,
	} {
		if got := EndsInNumber(name); got != want {
			t.Errorf("EndsInNumber(%q) = %v, want %v", name, got, want)
		}
	}
}
