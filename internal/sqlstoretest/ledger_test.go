package sqlstoretest

// The delivery ledger (issue 16) on a real database shared by two
// processes: the fault matrix of internal/ledgertest with the attempts of
// the engine's activity alternating between this test process and a
// re-executed copy of the test binary, the store round trips a keyed send
// adds, and benchmarks of a send with and without a key.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/ledgertest"
	"github.com/emailconn/emailconn/internal/smtptest"
	"github.com/emailconn/emailconn/internal/storeseam"
)

// envLedgerChild holds the orders of a re-executed test binary that makes
// one attempt of the ledger matrix: see ledgerOrders.
const envLedgerChild = "EMAILCONN_LEDGER16_CHILD"

// ledgerOrders are what the child process does: one attempt of the
// activity through the server at Addr, with the ledger on the database.
type ledgerOrders struct {
	Driver, DSN, Addr, Key string
	Big                    bool
	Lease                  time.Duration // the ledger's lease; zero: the default
}

// init runs the child's attempt, before TestMain, when the binary was
// re-executed for it, and exits with its outcome as JSON on stdout.
func init() {
	orders := os.Getenv(envLedgerChild)
	if orders == "" {
		return
	}
	out, err := ledgerChild(orders)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ledger child:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
	os.Exit(0)
}

func ledgerChild(orders string) (ledgertest.Outcome, error) {
	var o ledgerOrders
	if err := json.Unmarshal([]byte(orders), &o); err != nil {
		return ledgertest.Outcome{}, err
	}
	db, err := sql.Open(o.Driver, o.DSN)
	if err != nil {
		return ledgertest.Outcome{}, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := emailconn.NewSQLStore(ctx, db)
	if err != nil {
		return ledgertest.Outcome{}, err
	}
	opts := ledgertest.Options(st)
	storeseam.Set(opts, storeseam.Seams{LeaseTTL: o.Lease})
	s, err := emailconn.NewSender(ledgertest.Connection(o.Addr), opts)
	if err != nil {
		return ledgertest.Outcome{}, err
	}
	defer s.Close()
	return ledgertest.Try(ctx, s, o.Key, o.Big), nil
}

// ledgerChildCmd is the command of a second process that makes one
// attempt.
func ledgerChildCmd(t *testing.T, ctx context.Context, o ledgerOrders) *exec.Cmd {
	t.Helper()
	orders, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLedgerChild+"="+string(orders))
	return cmd
}

// runLedgerChild makes one attempt in a second process and returns its
// outcome.
func runLedgerChild(t *testing.T, o ledgerOrders) ledgertest.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := ledgerChildCmd(t, ctx, o)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, stderr.String())
	}
	var out ledgertest.Outcome
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("child process output %q: %v", stdout, err)
	}
	return out
}

// uniqueKey is a key no earlier run used: the database outlives a run.
func uniqueKey(t testing.TB, name string) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "wf-16/" + name + "/" + hex.EncodeToString(b[:])
}

// TestIssue16_LedgerTwoProcesses: the connection cut at each point of the
// first attempt, and the engine retrying three times with the same key,
// the attempts alternating between this process and a second one, which
// share the ledger on the database: no duplicate where the ledger says
// accepted, every cut after the final dot ErrDeliveryUnknown with the
// first process's record in both, a cut before the final dot delivered
// exactly once.
func TestIssue16_LedgerTwoProcesses(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db, dsn := d.open(t)
			st := newStore(t, db)
			for _, c := range ledgertest.Cuts() {
				if c.Chunking && d.name == "SQLite" {
					continue // the BDAT cuts on the engine's shared database only: each costs two processes
				}
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					srv := ledgertest.Server(t, c)
					key := uniqueKey(t, c.Name)
					var outs []ledgertest.Outcome
					for i := range ledgertest.Attempts {
						if i%2 == 0 {
							outs = append(outs, ledgertest.Send(context.Background(), srv.Addr(), st, key, c.Big))
						} else {
							outs = append(outs, runLedgerChild(t, ledgerOrders{Driver: driverOf(dsn), DSN: dsn, Addr: srv.Addr(), Key: key, Big: c.Big}))
						}
					}
					ledgertest.Check(t, c, outs, ledgertest.Delivered(srv))
					if outs[1].Pid == outs[0].Pid || outs[1].Pid == 0 {
						t.Errorf("attempts 1 and 2 made by processes %d and %d; want two", outs[0].Pid, outs[1].Pid)
					}
					if c.Unknown {
						for i, o := range outs {
							if o.Delivery != nil && outs[0].Delivery != nil && o.Delivery.Node != outs[0].Delivery.Node {
								t.Errorf("attempt %d: record of node %s; want the first attempt's, %s", i+1, o.Delivery.Node, outs[0].Delivery.Node)
							}
						}
						if srv.Sessions() != 1 {
							t.Errorf("%d sessions: a retry of an unknown delivery reached the server", srv.Sessions())
						}
					}
				})
			}
		})
	}
}

