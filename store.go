package emailconn

import (
	"context"
	"time"
)

// A Store holds the state that the nodes of one engine share, so that
// several processes sending through the same connections behave as one:
// the OAuth2 token of each configuration (one node refreshes it while the
// others wait and adopt the result, so a rotating refresh token is never
// presented twice), the session slots and the message-rate window of each
// connection (MaxSessions and MessagesPerMinute hold across all nodes
// together), and the delivery ledger of idempotent sends. Set it as
// Options.Store; a nil Store keeps all of that state in the process, which
// is right for one node.
//
// NewSQLStore returns the Store of this package, on the engine's own
// PostgreSQL or SQLite database. An engine may bring another (Redis, etcd)
// by implementing the five methods below; the README's "Several engine
// nodes" section lists the keys and what each holds.
//
// A Store is built from two primitives:
//
//   - Leases. A key has a number of slots; a lease holds one slot for an
//     owner until it expires. The refresh lease of an OAuth2
//     configuration is a key with one slot; the sessions of a connection
//     with MaxSessions 3 are a key with three slots, each held while a
//     session lives and renewed meanwhile, so that a crashed node's
//     slots come back when their leases run out; the rate window of a
//     connection with MessagesPerMinute 30 is a key with 30 slots, each
//     taken for a minute by one message and never released.
//   - Records. A key holds a value with a version; Swap replaces it only
//     when the version is still the one read (compare-and-swap).
//
// Every method is one decision, made atomically by the store; none holds a
// lock or transaction after it returns. Times are measured on the store's
// own clock (for SQLStore, the database server's), so that nodes whose
// clocks differ still agree on when a lease expires; the library passes
// durations only. Keys are at most 512 bytes of UTF-8; owners at most 128;
// neither is empty or holds a NUL byte (PostgreSQL's text cannot). Limits
// and slots are below 1<<20, and every ttl other than Swap's zero is at
// least a millisecond: other arguments are an error, and nothing is taken
// or written.
//
// Implementations must be safe for concurrent use by many goroutines and
// many processes. A method's error means the store could not decide (it
// was unreachable, ctx ended): the library then fails the operation that
// needed it, and never guesses; see the README for what each sends back.
type Store interface {
	// Acquire takes one slot of key for owner for ttl and returns its
	// number, 0 ≤ slot < limit. A slot is free when no lease holds it or
	// its lease has expired. When every slot is held, Acquire returns
	// slot -1 and the time until the first held lease expires (at least
	// one microsecond), and takes nothing. Slots at or beyond limit
	// (left by a larger limit before) are held until they expire but are
	// never taken. A limit below 1 or a ttl below one millisecond is an
	// error.
	Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (slot int, wait time.Duration, err error)

	// Renew extends owner's lease of slot of key to ttl from now. It
	// returns false when owner no longer holds it (the lease expired and
	// may have been taken by another owner); the slot is then not
	// owner's, and the caller must stop using what it guarded.
	Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error)

	// Release frees owner's lease of slot of key at once. Releasing a
	// lease that owner no longer holds does nothing and is not an error.
	Release(ctx context.Context, key string, slot int, owner string) error

	// Load returns the value and version of key's record. A key with no
	// record, or whose record has expired, has version 0 and a nil value.
	// The value is the caller's own copy.
	Load(ctx context.Context, key string) (value []byte, version int64, err error)

	// Swap writes value as key's record if its version is still version
	// (0: only if there is no record, or it has expired), and returns
	// true; the record's version is then version+1. It returns false,
	// and writes nothing, when the version has changed. The record
	// expires ttl from now; zero means never. Swap does not keep value.
	// A record that expired and is written again starts over at version
	// 1: a caller must not hold a version across a record's ttl (the
	// library's records with a ttl, the delivery ledger's, live for days
	// and are read anew by every send).
	Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error)
}
