package sqlstoretest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestSweep: expired leases and records are deleted lazily (here by the
// sweep of a new SQLStore, as when a node starts), and live ones are kept.
func TestSweep(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db, _ := d.open(t)
			s := newStore(t, db)
			ctx := context.Background()
			prefix := fmt.Sprintf("sqlstoretest/sweep/%d/", time.Now().UnixNano())
			const n = 20
			for i := range n {
				key := fmt.Sprintf("%s%d", prefix, i)
				if _, _, err := s.Acquire(ctx, key, 1, "o", 5*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Swap(ctx, key, 0, []byte("v"), 5*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			live := prefix + "live"
			if _, _, err := s.Acquire(ctx, live, 1, "o", time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Swap(ctx, live, 0, []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
			count := func(table string) int {
				t.Helper()
				var c int
				q := fmt.Sprintf("SELECT count(*) FROM %s WHERE key LIKE '%s%%'", table, prefix)
				if err := db.QueryRowContext(ctx, q).Scan(&c); err != nil {
					t.Fatal(err)
				}
				return c
			}
			if l, r := count("emailconn_leases"), count("emailconn_records"); l != n+1 || r != n+1 {
				t.Fatalf("%d leases and %d records, want %d of each", l, r, n+1)
			}
			// Wait (polling, bounded) until the last one has expired.
			end := time.Now().Add(10 * time.Second)
			for {
				if _, version, err := s.Load(ctx, fmt.Sprintf("%s%d", prefix, n-1)); err != nil {
					t.Fatal(err)
				} else if version == 0 {
					break
				}
				if time.Now().After(end) {
					t.Fatal("the records did not expire")
				}
				time.Sleep(5 * time.Millisecond)
			}
			newStore(t, db) // sweeps
			if l, r := count("emailconn_leases"), count("emailconn_records"); l != 1 || r != 1 {
				t.Fatalf("after the sweep %d leases and %d records, want the live one of each", l, r)
			}
		})
	}
}
