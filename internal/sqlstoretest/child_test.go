package sqlstoretest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/emailconn/emailconn"
)

// orders are what the parent test gives a child process (as JSON in
// envChildArg).
type orders struct {
	Driver, DSN         string
	LeaseKey, RecordKey string
	Limit               int
	Goroutines, Rounds  int
	Increments          int
	Hold                time.Duration
}

// hold is one lease a child held, as the child saw it: taken at or before
// Start, released at or after End (wall clock, UnixNano, one machine).
type hold struct {
	Slot       int
	Start, End int64
}

// report is a child's one line of output.
type report struct {
	Holds      []hold
	Increments int
	Err        string
}

// childMain is the re-executed test binary: it opens the database, says
// "ready", waits for the parent's "go" on stdin, hammers the lease key and
// the record, and prints its report as JSON.
func childMain() int {
	var o orders
	if err := json.Unmarshal([]byte(os.Getenv(envChildArg)), &o); err != nil {
		fmt.Fprintln(os.Stderr, "child: orders:", err)
		return 2
	}
	rep := hammer(o)
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 2
	}
	return 0
}

func hammer(o orders) (rep report) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db, err := sql.Open(o.Driver, o.DSN)
	if err != nil {
		return report{Err: err.Error()}
	}
	defer db.Close()
	db.SetMaxOpenConns(o.Goroutines)
	s, err := emailconn.NewSQLStore(ctx, db)
	if err != nil {
		return report{Err: err.Error()}
	}
	fmt.Println("ready")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
		return report{Err: fmt.Sprintf("waiting for go: %q, %v", line, err)}
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if rep.Err == "" {
			rep.Err = err.Error()
		}
	}
	owner := fmt.Sprintf("pid%d", os.Getpid())
	for g := range o.Goroutines {
		wg.Go(func() {
			owner := owner + "/" + strconv.Itoa(g)
			for range o.Rounds {
				var slot int
				for {
					var wait time.Duration
					var err error
					slot, wait, err = s.Acquire(ctx, o.LeaseKey, o.Limit, owner, time.Minute)
					if err != nil {
						fail(err)
						return
					}
					if slot >= 0 {
						break
					}
					time.Sleep(min(wait, 2*time.Millisecond))
				}
				start := time.Now().UnixNano()
				time.Sleep(o.Hold) // the session's work
				end := time.Now().UnixNano()
				if err := s.Release(ctx, o.LeaseKey, slot, owner); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				rep.Holds = append(rep.Holds, hold{Slot: slot, Start: start, End: end})
				mu.Unlock()
			}
			for range o.Increments {
				for {
					v, version, err := s.Load(ctx, o.RecordKey)
					if err != nil {
						fail(err)
						return
					}
					n := 0
					if v != nil {
						if n, err = strconv.Atoi(string(v)); err != nil {
							fail(err)
							return
						}
					}
					ok, err := s.Swap(ctx, o.RecordKey, version, []byte(strconv.Itoa(n+1)), 0)
					if err != nil {
						fail(err)
						return
					}
					if ok {
						mu.Lock()
						rep.Increments++
						mu.Unlock()
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return rep
}
