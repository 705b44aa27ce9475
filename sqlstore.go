package emailconn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn/internal/memstore"
)

// SQLStore is the Store of this package, on the engine's own database:
// PostgreSQL (the engine's database, shared by all its nodes) or SQLite
// (an embedded default for one machine whose state should survive a
// restart). It keeps leases in the table emailconn_leases and records in
// emailconn_records (the README's "Several engine nodes" section lists
// their columns), which NewSQLStore creates when they are absent.
//
// Every method is one SQL statement, one round trip, that decides
// atomically however many processes use the tables at once: an INSERT … ON
// CONFLICT … DO UPDATE … WHERE the lease has expired, or an UPDATE … WHERE
// the version is still the one read. No lock and no transaction outlives
// the statement. Times are the database server's (now() on PostgreSQL, the
// time of the SQLite process), so the nodes' clocks need not agree. Expired
// rows mean nothing and are deleted lazily: NewSQLStore, and at most once a
// minute one call, also run a bounded DELETE of expired rows, so the tables
// do not grow for ever.
//
// The zero value is not usable: its methods return an error; call
// NewSQLStore. A SQLStore is safe for concurrent use by many goroutines,
// and several SQLStores (in one process or many) may share the tables.
//
// Errors start with "emailconn: store: ", name the method and key, and wrap
// the driver's error (and the context's, when it ended); they never contain
// a stored value. On SQLite, SQLITE_BUSY and SQLITE_LOCKED (another
// connection is writing) are retried until ctx ends; set a busy_timeout
// on the DSN all the same (see NewSQLStore). On PostgreSQL, a
// serialization failure or deadlock (40001, 40P01: only under a stricter
// default isolation than READ COMMITTED) is retried the same way.
type SQLStore struct {
	db        *sql.DB
	dialect   string // "postgres" or "sqlite"
	q         *sqlQueries
	nextSweep atomic.Int64 // unix nanoseconds of this process's clock
	sweepLeft atomic.Bool  // the last sweep deleted a full batch
}

// NewSQLStore returns a Store on db, a PostgreSQL (12 or later) or SQLite
// (3.42 or later) database that the engine opened with its own driver (the
// library imports none). It is tested with pgx's database/sql driver
// (github.com/jackc/pgx/v5/stdlib) and modernc.org/sqlite; it recognises
// lib/pq and mattn/go-sqlite3 too, and any other driver by asking the
// database. It creates the tables and their indexes when absent (CREATE
// TABLE IF NOT EXISTS: the database user needs that right once; nodes
// starting at once are fine). It does not close db, nor change the pool's
// settings.
//
// On PostgreSQL the tables go to the first schema of the connection's
// search_path: to give them a schema of their own, create it and put it
// first on the DSN, e.g. "postgres://…/engine?search_path=emailconn".
// Behind PgBouncer in transaction mode, open db without prepared
// statements (pgx: "default_query_exec_mode=exec" on the DSN).
// On SQLite, open the file with a busy timeout and in WAL mode when
// several processes share it, e.g. modernc.org/sqlite's
// "file:state.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)".
//
// NewSQLStore returns an error, starting "emailconn: store: ", when db is
// nil, unreachable (ctx bounds the wait), neither PostgreSQL nor SQLite
// (the error names the driver), or refuses to create the tables.
func NewSQLStore(ctx context.Context, db *sql.DB) (*SQLStore, error) {
	if db == nil {
		return nil, errors.New("emailconn: store: NewSQLStore: the *sql.DB is nil")
	}
	dialect, err := sqlDialect(ctx, db)
	if err != nil {
		return nil, err
	}
	s := &SQLStore{db: db, dialect: dialect, q: queries[dialect]}
	for i, stmt := range s.q.create {
		// Two nodes starting at once may race on CREATE TABLE IF NOT
		// EXISTS (PostgreSQL then reports a duplicate pg_type row): the
		// second try sees the table.
		for attempt := 1; ; attempt++ {
			err = s.retry(ctx, func() error {
				_, err := db.ExecContext(ctx, stmt)
				return err
			})
			if err == nil || attempt == 3 || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("emailconn: store: creating the tables (statement %d): %w", i+1, withCtx(ctx, err))
		}
	}
	s.nextSweep.Store(time.Now().Add(sweepEvery).UnixNano())
	s.sweepOnce(ctx) // what the nodes left while none ran
	return s, nil
}

