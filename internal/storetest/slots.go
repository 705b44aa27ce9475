package storetest

// The tests of the slots: Acquire, Renew and Release of leases.

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
