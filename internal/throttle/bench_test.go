package throttle

import (
	"context"
	"testing"
)

// BenchmarkIssue14_NoLimits is the cost the blocks add to a send when no
// limit is configured: it must stay a few nanoseconds and 0 allocations.
func BenchmarkIssue14_NoLimits(b *testing.B) {
	ctx := context.Background()
	w := NewWindow(0, 0, nil)
	s := NewSemaphore(0, nil)
	q := NewQuota(0, 0, nil)
	var p Pause
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.Active(); ok {
			b.Fatal("paused")
		}
		give, _, _ := q.Take(1)
		_, release, _ := s.Acquire(ctx)
		r, _ := w.Reserve(ctx)
		r.Start()
		release()
		give()
	}
}

// BenchmarkIssue14_Window is Reserve and Start on a window that never
// fills.
func BenchmarkIssue14_Window(b *testing.B) {
	ctx := context.Background()
	w := NewWindow(1<<30, 1<<40, nil)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := w.Reserve(ctx)
		r.Start()
	}
}