// String names the store and its database: "SQLStore(postgres)" or
// "SQLStore(sqlite)".
func (s *SQLStore) String() string {
	if s == nil || s.dialect == "" {
		return "SQLStore(none)"
	}
	return "SQLStore(" + s.dialect + ")"
}

// Acquire implements Store.Acquire in one statement: it picks a free slot
// at random (so concurrent callers seldom pick the same one) and takes it
// with an INSERT … ON CONFLICT DO UPDATE WHERE the lease there has expired.
// When another caller took that slot first, it tries again, at most 16
// times in all; then it reports the slots as held with a wait of one
// millisecond. On SQLite, a key whose slots are all held costs a second
// statement, which reads the wait.
func (s *SQLStore) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	if err := s.usable(); err != nil {
		return -1, 0, err
	}
	if err := memstore.CheckLease(key, limit, owner, ttl); err != nil {
		return -1, 0, err
	}
	defer s.sweep(ctx)
	for attempt := 0; ; attempt++ {
		var slot, free, wait sql.NullInt64
		err := s.retry(ctx, func() error {
			return s.db.QueryRowContext(ctx, s.q.acquire, key, limit, owner, ttl.Microseconds()).Scan(&slot, &free, &wait)
		})
		if errors.Is(err, sql.ErrNoRows) { // SQLite's INSERT … RETURNING took nothing
			err = nil
		}
		if err != nil {
			return -1, 0, storeErr(ctx, "acquire", key, err)
		}
		if slot.Valid {
			return int(slot.Int64), 0, nil
		}
		if s.q.waitAfter != "" && !(free.Valid && free.Int64 > 0) {
			// SQLite: the INSERT took nothing, every slot is held;
			// ask how long for (a second statement, off the fast path).
			err := s.retry(ctx, func() error {
				return s.db.QueryRowContext(ctx, s.q.waitAfter, key, limit).Scan(&wait)
			})
			if err != nil {
				return -1, 0, storeErr(ctx, "acquire", key, err)
			}
		}
		switch {
		case wait.Valid && !(free.Valid && free.Int64 > 0):
			return -1, max(time.Duration(wait.Int64)*time.Microsecond, time.Microsecond), nil
		case attempt+1 >= min(limit+2, maxAcquireAttempts):
			// Lost the race for a free slot every time: report the
			// slots as held, briefly.
			return -1, time.Millisecond, nil
		}
		// A free slot was taken by another caller between the read and
		// the write, or the last lease expired meanwhile: again.
	}
}

// Renew implements Store.Renew with an UPDATE of owner's unexpired lease.
func (s *SQLStore) Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error) {
	if err := s.usable(); err != nil {
		return false, err
	}
	if err := memstore.CheckSlot(key, slot, owner, ttl, true); err != nil {
		return false, err
	}
	defer s.sweep(ctx)
	n, err := s.exec(ctx, s.q.renew, key, slot, owner, ttl.Microseconds())
	if err != nil {
		return false, storeErr(ctx, "renew", key, err)
	}
	return n == 1, nil
}

// Release implements Store.Release with a DELETE of owner's lease.
func (s *SQLStore) Release(ctx context.Context, key string, slot int, owner string) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := memstore.CheckSlot(key, slot, owner, 0, false); err != nil {
		return err
	}
	defer s.sweep(ctx)
	if _, err := s.exec(ctx, s.q.release, key, slot, owner); err != nil {
		return storeErr(ctx, "release", key, err)
	}
	return nil
}

