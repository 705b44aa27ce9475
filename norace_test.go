//go:build !race

package emailconn_test

// slowdown scales the bounds of tests that assert how fast a failure is
// reported: the race detector makes TLS and goroutines several times slower.
const slowdown = 1
