package sqlstoretest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/emailconn/emailconn"
)

// pgctl runs "$EMAILCONN_TEST_PGCTL verb" (run.sh's stop and start of the
// test server), or skips t when there is no such command.
func pgctl(t *testing.T, verb string) {
	t.Helper()
	cmd := os.Getenv(envPgctl)
	if cmd == "" {
		msg := envPgctl + " is not set: run internal/sqlstoretest/run.sh, which can stop and start its server"
		if os.Getenv(envRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command(cmd, verb).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", cmd, verb, err, out)
	}
}

// TestPostgresStoppedAndStarted: with the server stopped, every method
// returns an error promptly (bounded by its context) that starts
// "emailconn: store: " and wraps the driver's error; once the server is
// back, the same SQLStore works again, on the pool's new connections.
func TestPostgresStoppedAndStarted(t *testing.T) {
	postgresDSN(t)
	if os.Getenv(envPgctl) == "" {
		pgctl(t, "") // skips or fails with the reason
	}
	db := openPostgres(t)
	s := newStore(t, db)
	ctx := context.Background()
	key := "sqlstoretest/restart/" + time.Now().Format(time.RFC3339Nano)
	secret := []byte("refresh-token-value-never-in-errors")
	if ok, err := s.Swap(ctx, key, 0, secret, 0); err != nil || !ok {
		t.Fatalf("Swap before the stop = %v, %v", ok, err)
	}
	slot, _, err := s.Acquire(ctx, key, 3, "node", time.Minute)
	if err != nil || slot < 0 {
		t.Fatalf("Acquire before the stop = %d, %v", slot, err)
	}

	pgctl(t, "stop")
	stopped := true
	t.Cleanup(func() {
		if stopped { // the test failed half-way: the other tests need the server
			pgctl(t, "start")
		}
	})

	const bound = 2 * time.Second
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Acquire", func(ctx context.Context) error { _, _, err := s.Acquire(ctx, key, 3, "node", time.Minute); return err }},
		{"Renew", func(ctx context.Context) error { _, err := s.Renew(ctx, key, slot, "node", time.Minute); return err }},
		{"Release", func(ctx context.Context) error { return s.Release(ctx, key, slot, "node") }},
		{"Load", func(ctx context.Context) error { _, _, err := s.Load(ctx, key); return err }},
		{"Swap", func(ctx context.Context) error { _, err := s.Swap(ctx, key, 1, secret, 0); return err }},
		{"NewSQLStore", func(ctx context.Context) error {
			fresh, err := sql.Open("pgx", postgresDSN(t))
			if err != nil {
				return err
			}
			defer fresh.Close()
			_, err = emailconn.NewSQLStore(ctx, fresh)
			return err
		}},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		t0 := time.Now()
		err := c.call(ctx)
		took := time.Since(t0)
		cancel()
		switch {
		case err == nil:
			t.Errorf("%s with the server stopped: no error", c.name)
			continue
		case took > bound+time.Second:
			t.Errorf("%s with the server stopped took %v, more than its context's %v", c.name, took, bound)
		case !strings.HasPrefix(err.Error(), "emailconn: store: "):
			t.Errorf("%s: error %q does not start \"emailconn: store: \"", c.name, err)
		case strings.Contains(err.Error(), string(secret)):
			t.Errorf("%s: the error shows the stored value: %q", c.name, err)
		}
		var connect *pgconn.ConnectError
		var pgErr *pgconn.PgError
		if !errors.As(err, &connect) && !errors.As(err, &pgErr) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: error %q wraps neither pgconn's error nor the context's", c.name, err)
		}
		t.Logf("%s with the server stopped, after %v: %v", c.name, took.Round(time.Millisecond), err)
	}

	pgctl(t, "start")
	stopped = false
	// The same store, the same *sql.DB: database/sql dropped the dead
	// connections and opens new ones.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if v, version, err := s.Load(ctx, key); err != nil || string(v) != string(secret) || version != 1 {
		t.Fatalf("Load after the restart = version %d, %v; want the record written before the stop", version, err)
	}
	if ok, err := s.Renew(ctx, key, slot, "node", time.Minute); err != nil || !ok {
		t.Fatalf("Renew after the restart = %v, %v; want the lease taken before the stop", ok, err)
	}
	if ok, err := s.Swap(ctx, key, 1, []byte("v2"), 0); err != nil || !ok {
		t.Fatalf("Swap after the restart = %v, %v", ok, err)
	}
	if err := s.Release(ctx, key, slot, "node"); err != nil {
		t.Fatalf("Release after the restart: %v", err)
	}
	if got, _, err := s.Acquire(ctx, key, 1, "node", time.Minute); err != nil || got != 0 {
		t.Fatalf("Acquire after the restart = %d, %v", got, err)
	}
}
