package sqlstoretest

import (
	"database/sql"
	"testing"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/storetest"
)

// TestConformance runs the Store contract's suite on SQLStore over each
// database, on real time with short ttls for the expiry cases.
func TestConformance(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db, _ := d.open(t)
			s := newStore(t, db)
			storetest.Run(t, func(t *testing.T) emailconn.Store { return s }, storetest.Options{})
		})
	}
}

// TestConformanceTwoStores runs the suite on two SQLStores over two pools
// of the same database, used in turn: what one writes the other reads.
func TestConformanceTwoStores(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db, dsn := d.open(t)
			db2, err := sql.Open(driverOf(dsn), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db2.Close() })
			pair := &alternating{stores: [2]emailconn.Store{newStore(t, db), newStore(t, db2)}}
			storetest.Run(t, func(t *testing.T) emailconn.Store { return pair }, storetest.Options{})
		})
	}
}
