package sqlstoretest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/memstore"
)

// The store's per-call cost on each database, beside a baseline of the
// same run: BenchmarkRoundTrip, one "SELECT 1" on the same pool. A ratio
// near 1 means a method costs about one round trip. memstore is there for
// scale.

func benchStores(b *testing.B, f func(b *testing.B, s emailconn.Store, db *sql.DB)) {
	b.Run("memstore", func(b *testing.B) { f(b, memstore.New(nil), nil) })
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			db, _ := d.open(b)
			f(b, newStore(b, db), db)
		})
	}
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			db, _ := d.open(b)
			ctx := context.Background()
			var one int
			for b.Loop() {
				if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAcquire takes a free slot each time (4096 keys in turn, leases
// of 1 ms that have expired when their key comes round again): the insert
// or the update of an expired row, the send path's case.
func BenchmarkAcquire(b *testing.B) {
	benchStores(b, func(b *testing.B, s emailconn.Store, _ *sql.DB) {
		ctx := context.Background()
		prefix := fmt.Sprintf("bench/acquire/%d/", time.Now().UnixNano())
		keys := make([]string, 4096)
		for i := range keys {
			keys[i] = prefix + fmt.Sprint(i)
		}
		i := 0
		for b.Loop() {
			slot, wait, err := s.Acquire(ctx, keys[i%len(keys)], 30, "bench", time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			if slot < 0 {
				time.Sleep(wait) // a key came round within a millisecond (never seen)
			}
			i++
		}
	})
}

// BenchmarkSwap writes the next version of one record each time.
func BenchmarkSwap(b *testing.B) {
	benchStores(b, func(b *testing.B, s emailconn.Store, _ *sql.DB) {
		ctx := context.Background()
		key := fmt.Sprintf("bench/swap/%d", time.Now().UnixNano())
		value := make([]byte, 1024) // about a token record
		version := int64(0)
		for b.Loop() {
			ok, err := s.Swap(ctx, key, version, value, time.Hour)
			if err != nil || !ok {
				b.Fatalf("Swap(%d) = %v, %v", version, ok, err)
			}
			version++
		}
	})
}

// BenchmarkLoad reads one record of 1 KiB.
func BenchmarkLoad(b *testing.B) {
	benchStores(b, func(b *testing.B, s emailconn.Store, _ *sql.DB) {
		ctx := context.Background()
		key := fmt.Sprintf("bench/load/%d", time.Now().UnixNano())
		if ok, err := s.Swap(ctx, key, 0, make([]byte, 1024), time.Hour); err != nil || !ok {
			b.Fatal(ok, err)
		}
		for b.Loop() {
			if _, version, err := s.Load(ctx, key); err != nil || version != 1 {
				b.Fatal(version, err)
			}
		}
	})
}