// TestIssue16_LedgerCrashAfterAccept: the one window a client cannot
// close. A second process sends a message with a key; the server accepts
// it, and the process is killed (SIGKILL) before it could record the
// outcome. Its record stays "sending"; the engine's retries from this
// process wait for its lease to pass and then get ErrDeliveryUnknown with
// the dead process's record: the message is delivered once, never twice.
func TestIssue16_LedgerCrashAfterAccept(t *testing.T) {
	const lease = time.Second
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			db, dsn := d.open(t)
			st := newStore(t, db)
			arrived, killed := make(chan struct{}), make(chan struct{})
			var once sync.Once
			srv := smtptest.NewServer(t, smtptest.Options{DataHook: func(string, []string, []byte) *smtp.SMTPError {
				once.Do(func() { close(arrived); <-killed })
				return nil // accepted: recorded, and the 250 goes to a dead process
			}})
			key := uniqueKey(t, "crash")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := ledgerChildCmd(t, ctx, ledgerOrders{Driver: driverOf(dsn), DSN: dsn, Addr: srv.Addr(), Key: key, Lease: lease})
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-arrived:
			case <-ctx.Done():
				t.Fatal("the child's message never arrived")
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			close(killed)
			msgs, _ := waitMessages(ctx, srv, 1)
			if msgs != 1 {
				t.Fatalf("%d messages; want the child's", msgs)
			}
			opts := ledgertest.Options(st)
			storeseam.Set(opts, storeseam.Seams{LeaseTTL: lease})
			s, err := emailconn.NewSender(ledgertest.Connection(srv.Addr()), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for i := range ledgertest.Attempts - 1 {
				start := time.Now()
				o := ledgertest.Try(ctx, s, key, false)
				if !o.Unknown || o.Delivery == nil || o.Delivery.State != "unknown" || o.Delivery.Node == "" ||
					!strings.Contains(o.Delivery.Detail, "stopped renewing") {
					t.Fatalf("retry %d: %+v; want ErrDeliveryUnknown with the dead process's record", i+1, o)
				}
				if i == 0 {
					t.Logf("the first retry waited %v for the dead process's lease (%v)", time.Since(start).Round(time.Millisecond), lease)
				}
			}
			if n := len(ledgertest.Delivered(srv)); n != 1 || srv.Sessions() != 1 {
				t.Errorf("%d messages in %d sessions; want the child's only", n, srv.Sessions())
			}
		})
	}
}

// waitMessages waits until srv has accepted n messages (it records one
// after its DataHook returned) and returns how many it has.
func waitMessages(ctx context.Context, srv *smtptest.Server, n int) (int, error) {
	for {
		if got := len(srv.Messages()); got >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return len(srv.Messages()), ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ledgerCounter counts the calls a send makes of a Store for the delivery
// ledger's keys (the connection's session slots, shared through the same
// store, are not counted).
type ledgerCounter struct {
	emailconn.Store
	calls atomic.Int32
}

func (c *ledgerCounter) count(key string) {
	if strings.HasPrefix(key, "delivery/") {
		c.calls.Add(1)
	}
}

func (c *ledgerCounter) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	c.count(key)
	return c.Store.Acquire(ctx, key, limit, owner, ttl)
}

func (c *ledgerCounter) Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error) {
	c.count(key)
	return c.Store.Renew(ctx, key, slot, owner, ttl)
}

