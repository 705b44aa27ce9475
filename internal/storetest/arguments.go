package storetest

// The tests of what a Store takes: keys, bad arguments and ended contexts.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

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
	key, owner := h.key("k"), "owner"
	long := strings.Repeat("k", 513)
	acquire, renew, release, load, swap := h.acquireCall, h.renewCall, h.releaseCall, h.loadCall, h.swapCall
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

// acquireCall, renewCall, releaseCall, loadCall and swapCall make the
// calls of testBadArguments: each returns the call's error, or one that
// says what the store did although it should have refused the arguments.
func (h *harness) acquireCall(key string, limit int, owner string, ttl time.Duration) func() error {
	return func() error {
		slot, _, err := h.s.Acquire(context.Background(), key, limit, owner, ttl)
		if err != nil && slot != -1 {
			return fmt.Errorf("slot %d with the error %w", slot, err)
		}
		return err
	}
}

func (h *harness) renewCall(key string, slot int, owner string, ttl time.Duration) func() error {
	return func() error {
		ok, err := h.s.Renew(context.Background(), key, slot, owner, ttl)
		if ok {
			return errors.New("renewed")
		}
		return err
	}
}

func (h *harness) releaseCall(key string, slot int, owner string) func() error {
	return func() error { return h.s.Release(context.Background(), key, slot, owner) }
}

func (h *harness) loadCall(key string) func() error {
	return func() error {
		_, _, err := h.s.Load(context.Background(), key)
		return err
	}
}

func (h *harness) swapCall(key string, version int64, ttl time.Duration) func() error {
	return func() error {
		ok, err := h.s.Swap(context.Background(), key, version, []byte("v"), ttl)
		if ok {
			return errors.New("swapped")
		}
		return err
	}
}
