package oauthtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// A fakeStore is one record and one one-slot lease on a fake clock, as
// the Store of the root package keeps them; each node sees it through a
// fakeShared with its own owner.
type fakeStore struct {
	clock *fakeClock

	mu         sync.Mutex
	value      []byte
	version    int64
	owner      string
	leaseUntil time.Time
	down       bool // every call fails
	locks      int  // leases granted
}

var errDown = errors.New("store down")

type fakeShared struct {
	st    *fakeStore
	owner string
}

func (f *fakeShared) Load(ctx context.Context) ([]byte, int64, error) {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return nil, 0, errDown
	}
	return append([]byte(nil), st.value...), st.version, nil
}

func (f *fakeShared) Swap(ctx context.Context, version int64, value []byte) (bool, error) {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return false, errDown
	}
	if version != st.version {
		return false, nil
	}
	st.value, st.version = append([]byte(nil), value...), version+1
	return true, nil
}

func (f *fakeShared) Lock(ctx context.Context, ttl time.Duration) (bool, time.Duration, error) {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.down {
		return false, 0, errDown
	}
	now := st.clock.Now()
	if st.owner != "" && now.Before(st.leaseUntil) {
		return false, st.leaseUntil.Sub(now), nil
	}
	st.owner, st.leaseUntil = f.owner, now.Add(ttl)
	st.locks++
	return true, 0, nil
}

func (f *fakeShared) Unlock(ctx context.Context) error {
	st := f.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.owner == f.owner {
		st.owner = ""
	}
	return nil
}

// write puts rec into the store as another node would.
func (st *fakeStore) write(t *testing.T, rec sharedRecord) {
	t.Helper()
	v, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.value, st.version = v, st.version+1
	st.mu.Unlock()
}

// A rotatingEndpoint rotates the refresh token at every request and, as
// Auth0 does, revokes the whole family when a rotated token is presented
// again.
type rotatingEndpoint struct {
	mu       sync.Mutex
	current  string
	used     map[string]bool
	n        int
	revoked  bool
	reuses   int
	lifetime int // expires_in, seconds
}

func (e *rotatingEndpoint) handle(w http.ResponseWriter, r *http.Request, _ int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rt := r.PostForm.Get("refresh_token")
	if e.revoked || rt != e.current {
		if e.used[rt] {
			e.reuses++
			e.revoked = true
		}
		writeError(w, http.StatusBadRequest, "invalid_grant", "")
		return
	}
	e.used[rt] = true
	e.n++
	e.current = fmt.Sprintf("rt-%d", e.n)
	writeToken(w, fmt.Sprintf("at-%d", e.n), e.lifetime, e.current)
}

func newRotating(lifetime int) *rotatingEndpoint {
	return &rotatingEndpoint{current: "rt-0", used: map[string]bool{}, lifetime: lifetime}
}

// sharedNodes makes n Caches sharing st, each with its own OnRotate
// counter.
func sharedNodes(t *testing.T, n int, srv *tokenServer, st *fakeStore, rotations *atomic.Int32, configured string) []*Cache {
	t.Helper()
	var cs []*Cache
	for i := range n {
		cs = append(cs, New(Config{
			Name:         "contoso",
			GrantType:    GrantRefreshToken,
			TokenURL:     srv.tokenURL(),
			ClientID:     "client-id",
			AuthStyle:    oauth2.AuthStyleInParams,
			RefreshToken: secretFunc(configured),
			OnRotate: func(context.Context, string) error {
				rotations.Add(1)
				return nil
			},
			Shared: &fakeShared{st: st, owner: fmt.Sprintf("node-%d", i)},
			Now:    st.clock.Now,
		}))
	}
	return cs
}

