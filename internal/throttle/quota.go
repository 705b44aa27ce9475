package throttle

import (
	"sync"
	"time"
)

// Quota counts what a connection sent in a rolling window — messages or
// recipients per 24 hours — so that a send which would go past a daily cap
// fails fast, before any dial, with the time room frees, instead of
// drawing the provider's quota reply.
//
// Counts are kept in buckets of Window/1440 (a minute for 24 hours), each
// timed at its end, so a count is forgotten up to one bucket late, never
// early. Quota counts only this process's sends; the provider's count also
// holds other clients of the mailbox, which is why a quota reply still
// pauses the connection for the full window (internal/replyclass).
//
// A Quota with Limit ≤ 0 never refuses; so does the zero value. Its
// methods are safe for concurrent use. Create one with NewQuota.
type Quota struct {
	limit  int
	window time.Duration
	bucket time.Duration
	clock  Clock

	mu      sync.Mutex
	buckets []quotaBucket // oldest first
	used    int
}

type quotaBucket struct {
	at time.Time // the bucket's end: counts in it are dated at
	n  int
}

// NewQuota returns a Quota of limit per window, reading time from clock
// (nil means System).
func NewQuota(limit int, window time.Duration, clock Clock) *Quota {
	return &Quota{limit: limit, window: window, bucket: max(window/1440, time.Nanosecond), clock: clockOrSystem(clock)}
}

// Limit returns the quota's limit; ≤ 0 means none.
func (q *Quota) Limit() int { return q.limit }

// Used returns the count within the window now.
func (q *Quota) Used() int {
	if q.limit <= 0 || q.window <= 0 {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expire(q.clock.Now())
	return q.used
}

func (q *Quota) expire(now time.Time) {
	i := 0
	for i < len(q.buckets) && !q.buckets[i].at.Add(q.window).After(now) {
		q.used -= q.buckets[i].n
		i++
	}
	if i > 0 {
		q.buckets = append(q.buckets[:0], q.buckets[i:]...)
	}
}

// Take counts n now if the window has room for it and returns a function
// that takes the count back (for a message the server refused before
// accepting anything; calls after the first do nothing). Otherwise it
// counts nothing, returns ok false and the earliest time room for n will
// have freed; that time is zero when n alone exceeds the limit, which no
// wait cures.
func (q *Quota) Take(n int) (giveBack func(), freeAt time.Time, ok bool) {
	if q.limit <= 0 || q.window <= 0 || n <= 0 {
		return noop, time.Time{}, true
	}
	if n > q.limit {
		return noop, time.Time{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	q.expire(now)
	if need := q.used + n - q.limit; need > 0 {
		freed := 0
		for _, b := range q.buckets {
			freed += b.n
			if freed >= need {
				return noop, b.at.Add(q.window), false
			}
		}
		return noop, now.Add(q.window), false // not reached: n ≤ limit, so need ≤ used
	}
	at := now.Truncate(q.bucket).Add(q.bucket) // the bucket's end: never before now
	if k := len(q.buckets); k > 0 && q.buckets[k-1].at.Equal(at) {
		q.buckets[k-1].n += n
	} else {
		q.buckets = append(q.buckets, quotaBucket{at: at, n: n})
	}
	q.used += n
	var once sync.Once
	return func() {
		once.Do(func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			for i := range q.buckets {
				if q.buckets[i].at.Equal(at) {
					q.buckets[i].n -= n
					q.used -= n
					return
				}
			}
		})
	}, time.Time{}, true
}
