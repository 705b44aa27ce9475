package sqlstoretest

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/storeseam"
)

// TestMultiProcessNode is a node of TestMultiProcess: the test binary
// re-executed with envNode set. Outside that it skips.
func TestMultiProcessNode(t *testing.T) {
	raw := os.Getenv(envNode)
	if raw == "" {
		t.Skip("a node of TestMultiProcess, run only by it")
	}
	os.Exit(runNode(raw))
}

// pidTransport tells the token endpoint which process asks, so that the
// parent can kill the one holding the refresh lease.
type pidTransport struct{ base http.RoundTripper }

func (p pidTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Node-Pid", strconv.Itoa(os.Getpid()))
	return p.base.RoundTrip(r)
}

// runNode opens the database, builds a Registry sharing it, says "ready",
// and on "go" sends from nodeSenders goroutines until its standard input
// closes; then it prints its report.
func runNode(raw string) int {
	var o nodeOrders
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		fmt.Fprintln(os.Stderr, "orders:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	emit := func(ev nodeEvent) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(ev)
	}

	db, err := sql.Open(driverOf(o.DSN), o.DSN)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		return 2
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	st, err := emailconn.NewSQLStore(ctx, db)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewSQLStore:", err)
		return 2
	}
	var storeAttempts atomic.Int64
	opts := &emailconn.Options{
		Logger: slog.New(&storeAttemptCounter{n: &storeAttempts}),
		// Sessions are opened, and authenticate with the current access
		// token, every few messages: the tokens are in use all along.
		MaxMessagesPerSession: 10,
		Store:                 st,
		HTTPClient:            &http.Client{Transport: pidTransport{http.DefaultTransport}, Timeout: 10 * time.Second},
		OnRefreshToken: func(_ context.Context, _, rt string) error {
			emit(nodeEvent{Ev: "rotated", RT: rt})
			return nil
		},
	}
	storeseam.Set(opts, storeseam.Seams{LimitMinute: scaledMinute, LeaseTTL: leaseTTL})
	cfg := emailconn.Config{
		Connections: []emailconn.Connection{{Name: o.Connection, MailServer: o.SMTP, TLSMode: "none", AllowInsecureAuth: true, From: "engine@example.com",
			AuthType: "oauth2", Username: "robot@example.com", OAuth2Config: o.OAuth2,
			MaxSessions: maxSessions, MessagesPerMinute: perMinute, SendTimeout: 20 * time.Second},
			// The same OAuth2 configuration without limits, on a server of
			// its own: its sessions keep using the token while the rated
			// connection waits out its window.
			{Name: o.Connection + "-steady", MailServer: o.SMTP2, TLSMode: "none", AllowInsecureAuth: true, From: "engine@example.com",
				AuthType: "oauth2", Username: "robot@example.com", OAuth2Config: o.OAuth2, SendTimeout: 20 * time.Second}},
		OAuth2Configs: []emailconn.OAuth2Config{{Name: o.OAuth2, GrantType: "refresh_token", TokenURL: o.TokenURL,
			ClientID: "app", ClientSecret: "client-secret", RefreshToken: "rt-0"}},
	}
	r, err := emailconn.NewRegistry(cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NewRegistry:", err)
		return 2
	}
	defer r.Close()
	s, err := r.Sender(o.Connection)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Sender:", err)
		return 2
	}
	steady, err := r.Sender(o.Connection + "-steady")
	if err != nil {
		fmt.Fprintln(os.Stderr, "Sender:", err)
		return 2
	}

	emit(nodeEvent{Ev: "ready"})
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() || in.Text() != "go" {
		return 2
	}
	var stop atomic.Bool
	go func() {
		for in.Scan() {
		}
		stop.Store(true) // the parent closed our standard input
	}()

	var mu sync.Mutex
	rep := nodeEvent{Ev: "done", Errs: map[string]int{}}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for i := range nodeSenders + steadySenders {
		s := s
		if i >= nodeSenders {
			s = steady
		}
		wg.Go(func() {
			for !stop.Load() {
				subject := fmt.Sprintf("p%d-%d", os.Getpid(), seq.Add(1))
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				_, err := s.Send(ctx, &emailconn.Message{To: []string{"ops@example.com"}, Subject: subject, Text: "x"})
				cancel()
				mu.Lock()
				if err == nil {
					rep.Sent++
				} else {
					kind := sentinel(err)
					rep.Errs[kind]++
					rep.Failed = append(rep.Failed, subject)
					if kind != "ErrStore" && len(rep.Samples) < 5 {
						rep.Samples = append(rep.Samples, err.Error())
					}
				}
				mu.Unlock()
				if s == steady {
					time.Sleep(100 * time.Millisecond) // a steady trickle, not a load of its own
				}
			}
		})
	}
	wg.Wait()
	rep.StoreAttempts = int(storeAttempts.Load())
	emit(rep)
	return 0
}

// storeAttemptCounter counts the failed attempts the Sender logs (Warn)
// whose error says Options.Store failed: the sends the retry policy tried
// again while the database was away.
type storeAttemptCounter struct{ n *atomic.Int64 }

func (h *storeAttemptCounter) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn
}

func (h *storeAttemptCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" && strings.Contains(a.Value.String(), "Options.Store") {
			h.n.Add(1)
		}
		return true
	})
	return nil
}

func (h *storeAttemptCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *storeAttemptCounter) WithGroup(string) slog.Handler      { return h }

// sentinel names the sentinel err matches.
func sentinel(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{{"ErrStore", emailconn.ErrStore}, {"ErrReauthorize", emailconn.ErrReauthorize}, {"ErrThrottled", emailconn.ErrThrottled},
		{"ErrAuthFailed", emailconn.ErrAuthFailed}, {"ErrTimeout", emailconn.ErrTimeout}, {"ErrConnect", emailconn.ErrConnect},
		{"ErrDeliveryUnknown", emailconn.ErrDeliveryUnknown}, {"context.DeadlineExceeded", context.DeadlineExceeded}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return "other"
}
