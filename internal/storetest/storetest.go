// Package storetest is the conformance suite of emailconn.Store: the
// contract of its doc comment, as tests that every Store must pass. The
// in-memory store runs it on a fake clock (internal/memstore's tests), the
// SQL store on SQLite and PostgreSQL (internal/sqlstoretest, a module of
// its own, with real databases and real time).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// Options tune Run to a store.
type Options struct {
	// Advance moves the clock of s forward by d, for a store on a fake
	// clock. Nil means the store runs on real time: the expiry tests then
	// use leases and records of ShortTTL and wait, polling the store with
	// a deadline, until they have expired.
	Advance func(s emailconn.Store, d time.Duration)

	// ShortTTL is the ttl of the expiry tests on real time. Zero means
	// 300 ms.
	ShortTTL time.Duration

	// Goroutines is how many goroutines the concurrency tests run. Zero
	// means 16.
	Goroutines int
}

func (o Options) shortTTL() time.Duration {
	if o.ShortTTL > 0 {
		return o.ShortTTL
	}
	return 300 * time.Millisecond
}

func (o Options) goroutines() int {
	if o.Goroutines > 0 {
		return o.Goroutines
	}
	return 16
}

// Run runs the suite as subtests of t, each on a store from open. open may
// return the same store (a shared database) every time: every subtest uses
// keys of its own, unique to the run.
func Run(t *testing.T, open func(t *testing.T) emailconn.Store, opts Options) {
	tests := []struct {
		name string
		f    func(t *testing.T, h *harness)
	}{
		{"AcquireCountsSlots", testAcquireCountsSlots},
		{"AcquireConcurrentNeverOverLimit", testAcquireConcurrent},
		{"AcquireWaitIsFirstExpiry", testAcquireWait},
		{"ExpiryFreesSlot", testExpiryFreesSlot},
		{"SlotsBeyondLimit", testSlotsBeyondLimit},
		{"RenewReleaseOnlyByOwner", testOwnerOnly},
		{"RenewExtends", testRenewExtends},
		{"LostLeaseRenewsFalse", testLostLease},
		{"SwapCompareAndSwap", testSwap},
		{"SwapConcurrentOneWins", testSwapConcurrent},
		{"SwapConcurrentIncrements", testSwapIncrements},
		{"RecordExpiry", testRecordExpiry},
		{"ValuesAreCopies", testValueCopies},
		{"KeysAreDistinct", testKeysDistinct},
		{"BadArguments", testBadArguments},
		{"ContextEnded", testContextEnded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{s: open(t), opts: opts, prefix: fmt.Sprintf("storetest/%s/%d/", t.Name(), time.Now().UnixNano())}
			tc.f(t, h)
		})
	}
}

type harness struct {
	s      emailconn.Store
	opts   Options
	prefix string
}

func (h *harness) key(name string) string { return h.prefix + name }

// ttl is the ttl of a lease or record that the test lets expire.
func (h *harness) ttl() time.Duration {
	if h.opts.Advance != nil {
		return time.Second
	}
	return h.opts.shortTTL()
}

// fake reports whether the store is on a fake clock.
func (h *harness) fake() bool { return h.opts.Advance != nil }

// deadline bounds the waits on real time.
func (h *harness) deadline() time.Time { return time.Now().Add(h.opts.shortTTL() + 10*time.Second) }

func (h *harness) acquire(t *testing.T, key string, limit int, owner string, ttl time.Duration) (int, time.Duration) {
	t.Helper()
	slot, wait, err := h.s.Acquire(context.Background(), key, limit, owner, ttl)
	if err != nil {
		t.Fatalf("Acquire(%q, %d, %q, %v): %v", key, limit, owner, ttl, err)
	}
	if slot < -1 || slot >= limit {
		t.Fatalf("Acquire(%q, %d) = slot %d, want -1 or in [0, %d)", key, limit, slot, limit)
	}
	if slot >= 0 && wait != 0 {
		t.Errorf("Acquire(%q) = slot %d with wait %v, want wait 0", key, slot, wait)
	}
	if slot == -1 && wait < time.Microsecond {
		t.Errorf("Acquire(%q) = slot -1 with wait %v, want at least 1µs", key, wait)
	}
	return slot, wait
}

