package sqlstoretest

import (
	"database/sql"
	"fmt"
	"strings"
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

// TestConformancePgxModes runs the suite on PostgreSQL with pgx's other
// query modes: "exec" (unnamed prepared statements, as behind PgBouncer in
// transaction mode, which NewSQLStore's doc advises) and the simple
// protocol (arguments interpolated by pgx); and under the stricter
// isolation levels, as a database configured so would run it.
func TestConformancePgxModes(t *testing.T) {
	for _, mode := range []string{
		"default_query_exec_mode=exec",
		"default_query_exec_mode=simple_protocol",
		// A database whose default isolation is stricter: conflicts are
		// serialization failures (40001), which the store retries.
		"default_transaction_isolation=serializable",
		"default_transaction_isolation=repeatable%20read",
	} {
		t.Run(mode, func(t *testing.T) {
			dsn := postgresDSN(t)
			if strings.Contains(dsn, "?") {
				dsn += "&" + mode
			} else {
				dsn += "?" + mode
			}
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if level, ok := strings.CutPrefix(mode, "default_transaction_isolation="); ok {
				var got string
				if err := db.QueryRow("SHOW transaction_isolation").Scan(&got); err != nil || got != strings.ReplaceAll(level, "%20", " ") {
					t.Fatalf("the connection's isolation is %q (%v), want %s", got, err, level)
				}
			}
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

// TestString: a SQLStore prints as its kind of database, with every verb.
func TestString(t *testing.T) {
	for _, d := range []struct{ name, want string }{{"SQLite", "SQLStore(sqlite)"}, {"PostgreSQL", "SQLStore(postgres)"}} {
		t.Run(d.name, func(t *testing.T) {
			var db *sql.DB
			for _, o := range dialects {
				if o.name == d.name {
					db, _ = o.open(t)
				}
			}
			s := newStore(t, db)
			for _, verb := range []string{"%v", "%s", "%+v"} {
				if got := fmt.Sprintf(verb, s); got != d.want {
					t.Errorf("Sprintf(%q, store) = %q, want %q", verb, got, d.want)
				}
			}
		})
	}
}
