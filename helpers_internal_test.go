package emailconn

import "testing"

// mustSender makes a Sender for the white-box tests, failing the test on an
// error, and closes it when the test ends. (The black-box tests have their
// own, which also allows the connection's CA file.)
func mustSender(t testing.TB, c Connection, opts *Options) *Sender {
	t.Helper()
	s, err := NewSender(c, opts)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
