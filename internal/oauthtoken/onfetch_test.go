package oauthtoken

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

type fetchKey struct{}

// TestIssue18_OnFetchOncePerRequest: OnFetch hears of a request shared by
// many callers once, in the context of the caller that started it without
// its cancellation, with the new token's expiry; a failed request with its
// error and no expiry.
func TestIssue18_OnFetchOncePerRequest(t *testing.T) {
	gate := make(chan struct{})
	fail := false
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if fail {
			writeError(w, http.StatusBadRequest, "invalid_client", "no")
			return
		}
		<-gate
		writeToken(w, "at-1", 3600, "")
	})
	clock := newClock()
	cfg := ccConfig(s, clock)
	type call struct {
		ctxValue any
		ctxErr   error
		expiry   time.Time
		err      error
	}
	var mu sync.Mutex
	var calls []call
	cfg.OnFetch = func(ctx context.Context, took time.Duration, expiry time.Time, err error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{ctx.Value(fetchKey{}), ctx.Err(), expiry, err})
	}
	c := New(cfg)
	piled := waiters(t, c)
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), fetchKey{}, "first"))
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.Token(ctx) })
	piled(1)
	for range 9 {
		wg.Go(func() { _, _ = c.Token(context.Background()) })
	}
	piled(9)
	cancel() // the first caller gives up; the request goes on
	close(gate)
	wg.Wait()
	if _, err := c.Token(context.Background()); err != nil { // the request's result, cached
		t.Fatal(err)
	}
	mu.Lock()
	if len(calls) != 1 || calls[0].ctxValue != "first" || calls[0].ctxErr != nil || calls[0].err != nil ||
		!calls[0].expiry.Equal(clock.Now().Add(time.Hour)) {
		t.Errorf("OnFetch calls %+v, want one in the first caller's uncancelled context, expiring in an hour", calls)
	}
	mu.Unlock()

	fail = true
	clock.Advance(2 * time.Hour)
	if _, err := c.Token(context.Background()); err == nil {
		t.Fatal("Token succeeded against a refusing endpoint")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[1].err == nil || !calls[1].expiry.IsZero() {
		t.Errorf("OnFetch after a refusal: %+v, want an error without expiry", calls)
	}
}
