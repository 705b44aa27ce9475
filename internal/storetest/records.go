package storetest

// The tests of the records: Load and Swap, their versions, expiry and values.

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
