package emailconn_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/memstore"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// Issue 15: the OAuth2 token of a configuration is shared by the
// Registries of several nodes through Options.Store. The nodes are
// Registries in one process sharing one internal/memstore on the token
// caches' fake clock; internal/oauthtoken's TestShared* cover the protocol's
// corners (lease lost mid-refresh, invalid_grant after another node's
// rotation, re-consent) and internal/sqlstoretest runs it across processes.

// TestIssue15_OneTokenRequestPerExpiryAcrossNodes: three registries, six
// concurrent sends each, tokens that rotate their refresh token at every
// request: one token request per expiry in all, OnRefreshToken once per
// rotation across the nodes, no invalid_grant.
func TestIssue15_OneTokenRequestPerExpiryAcrossNodes(t *testing.T) {
	clock := useTokenClock(t)
	st := memstore.New(clock.Now)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	var auths atomic.Int32
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(string) bool { return true })})
	var mu sync.Mutex
	var persisted []string
	var regs []*emailconn.Registry
	for range 3 {
		// Sessions closed after each send: each one authenticates anew.
		regs = append(regs, oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st, IdleTimeout: -1,
			OnRefreshToken: func(_ context.Context, _, rt string) error {
				mu.Lock()
				persisted = append(persisted, rt)
				mu.Unlock()
				return nil
			}}))
	}
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		for _, r := range regs {
			for range 6 {
				wg.Go(func() {
					if _, err := sendVia(t, r); err != nil {
						t.Errorf("round %d: %v", round, err)
					}
				})
			}
		}
		wg.Wait()
		if n := te.requests.Load(); n != int32(round) {
			t.Fatalf("after round %d: %d token requests, want %d", round, n, round)
		}
		clock.Advance(2 * time.Hour) // every node's token expires
	}
	mu.Lock()
	defer mu.Unlock()
	if len(persisted) != rounds {
		t.Fatalf("OnRefreshToken ran %d times for %d rotations", len(persisted), rounds)
	}
	te.mu.Lock()
	current := te.refresh
	te.mu.Unlock()
	for i, r := range regs {
		// Every node's configuration shows the current refresh token, so
		// Config.Save on any node writes one that works.
		if got := string(r.Config().OAuth2Configs[0].RefreshToken); got != current {
			t.Errorf("node %d shows refresh token %q, want the current %q", i, got, current)
		}
	}
}

// TestIssue15_TestOAuth2Shared: the Test button on one node refreshes
// through the shared lease and record: the other node then sends with the
// tested token without a request of its own, and the report says the
// state is shared.
func TestIssue15_TestOAuth2Shared(t *testing.T) {
	clock := useTokenClock(t)
	st := memstore.New(clock.Now)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	var auths atomic.Int32
	var seen sync.Map
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Mechanisms: []string{"XOAUTH2"},
		ValidateToken: acceptTokens(&auths, func(tok string) bool { seen.Store(tok, true); return true })})
	a := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st})
	b := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st})
	rep := a.TestOAuth2(t.Context(), "contoso")
	if !rep.OK {
		t.Fatal(rep.Error)
	}
	if !strings.Contains(strings.Join(rep.Hints, " "), "shared with the engine's other nodes") {
		t.Errorf("hints %q do not say the token state is shared", rep.Hints)
	}
	if _, err := sendVia(t, b); err != nil {
		t.Fatal(err)
	}
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("%d token requests, want the test's one", n)
	}
	if _, ok := seen.Load("tok-1"); !ok {
		t.Fatal("node b did not send with the tested token")
	}
	// A second test rotates again, under the lease; node b follows.
	if rep := b.TestOAuth2(t.Context(), "contoso"); !rep.OK {
		t.Fatal(rep.Error)
	}
	if _, err := sendVia(t, a); err != nil {
		t.Fatal(err)
	}
	if n := te.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

// tokenStoreDown is a Store whose OAuth2 keys are unreachable; the
// session slots work.
type tokenStoreDown struct{ emailconn.Store }

var errRefused = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s tokenStoreDown) Load(ctx context.Context, key string) ([]byte, int64, error) {
	if strings.HasPrefix(key, "oauth2/") {
		return nil, 0, errRefused
	}
	return s.Store.Load(ctx, key)
}

func (s tokenStoreDown) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	if strings.HasPrefix(key, "oauth2/") {
		return -1, 0, errRefused
	}
	return s.Store.Acquire(ctx, key, limit, owner, ttl)
}

