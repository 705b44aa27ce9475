package memstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/memstore"
	"github.com/emailconn/emailconn/internal/storetest"
	"github.com/emailconn/emailconn/internal/throttle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var _ emailconn.Store = (*memstore.Store)(nil)

// TestSweep: keys never used again are deleted, a few on each call, once
// expired, so the maps do not grow for ever; live ones are kept.
func TestSweep(t *testing.T) {
	clock := throttle.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := memstore.New(clock.Now)
	ctx := context.Background()
	for i := range 100 {
		key := "k" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, _, err := s.Acquire(ctx, key, 1, "o", time.Second); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Swap(ctx, key, 0, []byte("v"), time.Second); err != nil || !ok {
			t.Fatalf("Swap = %v, %v", ok, err)
		}
	}
	if l, r := s.Len(); l != 100 || r != 100 {
		t.Fatalf("Len = %d, %d, want 100, 100", l, r)
	}
	if _, _, err := s.Acquire(ctx, "live", 1, "o", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Swap(ctx, "live", 0, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	for range 1000 {
		if _, _, err := s.Load(ctx, "other"); err != nil {
			t.Fatal(err)
		}
	}
	if l, r := s.Len(); l != 1 || r != 1 {
		t.Fatalf("after 1000 calls Len = %d, %d, want the live 1, 1", l, r)
	}
}

// TestConformance runs the Store contract's suite on a fake clock.
func TestConformance(t *testing.T) {
	clocks := map[emailconn.Store]*throttle.FakeClock{}
	var mu sync.Mutex
	storetest.Run(t, func(t *testing.T) emailconn.Store {
		clock := throttle.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		s := memstore.New(clock.Now)
		mu.Lock()
		clocks[s] = clock
		mu.Unlock()
		return s
	}, storetest.Options{Advance: func(s emailconn.Store, d time.Duration) {
		mu.Lock()
		clock := clocks[s]
		mu.Unlock()
		clock.Advance(d)
	}})
}

// TestConformanceRealTime runs the suite as the SQL stores run it, on real
// time, so that its waiting paths are checked without a database.
func TestConformanceRealTime(t *testing.T) {
	storetest.Run(t, func(t *testing.T) emailconn.Store { return memstore.New(nil) },
		storetest.Options{ShortTTL: 20 * time.Millisecond})
}