// TestSharedOneRequestPerExpiry: four Caches, as four processes, each
// with many callers, make one token request per expiry together, never
// present a rotated refresh token twice, and OnRotate runs once per
// rotation.
func TestSharedOneRequestPerExpiry(t *testing.T) {
	ep := newRotating(3600)
	srv := newTokenServer(t, ep.handle)
	st := &fakeStore{clock: newClock()}
	var rotations atomic.Int32
	caches := sharedNodes(t, 4, srv, st, &rotations, "rt-0")
	for round := 1; round <= 5; round++ {
		var wg sync.WaitGroup
		for _, c := range caches {
			for range 10 {
				wg.Go(func() {
					tok, err := c.Token(t.Context())
					if err != nil {
						t.Errorf("round %d: %v", round, err)
						return
					}
					if want := fmt.Sprintf("at-%d", round); tok.AccessToken != want {
						t.Errorf("round %d: token %s, want %s", round, tok.AccessToken, want)
					}
				})
			}
		}
		wg.Wait()
		if got := srv.count(); got != round {
			t.Fatalf("after round %d: %d token requests, want %d", round, got, round)
		}
		st.clock.Advance(time.Hour) // every cached token expires
	}
	if ep.reuses != 0 || ep.revoked {
		t.Fatalf("a rotated refresh token was presented again (%d reuses)", ep.reuses)
	}
	if got := rotations.Load(); got != 5 {
		t.Fatalf("OnRotate ran %d times for 5 rotations", got)
	}
	if rt, _ := caches[3].RefreshToken(); rt != "rt-5" {
		t.Fatalf("a node holds refresh token %q, want the last rotated one", rt)
	}
}

// TestSharedInvalidGrantReload: the endpoint refuses the refresh token
// because another node rotated it meanwhile; the Cache reloads the record
// and takes the other node's token instead of reporting ErrInvalidGrant.
func TestSharedInvalidGrantReload(t *testing.T) {
	st := &fakeStore{clock: newClock()}
	var srv *tokenServer
	srv = newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Another node rotated rt-0 a moment ago and wrote its record.
		st.write(t, sharedRecord{RefreshToken: "rt-other", AccessToken: "at-other", TokenType: "Bearer",
			Expiry: st.clock.Now().Add(time.Hour), Obtained: st.clock.Now(), Known: []string{fingerprint("rt-0"), fingerprint("rt-other")}})
		writeError(w, http.StatusBadRequest, "invalid_grant", "")
	})
	var rotations atomic.Int32
	c := sharedNodes(t, 1, srv, st, &rotations, "rt-0")[0]
	tok, err := c.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at-other" || srv.count() != 1 || rotations.Load() != 0 {
		t.Fatalf("token %s after %d requests and %d rotations; want the other node's after 1 and 0", tok.AccessToken, srv.count(), rotations.Load())
	}
	if rt, _ := c.RefreshToken(); rt != "rt-other" {
		t.Fatalf("refresh token %q, want the other node's", rt)
	}
}

// TestSharedInvalidGrantTwice: with nothing new in the record, a refused
// refresh token is reported after one retry.
func TestSharedInvalidGrantTwice(t *testing.T) {
	st := &fakeStore{clock: newClock()}
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeError(w, http.StatusBadRequest, "invalid_grant", "")
	})
	var rotations atomic.Int32
	c := sharedNodes(t, 1, srv, st, &rotations, "rt-0")[0]
	if _, err := c.Token(t.Context()); !errors.Is(err, ErrInvalidGrant) {
		t.Fatalf("err %v, want ErrInvalidGrant", err)
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("%d requests, want 1 (the reload found nothing new)", n)
	}
}

// TestSharedLeaseLost: the lease holder's request hangs past its lease;
// another node takes the lease after it expired and refreshes.
func TestSharedLeaseLost(t *testing.T) {
	st := &fakeStore{clock: newClock()}
	hang := make(chan struct{})
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hang) }) })
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			<-hang
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "")
			return
		}
		writeToken(w, "at-2", 3600, "")
	})
	var rotations atomic.Int32
	caches := sharedNodes(t, 2, srv, st, &rotations, "rt-0")
	done := make(chan error, 1)
	go func() {
		_, err := caches[0].Token(t.Context())
		done <- err
	}()
	srv.awaitRequests(t, 1) // node 0 holds the lease and is mid-request
	got := make(chan string, 1)
	go func() {
		tok, err := caches[1].Token(t.Context())
		if err != nil {
			t.Error(err)
			got <- ""
			return
		}
		got <- tok.AccessToken
	}()
	select {
	case at := <-got:
		t.Fatalf("node 1 got %q while node 0 held the lease", at)
	case <-time.After(50 * time.Millisecond):
	}
	st.clock.Advance(defaultLeaseTTL + time.Second) // node 0's lease runs out
	select {
	case at := <-got:
		if at != "at-2" {
			t.Fatalf("node 1 got %q", at)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("node 1 did not take over after the lease expired")
	}
	release.Do(func() { close(hang) })
	<-done
}

