package sqlstoretest

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// TestPostgresSchema: with a schema first on the DSN's search_path (the
// README's way to give the store a schema of its own), NewSQLStore creates
// its tables there, and its rows are not in the default schema's tables.
func TestPostgresSchema(t *testing.T) {
	dsn := postgresDSN(t)
	admin := openPostgres(t)
	ctx := context.Background()
	schema := fmt.Sprintf("emailconn_test_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sql.Open("pgx", dsn+sep+"search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := newStore(t, db)
	key := "sqlstoretest/schema/" + schema
	if ok, err := s.Swap(ctx, key, 0, []byte("v"), 0); err != nil || !ok {
		t.Fatalf("Swap = %v, %v", ok, err)
	}
	if slot, _, err := s.Acquire(ctx, key, 1, "o", time.Minute); err != nil || slot != 0 {
		t.Fatalf("Acquire = %d, %v", slot, err)
	}
	var tables int
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name IN ('emailconn_leases', 'emailconn_records')`, schema).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 2 {
		t.Fatalf("%d of the store's tables in schema %s, want 2", tables, schema)
	}
	var rows int
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM `+schema+`.emailconn_records WHERE key = $1`, key).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("the record in %s.emailconn_records: %d rows, %v", schema, rows, err)
	}
	// The default schema's tables (other tests' store) do not have it.
	newStore(t, admin)
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM public.emailconn_records WHERE key = $1`, key).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the record in public.emailconn_records: %d rows, %v", rows, err)
	}
}

// TestNodesStartAtOnce: several nodes calling NewSQLStore at the same time
// on a database without the tables all succeed (CREATE TABLE IF NOT EXISTS
// races on PostgreSQL; SQLite without a busy timeout answers SQLITE_BUSY).
func TestNodesStartAtOnce(t *testing.T) {
	const nodes = 8
	for _, d := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"SQLiteWithoutBusyTimeout", func(t *testing.T) *sql.DB {
			db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "state.db")+"?_pragma=journal_mode(WAL)")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
		{"PostgreSQL", func(t *testing.T) *sql.DB {
			admin := openPostgres(t)
			schema := fmt.Sprintf("emailconn_start_%d", time.Now().UnixNano())
			if _, err := admin.ExecContext(context.Background(), "CREATE SCHEMA "+schema); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
			dsn := postgresDSN(t)
			sep := "?"
			if strings.Contains(dsn, "?") {
				sep = "&"
			}
			db, err := sql.Open("pgx", dsn+sep+"search_path="+schema)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
	} {
		t.Run(d.name, func(t *testing.T) {
			db := d.open(t)
			start := make(chan struct{})
			errs := make(chan error, nodes)
			var wg sync.WaitGroup
			for range nodes {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_, err := emailconn.NewSQLStore(ctx, db)
					errs <- err
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
}
