package emailconntest

import (
	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/memstore"
)

// NewStore returns an empty emailconn.Store kept in this process's memory,
// for an engine's unit tests of several nodes: give the same store to the
// Options of several Registries or Senders, and they share OAuth2 tokens,
// session slots, rate windows and the delivery ledger as the nodes of a
// cluster sharing one emailconn.SQLStore would, without a database.
//
// The store keeps the time of the system clock, so leases and records
// expire in real time. It meets the whole Store contract (the conformance
// suite that SQLStore passes runs on it too), is safe for concurrent use,
// and forgets everything when the process ends: it is not for production,
// where the nodes are processes and NewSQLStore is the store to use.
func NewStore() emailconn.Store {
	return memstore.New(nil)
}