// TestSharedStoreDown: with the store unreachable a valid cached token is
// still used; once it expired, Token fails with ErrShared and makes no
// request.
func TestSharedStoreDown(t *testing.T) {
	st := &fakeStore{clock: newClock()}
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, "")
	})
	var rotations atomic.Int32
	c := sharedNodes(t, 1, srv, st, &rotations, "rt-0")[0]
	if _, err := c.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.down = true
	st.mu.Unlock()
	st.clock.Advance(58 * time.Minute) // inside the refresh window, still valid
	if tok, err := c.Token(t.Context()); err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("got %v, %v; want the cached token", tok, err)
	}
	st.clock.Advance(time.Hour)
	_, err := c.Token(t.Context())
	if !errors.Is(err, ErrShared) || srv.count() != 1 {
		t.Fatalf("err %v after %d requests; want ErrShared after 1", err, srv.count())
	}
	if !isTemporary(err) {
		t.Fatal("a store failure is not temporary")
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// TestSharedReconsent: a configured refresh token the record never held
// (a new grant) wins over the record's; a configured token the record
// held (read back after a rotation) does not.
func TestSharedReconsent(t *testing.T) {
	st := &fakeStore{clock: newClock()}
	var presented []string
	var mu sync.Mutex
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		presented = append(presented, r.PostForm.Get("refresh_token"))
		mu.Unlock()
		writeToken(w, fmt.Sprintf("at-%d", n), 3600, fmt.Sprintf("rt-new-%d", n))
	})
	// The record holds an old family: rt-old-2, rotated from rt-old-1.
	st.write(t, sharedRecord{RefreshToken: "rt-old-2", AccessToken: "at-old", Expiry: st.clock.Now().Add(time.Hour),
		Obtained: st.clock.Now(), Known: []string{fingerprint("rt-old-1"), fingerprint("rt-old-2")}})
	var rotations atomic.Int32
	stale := sharedNodes(t, 1, srv, st, &rotations, "rt-old-1")[0]
	if tok, err := stale.Token(t.Context()); err != nil || tok.AccessToken != "at-old" {
		t.Fatalf("a node configured with an old token of the family: %v, %v; want the record's token", tok, err)
	}
	fresh := sharedNodes(t, 1, srv, st, &rotations, "rt-consent")[0]
	tok, err := fresh.Token(t.Context())
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("re-consented node: %v, %v", tok, err)
	}
	if len(presented) != 1 || presented[0] != "rt-consent" {
		t.Fatalf("presented %q, want the new grant's token", presented)
	}
	st.clock.Advance(2 * time.Hour)
	if tok, err := stale.Token(t.Context()); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("old node after re-consent: %v, %v", tok, err)
	}
	if presented[1] != "rt-new-1" {
		t.Fatalf("old node presented %q, want the record's rt-new-1", presented[1])
	}
}

// TestSharedRefreshForced: Refresh goes through the lease and writes the
// record, so the other node adopts the tested token without a request.
func TestSharedRefreshForced(t *testing.T) {
	ep := newRotating(3600)
	srv := newTokenServer(t, ep.handle)
	st := &fakeStore{clock: newClock()}
	var rotations atomic.Int32
	cs := sharedNodes(t, 2, srv, st, &rotations, "rt-0")
	if _, err := cs[0].Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tok, err := cs[0].Refresh(t.Context()); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("Refresh: %v, %v", tok, err)
	}
	if tok, err := cs[1].Token(t.Context()); err != nil || tok.AccessToken != "at-2" {
		t.Fatalf("other node: %v, %v", tok, err)
	}
	if srv.count() != 2 || rotations.Load() != 2 || ep.reuses != 0 || st.locks != 2 {
		t.Fatalf("%d requests, %d rotations, %d reuses, %d leases", srv.count(), rotations.Load(), ep.reuses, st.locks)
	}
}