// Load implements Store.Load with a SELECT of the unexpired record.
func (s *SQLStore) Load(ctx context.Context, key string) ([]byte, int64, error) {
	if err := s.usable(); err != nil {
		return nil, 0, err
	}
	if err := memstore.CheckKey(key); err != nil {
		return nil, 0, err
	}
	defer s.sweep(ctx)
	var value []byte
	var version int64
	err := s.retry(ctx, func() error {
		return s.db.QueryRowContext(ctx, s.q.load, key).Scan(&value, &version)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, 0, nil
	case err != nil:
		return nil, 0, storeErr(ctx, "load", key, err)
	case value == nil:
		value = []byte{} // an empty value, which a driver may store as NULL
	}
	return value, version, nil
}

// Swap implements Store.Swap: version 0 with an INSERT … ON CONFLICT DO
// UPDATE WHERE the record there has expired, any other with an UPDATE
// WHERE the version is still version.
func (s *SQLStore) Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error) {
	if err := s.usable(); err != nil {
		return false, err
	}
	if err := memstore.CheckSwap(key, version, ttl); err != nil {
		return false, err
	}
	defer s.sweep(ctx)
	if value == nil {
		value = []byte{}
	}
	var n int64
	var err error
	if version == 0 {
		n, err = s.exec(ctx, s.q.create1, key, value, ttl.Microseconds())
	} else {
		n, err = s.exec(ctx, s.q.swap, key, version, value, ttl.Microseconds())
	}
	if err != nil {
		return false, storeErr(ctx, "swap", key, err)
	}
	return n == 1, nil
}

func (s *SQLStore) usable() error {
	if s == nil || s.db == nil {
		return errors.New("emailconn: store: the SQLStore was not made by NewSQLStore")
	}
	return nil
}

