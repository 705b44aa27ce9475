package smtptest

import "testing"

// RefusedAddr returns a loopback address, "127.0.0.1:port", at which
// connections are refused until the end of the test: a client's dial
// fails with ECONNREFUSED there, as at a mail server or token endpoint
// that is down.
//
// Closing a listener to free its port, the usual way, is a race: until the
// test dials, any other listener of any process on the machine (a parallel
// test's server) may be given the port and answer. RefusedAddr instead
// holds the port with a TCP socket that is bound and never listens, closed
// by t.Cleanup: the kernel gives that port to no other bind or dial, and
// refuses every connection to it. Where the system does not allow that
// (not unix), it falls back to a listener's port closed at once.
func RefusedAddr(t testing.TB) string {
	t.Helper()
	addr, release, err := refusedAddr()
	if err != nil {
		t.Fatalf("smtptest: a refused address: %v", err)
	}
	t.Cleanup(release)
	return addr
}
