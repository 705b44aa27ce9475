package emailconn

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestIssue10_06_OneAddressValidator checks that Connection.Validate,
// LoadConfig and the Sender judge every address alike: one that a
// configuration accepts can be sent from and to, one that sending refuses
// is refused when the configuration is saved.
func TestIssue10_06_OneAddressValidator(t *testing.T) {
	t.Parallel()
	addrs := []string{
		// Refused by the Sender before the fix, accepted by Validate.
		"a@example.123", "a@-x.example.com", "a@x-.example.com", "a@exa_mple.com",
		"a@example.com.", "a..b@example.com", ".a@example.com", "a@[300.0.0.1]",
		"a@" + strings.Repeat("d", 64) + ".com", "a:b@example.com",
		// Accepted by both.
		"a@example.com", "Alice <alice@example.com>", "jürgen@beispiel.de",
		"a@[192.0.2.1]", "a@[IPv6:2001:db8::1]", "user+tag@sub.example.co.uk",
		// Refused by both.
		"not an address", "a@x.example\r\nBcc: b@y.example", "a@x> RET=FULL",
	}
	s, err := NewSender(Connection{MailServer: "127.0.0.1:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range addrs {
		t.Run(a, func(t *testing.T) {
			conn := Connection{MailServer: "m.example", From: a, To: []string{a}}
			verr := conn.Validate()

			js := fmt.Sprintf(`{"connections": [{"name": "c", "mailServer": "m.example", "from": %q}]}`, a)
			_, lerr := LoadConfig(strings.NewReader(js))

			_, serr := s.prepare(&Message{From: a, To: []string{a}, Subject: "s", Text: "t"}, "", nil)

			if (verr == nil) != (serr == nil) || (lerr == nil) != (serr == nil) {
				t.Fatalf("Validate = %v, LoadConfig = %v, Sender = %v: they must agree", verr, lerr, serr)
			}
			for _, err := range []error{verr, lerr, serr} {
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not match ErrInvalid", err)
				}
			}
		})
	}
}