// exec runs a statement and returns the rows it affected.
func (s *SQLStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.retry(ctx, func() error {
		res, err := s.db.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// retry runs f again while it fails with an error that means "try again"
// (SQLITE_BUSY, SQLITE_LOCKED; PostgreSQL's 40001 and 40P01), with a
// growing pause, until ctx ends. The statement of such a failure changed
// nothing.
func (s *SQLStore) retry(ctx context.Context, f func() error) error {
	return retryTransient(ctx, f)
}

func retryTransient(ctx context.Context, f func() error) error {
	pause := time.Millisecond
	for {
		err := f()
		if err == nil || !transient(err) {
			return err
		}
		t := time.NewTimer(pause/2 + rand.N(pause/2+1)) // jitter: retries do not collide again
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

func transient(err error) bool {
	var coder interface{ Code() int } // modernc.org/sqlite's *sqlite.Error
	if errors.As(err, &coder) {
		switch coder.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED, and their extended codes
			return true
		}
	}
	var state interface{ SQLState() string } // pgx's *pgconn.PgError
	if errors.As(err, &state) {
		switch state.SQLState() {
		case "40001", "40P01":
			return true
		}
	}
	// mattn/go-sqlite3 and drivers without those methods.
	msg := err.Error()
	return strings.Contains(msg, "database is locked") || strings.Contains(msg, "SQLITE_BUSY")
}

// maxAcquireAttempts bounds Acquire's statements when other callers keep
// taking the free slot it picked.
const maxAcquireAttempts = 16

// sweepEvery is how often (at most) a call also deletes expired rows.
const sweepEvery = time.Minute

// sweep deletes up to a batch of expired leases and records, when the last
// sweep is sweepEvery ago (or left rows behind), after the call's own
// statement: two extra statements on one call a minute. NewSQLStore sweeps
// once too. Its errors are
// dropped: the call's decision is made, and the next sweep tries again.
func (s *SQLStore) sweep(ctx context.Context) {
	now := time.Now().UnixNano()
	next := s.nextSweep.Load()
	if now < next && !s.sweepLeft.Load() {
		return
	}
	if !s.nextSweep.CompareAndSwap(next, now+int64(sweepEvery)) {
		return // another goroutine sweeps
	}
	s.sweepOnce(ctx)
}

// sweepOnce deletes up to sweepBatch expired leases and as many records.
func (s *SQLStore) sweepOnce(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	full := false
	for _, stmt := range []string{s.q.sweepLeases, s.q.sweepRecords} {
		res, err := s.db.ExecContext(ctx, stmt, sweepBatch)
		if err != nil {
			continue
		}
		if n, err := res.RowsAffected(); err == nil && n == sweepBatch {
			full = true
		}
	}
	s.sweepLeft.Store(full)
}

// sweepBatch bounds the rows one sweep deletes, so that no call waits long.
const sweepBatch = 500

// storeErr wraps err from the database for op on key. It adds ctx's error
// when ctx ended and the driver's error does not say so. Keys are not
// secrets; values never appear here.
func storeErr(ctx context.Context, op, key string, err error) error {
	return fmt.Errorf("emailconn: store: %s %q: %w", op, key, withCtx(ctx, err))
}

func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// sqlDialect tells PostgreSQL from SQLite: from the driver's type when it
// is a known one, else by asking the database. A PostgreSQL-speaking
// database that is not PostgreSQL (its version() says otherwise) is
// refused.
func sqlDialect(ctx context.Context, db *sql.DB) (string, error) {
	driver := "unknown driver"
	if d := db.Driver(); d != nil {
		driver = reflect.TypeOf(d).String()
	}
	var hint string
	switch driver {
	case "*stdlib.Driver", "*pq.Driver":
		hint = "postgres"
	case "*sqlite.Driver", "*sqlite3.SQLiteDriver":
		hint = "sqlite"
	}
	var version string
	var pgErr error
	if hint != "sqlite" {
		err := retryTransient(ctx, func() error {
			return db.QueryRowContext(ctx, "SELECT version()").Scan(&version)
		})
		pgErr = err
		switch {
		case err == nil && strings.HasPrefix(version, "PostgreSQL "):
			return "postgres", nil
		case err == nil:
			return "", fmt.Errorf("emailconn: store: the database (%s) is neither PostgreSQL nor SQLite: version() is %q", driver, version)
		case hint == "postgres" || ctx.Err() != nil:
			return "", fmt.Errorf("emailconn: store: connecting to PostgreSQL (%s): %w", driver, withCtx(ctx, err))
		}
	}
	err := retryTransient(ctx, func() error {
		return db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&version)
	})
	switch {
	case err == nil && sqliteAtLeast(version, 3, 42):
		return "sqlite", nil
	case err == nil:
		return "", fmt.Errorf("emailconn: store: SQLite %s is older than 3.42 (%s)", version, driver)
	case hint == "sqlite" || ctx.Err() != nil:
		return "", fmt.Errorf("emailconn: store: opening SQLite (%s): %w", driver, withCtx(ctx, err))
	}
	return "", fmt.Errorf("emailconn: store: the database (%s) is neither PostgreSQL nor SQLite: SELECT version(): %w; SELECT sqlite_version(): %w", driver, pgErr, err)
}

func sqliteAtLeast(version string, major, minor int) bool {
	var a, b int
	if _, err := fmt.Sscanf(version, "%d.%d", &a, &b); err != nil {
		return false
	}
	return a > major || a == major && b >= minor
}

// sqlQueries are the statements of one dialect. Arguments: key, then the
// method's others in order; ttls in microseconds.
type sqlQueries struct {
	create                    []string
	acquire                   string // → slot taken or NULL, free slots seen, wait µs or NULL
	waitAfter                 string // SQLite: the wait when acquire took nothing
	renew, release            string
	load, create1, swap       string
	sweepLeases, sweepRecords string
}

var queries = map[string]*sqlQueries{"postgres": pgQueries, "sqlite": sqliteQueries}

// PostgreSQL. Times are now(): the start of the statement's transaction,
// which is the statement itself (autocommit), one value throughout it.
// clock_timestamp() would move while a statement waits for a row lock;
// now() only ever judges a lease as held a little longer, and a new lease
// as ending a little sooner, than the real time would: both safe, and the
// caller measures its lease from before its call anyway.
// The acquire statement reads the free slots from its snapshot, then
// INSERT … ON CONFLICT DO UPDATE decides on the newest version of the slot
// (READ COMMITTED locks and re-checks it), so two callers never both take
// one slot; the loser sees free > 0 and no slot, and tries again.
// emailconn_leases has no index on expires_at: the table stays small (live
// keys × their slots), the sweep's scan of it once a minute is cheap, and
// without one an Acquire or Renew that rewrites a row is a HOT update (no
// index changes). emailconn_records, which holds days of ledger records,
// has one for the sweep.
var pgQueries = &sqlQueries{
	create: []string{
		`CREATE TABLE IF NOT EXISTS emailconn_leases (
	key text NOT NULL,
	slot integer NOT NULL,
	owner text NOT NULL,
	expires_at timestamptz NOT NULL,
	PRIMARY KEY (key, slot))`,
		`CREATE TABLE IF NOT EXISTS emailconn_records (
	key text PRIMARY KEY,
	version bigint NOT NULL,
	value bytea,
	expires_at timestamptz)`,
		`CREATE INDEX IF NOT EXISTS emailconn_records_expires_at ON emailconn_records (expires_at) WHERE expires_at IS NOT NULL`,
	},
	acquire: `WITH free AS (
	SELECT s.n FROM generate_series(0, $2::integer - 1) AS s(n)
	WHERE NOT EXISTS (SELECT 1 FROM emailconn_leases h WHERE h.key = $1 AND h.slot = s.n AND h.expires_at > now())
	ORDER BY random() LIMIT 1
), took AS (
	INSERT INTO emailconn_leases AS l (key, slot, owner, expires_at)
	SELECT $1, free.n, $3, now() + $4::bigint * interval '1 microsecond' FROM free
	ON CONFLICT (key, slot) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
	WHERE l.expires_at <= now()
	RETURNING l.slot
)
SELECT (SELECT slot FROM took), (SELECT count(*) FROM free),
	(SELECT (extract(epoch FROM min(h.expires_at) - now()) * 1000000)::bigint
	 FROM emailconn_leases h WHERE h.key = $1 AND h.slot < $2::integer AND h.expires_at > now())`,
	renew: `UPDATE emailconn_leases SET expires_at = now() + $4::bigint * interval '1 microsecond'
	WHERE key = $1 AND slot = $2 AND owner = $3 AND expires_at > now()`,
	release: `DELETE FROM emailconn_leases WHERE key = $1 AND slot = $2 AND owner = $3`,
	load: `SELECT value, version FROM emailconn_records
	WHERE key = $1 AND (expires_at IS NULL OR expires_at > now())`,
	create1: `INSERT INTO emailconn_records AS r (key, version, value, expires_at)
	VALUES ($1, 1, $2, CASE WHEN $3::bigint = 0 THEN NULL ELSE now() + $3::bigint * interval '1 microsecond' END)
	ON CONFLICT (key) DO UPDATE SET version = 1, value = excluded.value, expires_at = excluded.expires_at
	WHERE r.expires_at <= now()`,
	swap: `UPDATE emailconn_records SET version = version + 1, value = $3,
	expires_at = CASE WHEN $4::bigint = 0 THEN NULL ELSE now() + $4::bigint * interval '1 microsecond' END
	WHERE key = $1 AND version = $2 AND (expires_at IS NULL OR expires_at > now())`,
	// SKIP LOCKED: the sweep never waits for, nor blocks, a live call.
	sweepLeases: `DELETE FROM emailconn_leases WHERE (key, slot) IN (
	SELECT key, slot FROM emailconn_leases WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
	sweepRecords: `DELETE FROM emailconn_records WHERE key IN (
	SELECT key FROM emailconn_records WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
}

// sqliteNow is the time in microseconds since 1970: unixepoch('subsec') has
// millisecond precision (SQLite's clock) and is one value within a
// statement.
const sqliteNow = `CAST(unixepoch('subsec') * 1000000 AS INTEGER)`

// SQLite. Writers take the database's lock for the whole statement, so
// each statement decides alone; the statements are those of PostgreSQL
// where SQLite has them (no data-modifying WITH: the wait is a second
// statement, only when every slot is held).
var sqliteQueries = &sqlQueries{
	create: []string{
		`CREATE TABLE IF NOT EXISTS emailconn_leases (
	key TEXT NOT NULL,
	slot INTEGER NOT NULL,
	owner TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (key, slot))`,
		`CREATE TABLE IF NOT EXISTS emailconn_records (
	key TEXT PRIMARY KEY,
	version INTEGER NOT NULL,
	value BLOB,
	expires_at INTEGER)`,
		`CREATE INDEX IF NOT EXISTS emailconn_records_expires_at ON emailconn_records (expires_at) WHERE expires_at IS NOT NULL`,
	},
	acquire: `WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?2)
INSERT INTO emailconn_leases (key, slot, owner, expires_at)
SELECT ?1, s.n, ?3, ` + sqliteNow + ` + ?4 FROM s
WHERE NOT EXISTS (SELECT 1 FROM emailconn_leases h WHERE h.key = ?1 AND h.slot = s.n AND h.expires_at > ` + sqliteNow + `)
ORDER BY random() LIMIT 1
ON CONFLICT (key, slot) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE emailconn_leases.expires_at <= ` + sqliteNow + `
RETURNING slot, 0, NULL`,
	waitAfter: `SELECT min(expires_at) - ` + sqliteNow + ` FROM emailconn_leases
	WHERE key = ?1 AND slot < ?2 AND expires_at > ` + sqliteNow,
	renew: `UPDATE emailconn_leases SET expires_at = ` + sqliteNow + ` + ?4
	WHERE key = ?1 AND slot = ?2 AND owner = ?3 AND expires_at > ` + sqliteNow,
	release: `DELETE FROM emailconn_leases WHERE key = ?1 AND slot = ?2 AND owner = ?3`,
	load: `SELECT value, version FROM emailconn_records
	WHERE key = ?1 AND (expires_at IS NULL OR expires_at > ` + sqliteNow + `)`,
	create1: `INSERT INTO emailconn_records (key, version, value, expires_at)
	VALUES (?1, 1, ?2, CASE WHEN ?3 = 0 THEN NULL ELSE ` + sqliteNow + ` + ?3 END)
	ON CONFLICT (key) DO UPDATE SET version = 1, value = excluded.value, expires_at = excluded.expires_at
	WHERE emailconn_records.expires_at <= ` + sqliteNow,
	swap: `UPDATE emailconn_records SET version = version + 1, value = ?3,
	expires_at = CASE WHEN ?4 = 0 THEN NULL ELSE ` + sqliteNow + ` + ?4 END
	WHERE key = ?1 AND version = ?2 AND (expires_at IS NULL OR expires_at > ` + sqliteNow + `)`,
	sweepLeases: `DELETE FROM emailconn_leases WHERE rowid IN (
	SELECT rowid FROM emailconn_leases WHERE expires_at <= ` + sqliteNow + ` LIMIT ?1)`,
	sweepRecords: `DELETE FROM emailconn_records WHERE rowid IN (
	SELECT rowid FROM emailconn_records WHERE expires_at <= ` + sqliteNow + ` LIMIT ?1)`,
}
