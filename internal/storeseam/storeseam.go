// Package storeseam lets the test programs of this repository's other
// modules (the multi-process test of internal/sqlstoretest, whose helper
// processes are separate binaries) set the test seams of
// emailconn.Options that the root package's own tests set through
// export_test.go: the length of a provider's minute and the lease time of
// Options.Store. It is internal: no engine can reach it, and nothing in
// production calls it.
package storeseam

import "time"

// Seams are the test seams of an emailconn.Options.
type Seams struct {
	// LimitMinute is the length of a provider's minute (MessagesPerMinute);
	// zero means a minute.
	LimitMinute time.Duration
	// LeaseTTL is the lease of the OAuth2 refresh and of a session slot;
	// zero means 30 seconds.
	LeaseTTL time.Duration
}

// Set sets the seams of opts, an *emailconn.Options. Package emailconn
// installs it when it is initialised; it panics on any other type.
var Set func(opts any, s Seams)