func (h *harness) renew(t *testing.T, key string, slot int, owner string, ttl time.Duration) bool {
	t.Helper()
	ok, err := h.s.Renew(context.Background(), key, slot, owner, ttl)
	if err != nil {
		t.Fatalf("Renew(%q, %d, %q): %v", key, slot, owner, err)
	}
	return ok
}

func (h *harness) release(t *testing.T, key string, slot int, owner string) {
	t.Helper()
	if err := h.s.Release(context.Background(), key, slot, owner); err != nil {
		t.Fatalf("Release(%q, %d, %q): %v", key, slot, owner, err)
	}
}

func (h *harness) load(t *testing.T, key string) ([]byte, int64) {
	t.Helper()
	v, version, err := h.s.Load(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	if version < 0 || (version == 0) != (v == nil) {
		t.Fatalf("Load(%q) = %q, version %d: want a nil value exactly at version 0", key, v, version)
	}
	return v, version
}

func (h *harness) swap(t *testing.T, key string, version int64, value []byte, ttl time.Duration) bool {
	t.Helper()
	ok, err := h.s.Swap(context.Background(), key, version, value, ttl)
	if err != nil {
		t.Fatalf("Swap(%q, %d): %v", key, version, err)
	}
	return ok
}

// expireLease lets a lease of h.ttl() taken just before run out: on a fake
// clock by advancing it, on real time by polling Acquire with a probe
// owner until the slot is free (sleeping the wait the store reports), and
// releasing the probe's lease, so the slot is free and nobody's.
func (h *harness) expireLease(t *testing.T, key string, limit int) {
	t.Helper()
	if h.fake() {
		h.opts.Advance(h.s, h.ttl())
		return
	}
	end := h.deadline()
	for {
		slot, wait := h.acquire(t, key, limit, "storetest-probe", time.Minute)
		if slot >= 0 {
			h.release(t, key, slot, "storetest-probe")
			return
		}
		if time.Now().After(end) {
			t.Fatalf("lease of %q still held %v after its ttl of %v", key, h.opts.shortTTL()+10*time.Second, h.ttl())
		}
		time.Sleep(min(wait, 50*time.Millisecond) + time.Millisecond)
	}
}

// expireRecord lets a record of h.ttl() written just before run out.
func (h *harness) expireRecord(t *testing.T, key string) {
	t.Helper()
	if h.fake() {
		h.opts.Advance(h.s, h.ttl())
		return
	}
	end := h.deadline()
	for {
		if _, version := h.load(t, key); version == 0 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("record %q still there %v after its ttl of %v", key, h.opts.shortTTL()+10*time.Second, h.ttl())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testAcquireCountsSlots(t *testing.T, h *harness) {
	key := h.key("sessions")
	seen := map[int]bool{}
	for i := range 3 {
		slot, _ := h.acquire(t, key, 3, fmt.Sprintf("owner-%d", i), time.Minute)
		if slot < 0 || seen[slot] {
			t.Fatalf("Acquire #%d of a limit-3 key = slot %d, want a free one (taken: %v)", i+1, slot, seen)
		}
		seen[slot] = true
	}
	if slot, wait := h.acquire(t, key, 3, "owner-3", time.Minute); slot != -1 || wait > time.Minute+time.Millisecond {
		t.Fatalf("4th Acquire of a limit-3 key = slot %d, wait %v; want -1 and at most 1m", slot, wait)
	}
	// The same owner may hold several slots (a node with several sessions).
	other := h.key("one-owner")
	a, _ := h.acquire(t, other, 2, "node", time.Minute)
	b, _ := h.acquire(t, other, 2, "node", time.Minute)
	if a < 0 || b < 0 || a == b {
		t.Fatalf("two Acquires by one owner of a limit-2 key = slots %d, %d; want 0 and 1", a, b)
	}
}

func testAcquireConcurrent(t *testing.T, h *harness) {
	const limit = 3
	key := h.key("sessions")
	var (
		mu      sync.Mutex
		holder  = map[int]string{}
		held    atomic.Int32
		maxHeld atomic.Int32
		got     atomic.Int32
		wg      sync.WaitGroup
	)
	n := h.opts.goroutines()
	rounds := 8
	errs := make(chan error, n)
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("g%d", g)
			for r := 0; r < rounds; {
				slot, _, err := h.s.Acquire(context.Background(), key, limit, owner, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if slot < 0 {
					runtime.Gosched() // held by others; they release soon
					continue
				}
				r++
				got.Add(1)
				if now := held.Add(1); now > maxHeld.Load() {
					maxHeld.Store(now) // racy max is fine: only ever raised
				}
				mu.Lock()
				if prev, ok := holder[slot]; ok {
					mu.Unlock()
					errs <- fmt.Errorf("slot %d taken by %s while %s holds it", slot, owner, prev)
					return
				}
				holder[slot] = owner
				mu.Unlock()
				runtime.Gosched() // hold it while others run

				mu.Lock()
				delete(holder, slot)
				mu.Unlock()
				held.Add(-1)
				if err := h.s.Release(context.Background(), key, slot, owner); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if m := maxHeld.Load(); m > limit {
		t.Errorf("%d leases of a limit-%d key held at once", m, limit)
	}
	if g := got.Load(); int(g) != n*rounds && !t.Failed() {
		t.Errorf("%d acquisitions, want %d", g, n*rounds)
	}
}

func testAcquireWait(t *testing.T, h *harness) {
	key := h.key("window")
	h.acquire(t, key, 2, "long", time.Hour)
	h.acquire(t, key, 2, "short", 10*time.Minute)
	slot, wait := h.acquire(t, key, 2, "late", time.Minute)
	if slot != -1 || wait > 10*time.Minute+time.Millisecond || wait < 9*time.Minute {
		t.Fatalf("Acquire of a full key = slot %d, wait %v; want -1 and the first expiry, 10m", slot, wait)
	}
	if h.fake() {
		h.opts.Advance(h.s, 4*time.Minute)
		if _, wait := h.acquire(t, key, 2, "late", time.Minute); wait != 6*time.Minute {
			t.Fatalf("4m later the wait is %v, want 6m", wait)
		}
	}
}

// slow reports, on real time, that more than ttl has passed since start:
// a check that a lease or record is still there cannot hold, and the test
// tries again with a new key (a loaded machine, not the store).
func (h *harness) slow(t *testing.T, start time.Time, try int) bool {
	t.Helper()
	if h.fake() || time.Since(start) < h.ttl() || try == 3 {
		return false
	}
	t.Logf("try %d: %v passed, more than the ttl of %v: again with a new key", try, time.Since(start), h.ttl())
	return true
}

func testExpiryFreesSlot(t *testing.T, h *harness) {
	var key string
	ttl := h.ttl()
	for try := 1; ; try++ {
		key = h.key(fmt.Sprintf("refresh%d", try))
		start := time.Now()
		a, _ := h.acquire(t, key, 1, "node-a", ttl)
		if a != 0 {
			t.Fatalf("Acquire of a free limit-1 key = slot %d, want 0", a)
		}
		slot, wait := h.acquire(t, key, 1, "node-b", ttl)
		if slot != -1 && h.slow(t, start, try) {
			continue
		}
		if slot != -1 || wait > ttl+time.Millisecond {
			t.Fatalf("Acquire of a held limit-1 key = slot %d, wait %v; want -1, at most %v", slot, wait, ttl)
		}
		break
	}
	h.expireLease(t, key, 1)
	if slot, _ := h.acquire(t, key, 1, "node-b", time.Minute); slot != 0 {
		t.Fatalf("after the lease expired, Acquire = slot %d, want 0", slot)
	}
	// node-a lost its lease: it cannot renew nor release node-b's.
	if h.renew(t, key, 0, "node-a", time.Minute) {
		t.Fatal("the expired owner renewed a lease another owner holds")
	}
	h.release(t, key, 0, "node-a")
	if slot, _ := h.acquire(t, key, 1, "node-c", time.Minute); slot != -1 {
		t.Fatalf("the expired owner's Release freed node-b's slot (Acquire = %d)", slot)
	}
}

func testSlotsBeyondLimit(t *testing.T, h *harness) {
	key := h.key("shrunk")
	for i := range 3 {
		h.acquire(t, key, 3, fmt.Sprintf("o%d", i), time.Minute)
	}
	if slot, _ := h.acquire(t, key, 2, "x", time.Minute); slot != -1 {
		t.Fatalf("limit lowered to 2 with 3 held: Acquire = slot %d, want -1", slot)
	}
	if slot, _ := h.acquire(t, key, 5, "x", time.Minute); slot != 3 && slot != 4 {
		t.Fatalf("limit raised to 5 with slots 0-2 held: Acquire = slot %d, want 3 or 4", slot)
	}
}

func testOwnerOnly(t *testing.T, h *harness) {
	key := h.key("lease")
	slot, _ := h.acquire(t, key, 1, "node-a", time.Minute)
	if h.renew(t, key, slot, "node-b", time.Minute) {
		t.Error("Renew by another owner = true")
	}
	h.release(t, key, slot, "node-b")
	if s, _ := h.acquire(t, key, 1, "node-c", time.Minute); s != -1 {
		t.Fatalf("Release by another owner freed the slot (Acquire = %d)", s)
	}
	if !h.renew(t, key, slot, "node-a", time.Minute) {
		t.Fatal("Renew by the owner = false")
	}
	if h.renew(t, key, slot+1, "node-a", time.Minute) {
		t.Error("Renew of a slot never taken = true")
	}
	h.release(t, key, slot, "node-a")
	h.release(t, key, slot, "node-a") // twice: nothing, no error
	if h.renew(t, key, slot, "node-a", time.Minute) {
		t.Error("Renew after Release = true")
	}
	if s, _ := h.acquire(t, key, 1, "node-c", time.Minute); s != 0 {
		t.Fatalf("after Release, Acquire = slot %d, want 0", s)
	}
	h.release(t, h.key("never"), 0, "node-a") // a key never used: nothing, no error
}

func testRenewExtends(t *testing.T, h *harness) {
	key := h.key("session")
	slot, _ := h.acquire(t, key, 1, "node-a", time.Minute)
	if !h.renew(t, key, slot, "node-a", time.Hour) {
		t.Fatal("Renew by the owner = false")
	}
	if _, wait := h.acquire(t, key, 1, "node-b", time.Minute); wait < 50*time.Minute {
		t.Fatalf("after Renew for 1h, the wait is %v, want about 1h", wait)
	}
	// Renewing may shorten the lease too: ttl from now.
	if !h.renew(t, key, slot, "node-a", 2*time.Minute) {
		t.Fatal("second Renew = false")
	}
	if _, wait := h.acquire(t, key, 1, "node-b", time.Minute); wait > 2*time.Minute+time.Millisecond {
		t.Fatalf("after Renew for 2m, the wait is %v, want at most 2m", wait)
	}
	if h.fake() {
		h.opts.Advance(h.s, 90*time.Second)
		if !h.renew(t, key, slot, "node-a", 2*time.Minute) {
			t.Fatal("Renew 90s into a 2m lease = false")
		}
		h.opts.Advance(h.s, 90*time.Second)
		if s, _ := h.acquire(t, key, 1, "node-b", time.Minute); s != -1 {
			t.Fatalf("a lease renewed 90s ago for 2m was taken (Acquire = %d)", s)
		}
	}
}

func testLostLease(t *testing.T, h *harness) {
	key := h.key("refresh")
	slot, _ := h.acquire(t, key, 1, "node-a", h.ttl())
	if h.fake() {
		h.opts.Advance(h.s, h.ttl())
		// Expired, not taken by anyone: still not node-a's.
		if h.renew(t, key, slot, "node-a", time.Minute) {
			t.Fatal("Renew of an expired lease nobody took = true")
		}
		return
	}
	h.expireLease(t, key, 1) // takes it with a probe and releases it
	if h.renew(t, key, slot, "node-a", time.Minute) {
		t.Fatal("Renew of an expired lease = true")
	}
}

func testSwap(t *testing.T, h *harness) {
	key := h.key("token")
	if v, version := h.load(t, key); v != nil || version != 0 {
		t.Fatalf("Load of no record = %q, %d; want nil, 0", v, version)
	}
	if h.swap(t, key, 1, []byte("x"), 0) {
		t.Fatal("Swap(version 1) with no record = true")
	}
	if !h.swap(t, key, 0, []byte("one"), 0) {
		t.Fatal("Swap(version 0) with no record = false")
	}
	if v, version := h.load(t, key); string(v) != "one" || version != 1 {
		t.Fatalf("Load = %q, %d; want one, 1", v, version)
	}
	if h.swap(t, key, 0, []byte("again"), 0) {
		t.Fatal("Swap(version 0) over a record = true")
	}
	if !h.swap(t, key, 1, []byte("two"), time.Hour) {
		t.Fatal("Swap(version 1) at version 1 = false")
	}
	if h.swap(t, key, 1, []byte("stale"), 0) {
		t.Fatal("Swap with a stale version = true")
	}
	if h.swap(t, key, 7, []byte("future"), 0) {
		t.Fatal("Swap with a version never written = true")
	}
	if v, version := h.load(t, key); string(v) != "two" || version != 2 {
		t.Fatalf("Load = %q, %d; want two, 2", v, version)
	}
}

func testSwapConcurrent(t *testing.T, h *harness) {
	key := h.key("token")
	n := h.opts.goroutines()
	for _, from := range []int64{0, 1} {
		var wins atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, n)
		for g := range n {
			wg.Go(func() {
				<-start
				ok, err := h.s.Swap(context.Background(), key, from, fmt.Appendf(nil, "g%d", g), 0)
				if err != nil {
					errs <- err
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if w := wins.Load(); w != 1 {
			t.Fatalf("%d concurrent Swaps from version %d: %d won, want exactly 1", n, from, w)
		}
		if _, version := h.load(t, key); version != from+1 {
			t.Fatalf("after the swaps from version %d, version %d", from, version)
		}
	}
}

func testSwapIncrements(t *testing.T, h *harness) {
	key := h.key("counter")
	n, each := h.opts.goroutines()/2+1, 10
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			for range each {
				for {
					v, version, err := h.s.Load(context.Background(), key)
					if err != nil {
						errs <- err
						return
					}
					count := 0
					if v != nil {
						if _, err := fmt.Sscanf(string(v), "%d", &count); err != nil {
							errs <- fmt.Errorf("counter %q: %w", v, err)
							return
						}
					}
					next := fmt.Appendf(nil, "%d", count+1)
					ok, err := h.s.Swap(context.Background(), key, version, next, 0)
					if err != nil {
						errs <- err
						return
					}
					if ok {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	v, version := h.load(t, key)
	if want := n * each; string(v) != fmt.Sprint(want) || version != int64(want) {
		t.Fatalf("after %d increments by %d goroutines: %q at version %d", want, n, v, version)
	}
}

func testRecordExpiry(t *testing.T, h *harness) {
	key, forever := h.key("token"), h.key("forever")
	if !h.swap(t, forever, 0, []byte("kept"), 0) {
		t.Fatal("Swap(0) = false")
	}
	for try := 1; ; try++ {
		key = h.key(fmt.Sprintf("token%d", try))
		start := time.Now()
		if !h.swap(t, key, 0, []byte("v1"), h.ttl()) {
			t.Fatal("Swap(0) = false")
		}
		_, version := h.load(t, key)
		if version != 1 && h.slow(t, start, try) {
			continue
		}
		if version != 1 {
			t.Fatalf("Load before expiry: version %d, want 1", version)
		}
		break
	}
	h.expireRecord(t, key)
	if v, version := h.load(t, key); v != nil || version != 0 {
		t.Fatalf("Load of an expired record = %q, %d; want nil, 0", v, version)
	}
	if h.swap(t, key, 1, []byte("late"), 0) {
		t.Fatal("Swap(version 1) of an expired record = true")
	}
	if !h.swap(t, key, 0, []byte("new"), time.Hour) {
		t.Fatal("Swap(version 0) of an expired record = false")
	}
	if v, version := h.load(t, key); string(v) != "new" || version != 1 {
		t.Fatalf("Load = %q, %d; want new, 1", v, version)
	}
	if h.fake() {
		h.opts.Advance(h.s, 1000*time.Hour)
	}
	if v, version := h.load(t, forever); string(v) != "kept" || version != 1 {
		t.Fatalf("a record with ttl 0 = %q, %d; want kept, 1", v, version)
	}
}

func testValueCopies(t *testing.T, h *harness) {
	key := h.key("token")
	buf := []byte("secret\x00\xff\xfe binary")
	want := bytes.Clone(buf)
	if !h.swap(t, key, 0, buf, 0) {
		t.Fatal("Swap(0) = false")
	}
	buf[0] = 'X'
	v, _ := h.load(t, key)
	if !bytes.Equal(v, want) {
		t.Fatalf("Load = %q after the caller changed its buffer, want %q", v, want)
	}
	v[0] = 'Y'
	if v2, _ := h.load(t, key); !bytes.Equal(v2, want) {
		t.Fatalf("Load = %q after the caller changed a loaded value, want %q", v2, want)
	}
	empty := h.key("empty")
	if !h.swap(t, empty, 0, nil, 0) {
		t.Fatal("Swap(0, nil value) = false")
	}
	if v, version := h.load(t, empty); len(v) != 0 || version != 1 {
		t.Fatalf("Load of an empty value = %q, %d; want empty, 1", v, version)
	}
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 16<<10) // 64 KiB
	if !h.swap(t, h.key("big"), 0, big, 0) {
		t.Fatal("Swap(0, 64 KiB) = false")
	}
	if v, _ := h.load(t, h.key("big")); !bytes.Equal(v, big) {
		t.Fatalf("Load of 64 KiB = %d bytes, not what was written", len(v))
	}
}

func testKeysDistinct(t *testing.T, h *harness) {
	a, b, u := h.key("a"), h.key("A"), h.key("ключ/é/✉")
	h.acquire(t, a, 1, "o", time.Minute)
	if slot, _ := h.acquire(t, b, 1, "o", time.Minute); slot != 0 {
		t.Fatalf("keys differing in case share slots (Acquire = %d)", slot)
	}
	if slot, _ := h.acquire(t, u, 1, "ówner", time.Minute); slot != 0 {
		t.Fatalf("Acquire of a non-ASCII key = %d", slot)
	}
	// Leases and records are separate: a lease key has no record.
	if _, version := h.load(t, a); version != 0 {
		t.Fatalf("a lease's key has a record (version %d)", version)
	}
	h.swap(t, u, 0, []byte("u"), 0)
	if v, _ := h.load(t, u); string(v) != "u" {
		t.Fatalf("Load of a non-ASCII key = %q", v)
	}
	// The longest key and owner allowed work.
	long := h.key("")
	long += strings.Repeat("é", (512-len(long))/2)
	long += strings.Repeat("k", 512-len(long))
	owner := strings.Repeat("ö", 64)
	if slot, _ := h.acquire(t, long, 1, owner, time.Minute); slot != 0 {
		t.Fatalf("Acquire of a 512-byte key = %d", slot)
	}
	if !h.renew(t, long, 0, owner, time.Minute) {
		t.Fatal("Renew with a 512-byte key and a 128-byte owner = false")
	}
	if !h.swap(t, long, 0, []byte("v"), 0) {
		t.Fatal("Swap of a 512-byte key = false")
	}
}

func testBadArguments(t *testing.T, h *harness) {
	ctx := context.Background()
	key, owner := h.key("k"), "owner"
	long := strings.Repeat("k", 513)
	acquire := func(key string, limit int, owner string, ttl time.Duration) func() error {
		return func() error {
			slot, _, err := h.s.Acquire(ctx, key, limit, owner, ttl)
			if err != nil && slot != -1 {
				return fmt.Errorf("slot %d with the error %w", slot, err)
			}
			return err
		}
	}
	renew := func(key string, slot int, owner string, ttl time.Duration) func() error {
		return func() error {
			ok, err := h.s.Renew(ctx, key, slot, owner, ttl)
			if ok {
				return errors.New("renewed")
			}
			return err
		}
	}
	release := func(key string, slot int, owner string) func() error {
		return func() error { return h.s.Release(ctx, key, slot, owner) }
	}
	load := func(key string) func() error {
		return func() error {
			_, _, err := h.s.Load(ctx, key)
			return err
		}
	}
	swap := func(key string, version int64, ttl time.Duration) func() error {
		return func() error {
			ok, err := h.s.Swap(ctx, key, version, []byte("v"), ttl)
			if ok {
				return errors.New("swapped")
			}
			return err
		}
	}
	for _, tc := range []struct {
		name, word string
		call       func() error
	}{
		{"Acquire limit 0", "limit", acquire(key, 0, owner, time.Minute)},
		{"Acquire limit -1", "limit", acquire(key, -1, owner, time.Minute)},
		{"Acquire limit 1<<20+1", "limit", acquire(key, 1<<20+1, owner, time.Minute)},
		{"Acquire limit MaxInt32", "limit", acquire(key, math.MaxInt32, owner, time.Minute)},
		{"Acquire ttl 0", "ttl", acquire(key, 1, owner, 0)},
		{"Acquire ttl 999µs", "ttl", acquire(key, 1, owner, 999*time.Microsecond)},
		{"Acquire ttl -1s", "ttl", acquire(key, 1, owner, -time.Second)},
		{"Acquire empty key", "key", acquire("", 1, owner, time.Minute)},
		{"Acquire key of 513 bytes", "key", acquire(long, 1, owner, time.Minute)},
		{"Acquire key not UTF-8", "key", acquire(key+"\xff", 1, owner, time.Minute)},
		{"Acquire key with NUL", "key", acquire(key+"\x00", 1, owner, time.Minute)},
		{"Acquire empty owner", "owner", acquire(key, 1, "", time.Minute)},
		{"Acquire owner of 129 bytes", "owner", acquire(key, 1, strings.Repeat("o", 129), time.Minute)},
		{"Acquire owner not UTF-8", "owner", acquire(key, 1, "\xc3", time.Minute)},
		{"Renew slot -1", "slot", renew(key, -1, owner, time.Minute)},
		{"Renew slot 1<<20", "slot", renew(key, 1<<20, owner, time.Minute)},
		{"Release slot MaxInt32", "slot", release(key, math.MaxInt32, owner)},
		{"Renew ttl 0", "ttl", renew(key, 0, owner, 0)},
		{"Renew key of 513 bytes", "key", renew(long, 0, owner, time.Minute)},
		{"Renew owner of 129 bytes", "owner", renew(key, 0, strings.Repeat("o", 129), time.Minute)},
		{"Release slot -1", "slot", release(key, -1, owner)},
		{"Release key not UTF-8", "key", release("\xff", 0, owner)},
		{"Release empty owner", "owner", release(key, 0, "")},
		{"Load empty key", "key", load("")},
		{"Load key of 513 bytes", "key", load(long)},
		{"Swap version -1", "version", swap(key, -1, 0)},
		{"Swap ttl 500µs", "ttl", swap(key, 0, 500*time.Microsecond)},
		{"Swap ttl -1ns", "ttl", swap(key, 0, -1)},
		{"Swap key not UTF-8", "key", swap("\xff", 0, 0)},
	} {
		err := tc.call()
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case !strings.HasPrefix(err.Error(), "emailconn: store: ") || !strings.Contains(err.Error(), tc.word):
			t.Errorf("%s: error %q, want one starting \"emailconn: store: \" naming the %s", tc.name, err, tc.word)
		}
	}
	// Nothing was taken or written by the rejected calls.
	if slot, _ := h.acquire(t, key, 1, owner, time.Minute); slot != 0 {
		t.Errorf("after the rejected calls, Acquire = slot %d, want 0", slot)
	}
	if _, version := h.load(t, key); version != 0 {
		t.Errorf("after the rejected calls, the record has version %d, want 0", version)
	}
}

func testContextEnded(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	key := h.key("k")
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with an ended context: error %v, want one wrapping context.Canceled", name, err)
		}
	}
	slot, _, err := h.s.Acquire(ctx, key, 1, "o", time.Minute)
	check("Acquire", err)
	if slot != -1 {
		t.Errorf("Acquire with an ended context = slot %d, want -1", slot)
	}
	_, err = h.s.Renew(ctx, key, 0, "o", time.Minute)
	check("Renew", err)
	check("Release", h.s.Release(ctx, key, 0, "o"))
	_, _, err = h.s.Load(ctx, key)
	check("Load", err)
	_, err = h.s.Swap(ctx, key, 0, []byte("v"), 0)
	check("Swap", err)
	if slot, _ := h.acquire(t, key, 1, "p", time.Minute); slot != 0 {
		t.Errorf("after the ended calls, Acquire = slot %d, want 0", slot)
	}
	if _, version := h.load(t, key); version != 0 {
		t.Errorf("after the ended calls, the record has version %d, want 0", version)
	}
}
