package throttle

import (
	"errors"
	"testing"
	"time"
)

// TestIssue14_20_Pause: a pause holds until its end, never shortens, and
// is forgotten once over.
func TestIssue14_20_Pause(t *testing.T) {
	t.Parallel()
	var zero Pause
	if st, ok := zero.Active(); ok {
		t.Fatalf("zero Pause is active: %+v", st)
	}
	clk := NewFakeClock(t0)
	p := NewPause(clk)
	quota := errors.New("550 5.4.5 Daily user sending limit exceeded")
	other := errors.New("421 4.7.0 Try again later")

	st := p.Extend(t0.Add(24*time.Hour), quota)
	if !st.Until.Equal(t0.Add(24*time.Hour)) || st.Cause != quota {
		t.Fatalf("Extend = %+v", st)
	}
	if st := p.Extend(t0.Add(time.Minute), other); !st.Until.Equal(t0.Add(24*time.Hour)) || st.Cause != quota {
		t.Fatalf("a shorter pause replaced a longer one: %+v", st)
	}
	clk.Advance(23 * time.Hour)
	if st, ok := p.Active(); !ok || st.Cause != quota || st.Until.Sub(clk.Now()) != time.Hour {
		t.Fatalf("Active after 23 h = %+v, %v", st, ok)
	}
	clk.Advance(time.Hour)
	if st, ok := p.Active(); ok {
		t.Fatalf("Active at the end = %+v, want over", st)
	}
	if st := p.Extend(clk.Now(), other); !st.Until.IsZero() {
		t.Fatalf("a pause ending now was set: %+v", st)
	}
	p.Extend(clk.Now().Add(time.Hour), other)
	p.Clear()
	if _, ok := p.Active(); ok {
		t.Fatal("Clear left the pause on")
	}
}

func TestIssue14_21_FakeClockOrder(t *testing.T) {
	t.Parallel()
	clk := NewFakeClock(t0)
	var got []string
	clk.AfterFunc(2*time.Second, func() { got = append(got, "b@"+clk.Now().Sub(t0).String()) })
	clk.AfterFunc(time.Second, func() {
		got = append(got, "a@"+clk.Now().Sub(t0).String())
		clk.AfterFunc(500*time.Millisecond, func() { got = append(got, "a2@"+clk.Now().Sub(t0).String()) })
	})
	stop := clk.AfterFunc(time.Second, func() { got = append(got, "stopped") })
	if !stop() || stop() {
		t.Fatal("stop: want true then false")
	}
	clk.Advance(3 * time.Second)
	want := []string{"a@1s", "a2@1.5s", "b@2s"}
	if len(got) != len(want) {
		t.Fatalf("ran %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ran %v, want %v", got, want)
		}
	}
	if !clk.Now().Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("Now = %v", clk.Now())
	}
}
