package sqlstoretest

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL: "pgx"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // SQLite: "sqlite"

	"github.com/emailconn/emailconn"
)

// The environment of the PostgreSQL tests; run.sh sets all three.
const (
	envPostgres = "EMAILCONN_TEST_POSTGRES"         // a DSN
	envRequire  = "EMAILCONN_REQUIRE_POSTGRES"      // "1": fail, not skip, without a DSN
	envPgctl    = "EMAILCONN_TEST_PGCTL"            // a command: "$EMAILCONN_TEST_PGCTL stop|start"
	envChild    = "EMAILCONN_SQLSTORETEST_CHILD"    // set in the re-executed test binary
	envChildArg = "EMAILCONN_SQLSTORETEST_CHILDARG" // the child's orders
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// postgresDSN returns the DSN of the test PostgreSQL, or skips t with the
// way to get one (or fails it, when EMAILCONN_REQUIRE_POSTGRES=1: in CI a
// missing server must not pass as a skip).
func postgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(envPostgres)
	if dsn == "" {
		msg := envPostgres + " is not set: run internal/sqlstoretest/run.sh, which starts a throwaway PostgreSQL and sets it"
		if os.Getenv(envRequire) == "1" {
			t.Fatal(msg + " (" + envRequire + "=1: required)")
		}
		t.Skip(msg)
	}
	return dsn
}

// openPostgres opens the test PostgreSQL, closed when t ends.
func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", postgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteDSN is the DSN of a SQLite file shared by several connections and
// processes: a busy timeout and WAL, as NewSQLStore's doc advises.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
}

// openSQLite opens a new SQLite file in t's temporary directory.
func openSQLite(t testing.TB) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db := openSQLitePath(t, path)
	return db, path
}

func openSQLitePath(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newStore(t testing.TB, db *sql.DB) *emailconn.SQLStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := emailconn.NewSQLStore(ctx, db)
	if err != nil {
		t.Fatalf("NewSQLStore: %v", err)
	}
	return s
}

// dialects are the databases a test runs on: SQLite always, PostgreSQL
// when there is one (else that subtest skips or fails, see postgresDSN).
var dialects = []struct {
	name string
	open func(t testing.TB) (*sql.DB, string) // the DB, and the DSN a child process opens
}{
	{"SQLite", func(t testing.TB) (*sql.DB, string) {
		db, path := openSQLite(t)
		return db, sqliteDSN(path)
	}},
	{"PostgreSQL", func(t testing.TB) (*sql.DB, string) {
		return openPostgres(t), postgresDSN(t)
	}},
}

func driverOf(dsn string) string {
	if strings.HasPrefix(dsn, "file:") {
		return "sqlite"
	}
	return "pgx"
}
