package throttle

import (
	"testing"
	"time"
)

// TestIssue14_50_BackoffOutlastsRestart: with the defaults, attempts go on
// for 30 s and are never more than 5 s apart, whatever the draws, so a
// 25-second restart is outlasted; a floor from the reply is honoured.
func TestIssue14_50_BackoffOutlastsRestart(t *testing.T) {
	t.Parallel()
	var b Backoff
	for _, draw := range []struct {
		name string
		rnd  func(int64) int64
	}{
		{"lowest", func(int64) int64 { return 0 }},
		{"highest", func(n int64) int64 { return n - 1 }},
		{"real", nil},
	} {
		t.Run(draw.name, func(t *testing.T) {
			var elapsed time.Duration
			attempts := 1
			for {
				wait, ok := b.Next(attempts, elapsed, 0, draw.rnd)
				if wait < DefaultBackoffInitial/10 || wait > DefaultBackoffMax {
					t.Fatalf("attempt %d: wait %v out of [%v, %v]", attempts, wait, DefaultBackoffInitial/10, DefaultBackoffMax)
				}
				if !ok {
					if elapsed+wait <= DefaultBackoffTotal {
						t.Fatalf("gave up at %v with %v to go", elapsed, wait)
					}
					break
				}
				elapsed += wait
				attempts++
				if attempts > int(DefaultBackoffTotal/(DefaultBackoffInitial/10))+1 {
					t.Fatalf("%d attempts: no end", attempts)
				}
			}
			if elapsed < DefaultBackoffTotal-DefaultBackoffMax {
				t.Errorf("last attempt at %v, want ≥ %v", elapsed, DefaultBackoffTotal-DefaultBackoffMax)
			}
		})
	}
	highest := func(n int64) int64 { return n - 1 }
	for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second, 5: 4 * time.Second, 6: 5 * time.Second, 60: 5 * time.Second} {
		if got, _ := b.Next(n, 0, 0, highest); got != want {
			t.Errorf("Next(%d) at most %v, want %v", n, got, want)
		}
	}
	if got, ok := b.Next(1, 0, 10*time.Second, nil); got != 10*time.Second || !ok {
		t.Errorf("floor 10s: Next = %v, %v", got, ok)
	}
	if got, ok := b.Next(1, 25*time.Second, 10*time.Second, nil); got != 10*time.Second || ok {
		t.Errorf("floor past Total: Next = %v, %v; want 10s, false", got, ok)
	}
	custom := Backoff{Initial: time.Second, Max: 2 * time.Second, Total: 3 * time.Second}
	if got, ok := custom.Next(4, time.Second, 0, highest); got != 2*time.Second || !ok {
		t.Errorf("custom: Next = %v, %v", got, ok)
	}
	if custom.TotalOrDefault() != 3*time.Second {
		t.Errorf("TotalOrDefault = %v", custom.TotalOrDefault())
	}
}
