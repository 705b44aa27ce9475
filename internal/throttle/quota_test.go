package throttle

import (
	"testing"
	"time"
)

// TestIssue14_51_Quota: a daily cap refuses what would go past it, says
// when room frees, forgets counts a day later (never earlier), and takes a
// count back for a message that was refused.
func TestIssue14_51_Quota(t *testing.T) {
	t.Parallel()
	clk := NewFakeClock(t0)
	q := NewQuota(100, 24*time.Hour, clk)
	if _, _, ok := q.Take(60); !ok {
		t.Fatal("Take(60) of 100 refused")
	}
	clk.Advance(time.Hour)
	give, _, ok := q.Take(30)
	if !ok {
		t.Fatal("Take(30) refused at 60 of 100")
	}
	_, freeAt, ok := q.Take(20)
	if ok {
		t.Fatal("Take(20) at 90 of 100 accepted")
	}
	// The 60 were counted in the bucket ending a minute after t0.
	if want := t0.Add(time.Minute + 24*time.Hour); !freeAt.Equal(want) {
		t.Errorf("freeAt = %v, want %v", freeAt, want)
	}
	give()
	give() // once only
	if got := q.Used(); got != 60 {
		t.Errorf("Used after a give-back = %d, want 60", got)
	}
	if _, _, ok := q.Take(40); !ok {
		t.Fatal("Take(40) at 60 of 100 refused")
	}
	clk.Advance(23 * time.Hour) // t0+24h: the first 60 are still within their bucket's day
	if got := q.Used(); got != 100 {
		t.Errorf("Used at 24 h = %d, want 100 (counts are forgotten late, not early)", got)
	}
	clk.Advance(time.Minute)
	if got := q.Used(); got != 40 {
		t.Errorf("Used at 24 h 1 min = %d, want 40", got)
	}
	if _, freeAt, ok := q.Take(101); ok || !freeAt.IsZero() {
		t.Errorf("Take(101) of 100 = %v, %v; want refused for ever", freeAt, ok)
	}
	for _, none := range []*Quota{NewQuota(0, time.Hour, clk), NewQuota(5, 0, clk)} {
		if _, _, ok := none.Take(1000); !ok || none.Used() != 0 {
			t.Error("a Quota without a limit refused")
		}
	}
	if _, _, ok := q.Take(0); !ok {
		t.Error("Take(0) refused")
	}
	if q.Limit() != 100 {
		t.Errorf("Limit = %d", q.Limit())
	}
}

func TestIssue14_52_ZeroValues(t *testing.T) {
	t.Parallel()
	var q Quota
	if _, _, ok := q.Take(5); !ok || q.Used() != 0 {
		t.Error("zero Quota refused")
	}
}
