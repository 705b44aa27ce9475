package sqlstoretest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestProcesses: several OS processes (this test binary, re-executed) on
// one database hammer one limit-3 lease key and one compare-and-swap
// counter. Never more than 3 leases are held at once, no slot has two
// holders, and every increment is counted once.
func TestProcesses(t *testing.T) {
	const procs, limit = 4, 3
	all := append(dialects[:len(dialects):len(dialects)], struct {
		name string
		open func(t testing.TB) (*sql.DB, string)
	}{
		// No busy timeout: SQLite answers SQLITE_BUSY at once, and the
		// store's own retry has to carry the load.
		"SQLiteWithoutBusyTimeout", func(t testing.TB) (*sql.DB, string) {
			dsn := "file:" + filepath.Join(t.TempDir(), "state.db") + "?_pragma=journal_mode(WAL)"
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db, dsn
		},
	})
	for _, d := range all {
		t.Run(d.name, func(t *testing.T) {
			db, dsn := d.open(t)
			s := newStore(t, db) // creates the tables before the children race
			run := time.Now().UnixNano()
			o := orders{
				Driver: driverOf(dsn), DSN: dsn,
				LeaseKey:  fmt.Sprintf("sqlstoretest/processes/%d/sessions", run),
				RecordKey: fmt.Sprintf("sqlstoretest/processes/%d/counter", run),
				Limit:     limit, Goroutines: 6, Rounds: 15, Increments: 10,
				Hold: 300 * time.Microsecond,
			}
			if d.name == "SQLiteWithoutBusyTimeout" {
				o.Goroutines = 3 // every collision is a retry with a pause: keep it short under -race
			}
			arg, err := json.Marshal(o)
			if err != nil {
				t.Fatal(err)
			}
			type child struct {
				cmd    *exec.Cmd
				stdin  io.WriteCloser
				out    *bufio.Reader
				stderr bytes.Buffer
			}
			children := make([]*child, procs)
			for i := range children {
				c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
				c.cmd.Env = append(os.Environ(), envChild+"=hammer", envChildArg+"="+string(arg))
				c.cmd.Stderr = &c.stderr
				stdin, err := c.cmd.StdinPipe()
				if err != nil {
					t.Fatal(err)
				}
				stdout, err := c.cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := c.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				c.stdin, c.out = stdin, bufio.NewReader(stdout)
				children[i] = c
				t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
			}
			// All open and ready: go, at once.
			for i, c := range children {
				if line, err := c.out.ReadString('\n'); line != "ready\n" {
					t.Fatalf("child %d: %q, %v; stderr: %s", i, line, err, c.stderr.String())
				}
			}
			for _, c := range children {
				if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
					t.Fatal(err)
				}
			}
			var holds []hold
			increments := 0
			for i, c := range children {
				var rep report
				if err := json.NewDecoder(c.out).Decode(&rep); err != nil {
					t.Fatalf("child %d: report: %v; stderr: %s", i, err, c.stderr.String())
				}
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("child %d: %v; stderr: %s", i, err, c.stderr.String())
				}
				if rep.Err != "" {
					t.Errorf("child %d: %s", i, rep.Err)
				}
				holds = append(holds, rep.Holds...)
				increments += rep.Increments
			}
			if want := procs * o.Goroutines * o.Rounds; len(holds) != want {
				t.Errorf("%d leases held, want %d", len(holds), want)
			}
			if most := maxOverlap(holds); most > limit {
				t.Errorf("%d leases of a limit-%d key held at once across %d processes", most, limit, procs)
			} else {
				t.Logf("%d leases taken by %d processes, at most %d at once", len(holds), procs, most)
			}
			for slot := range limit + 1 {
				var mine []hold
				for _, h := range holds {
					if h.Slot == slot {
						mine = append(mine, h)
					}
				}
				if slot == limit && len(mine) > 0 {
					t.Errorf("slot %d taken of a limit-%d key", slot, limit)
				}
				slices.SortFunc(mine, func(a, b hold) int { return int(a.Start - b.Start) })
				for i := 1; i < len(mine); i++ {
					if mine[i].Start < mine[i-1].End {
						t.Errorf("slot %d held twice at once: %+v and %+v", slot, mine[i-1], mine[i])
					}
				}
			}
			want := procs * o.Goroutines * o.Increments
			v, version, err := s.Load(context.Background(), o.RecordKey)
			if err != nil {
				t.Fatal(err)
			}
			if increments != want || string(v) != strconv.Itoa(want) || version != int64(want) {
				t.Errorf("%d increments reported, counter %q at version %d; want %d of each", increments, v, version, want)
			}
		})
	}
}

// maxOverlap returns the most holds whose [Start, End] overlap at one time.
func maxOverlap(holds []hold) int {
	type event struct {
		at    int64
		delta int
	}
	var events []event
	for _, h := range holds {
		events = append(events, event{h.Start, +1}, event{h.End, -1})
	}
	slices.SortFunc(events, func(a, b event) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return a.delta - b.delta // ends first at one instant
	})
	n, most := 0, 0
	for _, e := range events {
		n += e.delta
		most = max(most, n)
	}
	return most
}
