package emailconn

import "time"

// NewLedgerTestStore returns an in-process Store for the ledger's
// black-box tests.
func NewLedgerTestStore() Store { return newLocalStore(time.Now) }