func (c *ledgerCounter) Release(ctx context.Context, key string, slot int, owner string) error {
	c.count(key)
	return c.Store.Release(ctx, key, slot, owner)
}

func (c *ledgerCounter) Load(ctx context.Context, key string) ([]byte, int64, error) {
	c.count(key)
	return c.Store.Load(ctx, key)
}

func (c *ledgerCounter) Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error) {
	c.count(key)
	return c.Store.Swap(ctx, key, version, value, ttl)
}

// TestIssue16_LedgerRoundTrips: on the database, a first send of a key
// that is accepted makes two ledger calls (the claim and the final write),
// one round trip each; its replay two and no SMTP; a send without a key
// none.
func TestIssue16_LedgerRoundTrips(t *testing.T) {
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			db, _ := d.open(t)
			cs := &ledgerCounter{Store: newStore(t, db)}
			srv := smtptest.NewServer(t, smtptest.Options{})
			s, err := emailconn.NewSender(ledgertest.Connection(srv.Addr()), &emailconn.Options{Store: cs})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			if _, err := s.Send(ctx, ledgertest.Message("", false)); err != nil {
				t.Fatal(err)
			}
			if n := cs.calls.Swap(0); n != 0 {
				t.Errorf("a send without a key: %d ledger calls", n)
			}
			key := uniqueKey(t, "round-trips")
			if rc, err := s.Send(ctx, ledgertest.Message(key, false)); err != nil || rc.Replayed {
				t.Fatal(rc, err)
			}
			if n := cs.calls.Swap(0); n != 2 {
				t.Errorf("first send of a key: %d ledger calls; want 2", n)
			}
			if rc, err := s.Send(ctx, ledgertest.Message(key, false)); err != nil || !rc.Replayed {
				t.Fatal(rc, err)
			}
			if n := cs.calls.Swap(0); n != 2 {
				t.Errorf("replay: %d ledger calls; want 2", n)
			}
			if len(srv.Messages()) != 2 {
				t.Errorf("%d messages; want 2", len(srv.Messages()))
			}
		})
	}
}

// TestIssue16_LedgerStoreDown: with the database closed, a send with a key
// fails with ErrStore before any SMTP.
func TestIssue16_LedgerStoreDown(t *testing.T) {
	db, _ := openSQLite(t)
	st := newStore(t, db)
	srv := smtptest.NewServer(t, smtptest.Options{})
	s, err := emailconn.NewSender(ledgertest.Connection(srv.Addr()), &emailconn.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db.Close()
	_, err = s.Send(context.Background(), ledgertest.Message(uniqueKey(t, "down"), false))
	if !errors.Is(err, emailconn.ErrStore) || !strings.Contains(err.Error(), "delivery ledger") || errors.Is(err, emailconn.ErrDeliveryUnknown) {
		t.Errorf("Send with the database closed = %v; want ErrStore from the ledger", err)
	}
	if srv.Sessions() != 0 {
		t.Errorf("%d sessions", srv.Sessions())
	}
}

// BenchmarkIssue16_LedgerSend compares a send with a new key each time
// (the ledger's common path: two round trips to the database) with the
// same send without a key, on each database, to the test server on
// loopback. Report the ratio of the key/… row to the nokey/… row of the
// same run.
func BenchmarkIssue16_LedgerSend(b *testing.B) {
	for _, d := range dialects {
		b.Run(d.name, func(b *testing.B) {
			db, _ := d.open(b)
			st := newStore(b, db)
			srv := smtptest.NewServer(b, smtptest.Options{})
			s, err := emailconn.NewSender(ledgertest.Connection(srv.Addr()), &emailconn.Options{Store: st})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			prefix := uniqueKey(b, "bench")
			ctx := context.Background()
			var n atomic.Int64 // keys stay new across -count runs
			for _, keyed := range []bool{false, true} {
				name := "nokey"
				if keyed {
					name = "key"
				}
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						key := ""
						if keyed {
							key = prefix + "/" + fmt.Sprint(n.Add(1))
						}
						if _, err := s.Send(ctx, ledgertest.Message(key, false)); err != nil {
							b.Fatal(err)
						}
					}
					srv.Reset()
				})
			}
		})
	}
}
