package emailconn_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// The SQL store's real tests run on PostgreSQL and SQLite in
// internal/sqlstoretest (a module of its own, with the drivers). These
// need no driver: what NewSQLStore refuses, and the zero value.

// TestSQLStoreRefuses: a nil *sql.DB, and databases that are neither
// PostgreSQL nor SQLite, are errors that say so and name the driver.
func TestSQLStoreRefuses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s, err := emailconn.NewSQLStore(ctx, nil); err == nil || s != nil || !strings.HasPrefix(err.Error(), "emailconn: store: ") {
		t.Errorf("NewSQLStore(nil) = %v, %v; want an emailconn: store: error", s, err)
	}
	for _, tc := range []struct {
		version string // what SELECT version() answers; "" fails it
		want    string
	}{
		{"8.0.36 MySQL Community Server", `is neither PostgreSQL nor SQLite: version() is "8.0.36 MySQL Community Server"`},
		{"", `is neither PostgreSQL nor SQLite: SELECT version(): fake: no such function in "SELECT version()"; SELECT sqlite_version(): fake: no such function`},
	} {
		name := fmt.Sprintf("fakesql-%d", time.Now().UnixNano())
		sql.Register(name, fakeDriver{version: tc.version})
		db, err := sql.Open(name, "")
		if err != nil {
			t.Fatal(err)
		}
		s, err := emailconn.NewSQLStore(ctx, db)
		db.Close()
		if err == nil || s != nil || !strings.HasPrefix(err.Error(), "emailconn: store: ") ||
			!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "emailconn_test.fakeDriver") {
			t.Errorf("NewSQLStore on a database answering %q = %v, %v; want an error naming the driver and containing %q", tc.version, s, err, tc.want)
		}
	}
}

// TestSQLStoreZero: the zero SQLStore (and a nil one) return errors, never
// panic, and print as SQLStore(none).
func TestSQLStoreZero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, s := range []*emailconn.SQLStore{{}, nil} {
		if _, _, err := s.Acquire(ctx, "k", 1, "o", time.Minute); err == nil {
			t.Error("Acquire on a zero SQLStore: no error")
		}
		if _, err := s.Renew(ctx, "k", 0, "o", time.Minute); err == nil {
			t.Error("Renew on a zero SQLStore: no error")
		}
		if err := s.Release(ctx, "k", 0, "o"); err == nil {
			t.Error("Release on a zero SQLStore: no error")
		}
		if _, _, err := s.Load(ctx, "k"); err == nil {
			t.Error("Load on a zero SQLStore: no error")
		}
		if _, err := s.Swap(ctx, "k", 0, nil, 0); err == nil || !strings.HasPrefix(err.Error(), "emailconn: store: ") {
			t.Errorf("Swap on a zero SQLStore: %v", err)
		}
		if got := fmt.Sprint(s); got != "SQLStore(none)" {
			t.Errorf("a zero SQLStore prints as %q", got)
		}
	}
}

// fakeDriver is a database/sql driver whose one query is SELECT version()
// (answering version, or failing as SQLite would when version is "") and
// whose SELECT sqlite_version() fails as PostgreSQL would.
type fakeDriver struct{ version string }

func (d fakeDriver) Open(string) (driver.Conn, error) { return fakeConn(d), nil }

type fakeConn fakeDriver

func (fakeConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("fake: no prepare") }
func (fakeConn) Close() error                        { return nil }
func (fakeConn) Begin() (driver.Tx, error)           { return nil, errors.New("fake: no transactions") }

func (c fakeConn) QueryContext(_ context.Context, query string, _ []driver.NamedValue) (driver.Rows, error) {
	if query == "SELECT version()" && c.version != "" {
		return &fakeRows{value: c.version}, nil
	}
	return nil, fmt.Errorf("fake: no such function in %q", query)
}

type fakeRows struct {
	value string
	done  bool
}

func (*fakeRows) Columns() []string { return []string{"v"} }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.value
	return nil
}
