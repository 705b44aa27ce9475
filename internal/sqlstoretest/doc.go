// Package sqlstoretest runs emailconn.SQLStore against real databases:
// SQLite (modernc.org/sqlite, a temporary file, always) and PostgreSQL
// (pgx's database/sql driver, when EMAILCONN_TEST_POSTGRES holds a DSN;
// run.sh starts a throwaway server and sets it). It is a module of its own
// so that the library's go.mod names no database driver.
package sqlstoretest