// TestIssue15_TokenStoreDown: with the store unreachable an OAuth2 send
// needing a new token fails with ErrStore (temporary, at StageToken) and
// no token request is made: refreshing without the lease could present a
// refresh token another node has rotated.
func TestIssue15_TokenStoreDown(t *testing.T) {
	useTokenClock(t)
	te := newTokenEndpoint(t)
	srv := xoauth2Server(t)
	r := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: tokenStoreDown{memstore.New(nil)}, Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	_, err := sendVia(t, r)
	var e *emailconn.Error
	if !errors.Is(err, emailconn.ErrStore) || !errors.As(err, &e) || e.Stage != emailconn.StageToken || !e.Temporary() {
		t.Fatalf("err %v, want a temporary ErrStore at the token stage", err)
	}
	if errors.Is(err, emailconn.ErrConnect) || errors.Is(err, emailconn.ErrAuthFailed) || errors.Is(err, emailconn.ErrReauthorize) {
		t.Fatalf("err %v matches another sentinel too", err)
	}
	if n := te.requests.Load(); n != 0 {
		t.Fatalf("%d token requests without the store", n)
	}
	if strings.Contains(err.Error(), "rt-0") || strings.Contains(err.Error(), te.secret) {
		t.Fatal("the error shows a secret")
	}
	// The Test button says so too, and asks nothing of the endpoint.
	rep := r.TestOAuth2(t.Context(), "contoso")
	if rep.OK || !errors.Is(rep.Err, emailconn.ErrStore) || !strings.Contains(strings.Join(rep.Hints, " "), "Options.Store") {
		t.Fatalf("TestOAuth2 with the store down: ok %v, err %v, hints %q", rep.OK, rep.Err, rep.Hints)
	}
	if n := te.requests.Load(); n != 0 {
		t.Fatalf("%d token requests without the store", n)
	}
}

// TestIssue15_ReconsentWinsOverStoredToken: after the grant was revoked
// and authorised again, the administrator puts the new refresh token in
// one node's configuration (Update): that node presents it, not the
// stored record's dead one, and writes it to the record; the other node,
// still configured with the old token, then takes the new family from the
// record.
func TestIssue15_ReconsentWinsOverStoredToken(t *testing.T) {
	clock := useTokenClock(t)
	st := memstore.New(clock.Now)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.rotate = true })
	srv := xoauth2Server(t)
	a := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st, IdleTimeout: -1})
	b := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st, IdleTimeout: -1})
	if _, err := sendVia(t, a); err != nil {
		t.Fatal(err)
	}
	// The family is revoked; re-consent yields a new refresh token.
	te.set(func(te *tokenEndpoint) { te.refresh = "rt-consent" })
	if err := a.Update(func(cfg *emailconn.Config) error {
		cfg.OAuth2Configs[0].RefreshToken = "rt-consent"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := sendVia(t, a); err != nil {
		t.Fatalf("the re-consented node: %v", err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := sendVia(t, b); err != nil {
		t.Fatalf("the other node after re-consent: %v", err)
	}
	te.mu.Lock()
	current := te.refresh
	te.mu.Unlock()
	if got := string(b.Config().OAuth2Configs[0].RefreshToken); got != current {
		t.Fatalf("the other node shows %q, want the new family's %q", got, current)
	}
	if n := te.requests.Load(); n != 3 {
		t.Fatalf("%d token requests, want 3 (no failed one)", n)
	}
}

// TestIssue15_LeaseHolderLost: the node holding the refresh lease hangs
// at the token endpoint; the other node waits for it, and takes over once
// the lease (30 s on the store's fake clock) has run out, without the
// hung node ever answering.
func TestIssue15_LeaseHolderLost(t *testing.T) {
	clock := useTokenClock(t)
	st := memstore.New(clock.Now)
	te := newTokenEndpoint(t)
	te.set(func(te *tokenEndpoint) { te.fail = "hang" })
	srv := xoauth2Server(t)
	a := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st})
	b := oauthRegistry(t, srv, te, "refresh_token", &emailconn.Options{Store: st})
	ctxA, cancelA := context.WithCancel(t.Context())
	defer cancelA()
	go func() {
		rt, _ := a.Resolve("P")
		_, _ = rt.Send(ctxA, &emailconn.Message{To: []string{"ops@example.com"}, Text: "t"})
	}()
	select {
	case <-te.hung: // node a holds the lease and hangs mid-refresh
	case <-time.After(5 * time.Second):
		t.Fatal("node a's token request did not arrive")
	}
	te.set(func(te *tokenEndpoint) { te.fail = "" })
	got := make(chan error, 1)
	go func() {
		_, err := sendVia(t, b)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("node b sent (%v) while node a held the lease", err)
	case <-time.After(100 * time.Millisecond):
	}
	if n := te.requests.Load(); n != 1 {
		t.Fatalf("%d token requests while the lease was held, want 1", n)
	}
	clock.Advance(31 * time.Second) // the lease runs out
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node b did not take over after the lease expired")
	}
	if n := te.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want 2", n)
	}
}

// TestIssue15_TestConnectionSaysShared: Test Connection with a Store says
// in a hint that the connection's limits are shared by the nodes, naming
// the keys.
func TestIssue15_TestConnectionSaysShared(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{})
	c := emailconn.Connection{Name: "billing", MailServer: srv.Addr(), From: "engine@example.com", MaxSessions: 3}
	rep := c.Test(t.Context(), &emailconn.TestOptions{Options: &emailconn.Options{Store: memstore.New(nil)}})
	if !rep.OK {
		t.Fatal(rep.Err)
	}
	hints := strings.Join(rep.Hints, " ")
	if !strings.Contains(hints, "shared with the engine's other nodes") || !strings.Contains(hints, "smtp/billing/sessions") || strings.Contains(hints, "smtp/billing/rate") {
		t.Fatalf("hints %q do not say the state is shared", rep.Hints)
	}
	rep = c.Test(t.Context(), nil)
	if strings.Contains(strings.Join(rep.Hints, " "), "other nodes") {
		t.Fatalf("without a Store the hints say %q", rep.Hints)
	}
}
