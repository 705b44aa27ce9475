package sqlstoretest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestOneStatementPerCall counts the statements SQLStore sends, at the
// database/sql driver interface: one per call on the hot path (the
// "at most one round trip" of issues 15 and 16). Acquire on a full key is
// one on PostgreSQL and two on SQLite (its INSERT … RETURNING cannot also
// report the wait).
func TestOneStatementPerCall(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db0, dsn := d.open(t)
			var n atomic.Int64
			db := sql.OpenDB(&countingConnector{drv: db0.Driver(), dsn: dsn, n: &n})
			t.Cleanup(func() { db.Close() })
			s := newStore(t, db)
			ctx := context.Background()
			key := "sqlstoretest/statements/" + time.Now().Format(time.RFC3339Nano)
			fullWant := int64(1)
			if d.name == "SQLite" {
				fullWant = 2
			}
			var slot int
			for _, c := range []struct {
				name string
				want int64
				call func() error
			}{
				{"Acquire (a free slot)", 1, func() (err error) { slot, _, err = s.Acquire(ctx, key, 1, "a", time.Minute); return err }},
				{"Acquire (every slot held)", fullWant, func() error {
					got, _, err := s.Acquire(ctx, key, 1, "b", time.Minute)
					if err == nil && got != -1 {
						err = errors.New("took a held slot")
					}
					return err
				}},
				{"Renew", 1, func() error { _, err := s.Renew(ctx, key, slot, "a", time.Minute); return err }},
				{"Release", 1, func() error { return s.Release(ctx, key, slot, "a") }},
				{"Load (no record)", 1, func() error { _, _, err := s.Load(ctx, key); return err }},
				{"Swap (version 0)", 1, func() error { _, err := s.Swap(ctx, key, 0, []byte("v"), time.Hour); return err }},
				{"Load", 1, func() error { _, _, err := s.Load(ctx, key); return err }},
				{"Swap (version 1)", 1, func() error { _, err := s.Swap(ctx, key, 1, []byte("v2"), 0); return err }},
				{"Swap (stale)", 1, func() error { _, err := s.Swap(ctx, key, 1, []byte("v3"), 0); return err }},
			} {
				before := n.Load()
				if err := c.call(); err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if got := n.Load() - before; got != c.want {
					t.Errorf("%s sent %d statements, want %d", c.name, got, c.want)
				}
			}
		})
	}
}

// countingConnector opens the connections of drv and counts the queries
// and execs sent on them.
type countingConnector struct {
	drv driver.Driver
	dsn string
	n   *atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: c.n}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.drv }

type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return q.QueryContext(ctx, query, args)
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.n.Add(1)
	return e.ExecContext(ctx, query, args)
}

func (c *countingConn) CheckNamedValue(v *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(v)
	}
	return driver.ErrSkip
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}
