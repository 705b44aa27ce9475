package throttle

import (
	"math/rand/v2"
	"time"
)

// Backoff is a retry schedule that outlasts a server restart: waits grow
// exponentially with full jitter (each a uniform draw between zero and
// min(Max, Initial·2^(n−1)) after n attempts, raised to Initial/10 at
// least), and no attempt starts later than Total after the first began. Because consecutive attempts are at
// most Max apart and attempts go on for Total, an outage of up to
// Total − Max is always outlasted: 25 seconds with the defaults.
//
// The zero value is the default schedule. A Backoff is a value; it is safe
// for concurrent use.
type Backoff struct {
	// Initial caps the first wait. Zero means 250 milliseconds.
	Initial time.Duration
	// Max caps every wait. Zero means 5 seconds.
	Max time.Duration
	// Total is how long after the first attempt began a retry may still
	// start. Zero means 30 seconds.
	Total time.Duration
}

// The defaults of Backoff's zero fields.
const (
	DefaultBackoffInitial = 250 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultBackoffTotal   = 30 * time.Second
)

func (b Backoff) initial() time.Duration {
	if b.Initial <= 0 {
		return DefaultBackoffInitial
	}
	return b.Initial
}

func (b Backoff) max() time.Duration {
	if b.Max <= 0 {
		return DefaultBackoffMax
	}
	return b.Max
}

// TotalOrDefault returns Total, or its default when zero.
func (b Backoff) TotalOrDefault() time.Duration {
	if b.Total <= 0 {
		return DefaultBackoffTotal
	}
	return b.Total
}

// Next returns the wait before the next attempt after n attempts (n ≥ 1)
// that began elapsed ago in all, where floor is the least wait the reply
// asks for (a replyclass Decision's Wait; zero for none). ok is false when
// the attempt would start after Total: the caller then gives up and can
// report that a retry may succeed after wait. rnd draws a uniform integer
// in [0, n); nil means math/rand/v2.
func (b Backoff) Next(n int, elapsed, floor time.Duration, rnd func(n int64) int64) (wait time.Duration, ok bool) {
	if rnd == nil {
		rnd = rand.Int64N
	}
	ceil := b.initial()
	for i := 1; i < n && ceil < b.max(); i++ {
		ceil *= 2
	}
	ceil = min(ceil, b.max())
	wait = time.Duration(rnd(int64(ceil) + 1))
	wait = max(wait, floor, b.initial()/10) // a run of near-zero draws cannot become a storm
	return wait, elapsed+wait <= b.TotalOrDefault()
}
