package emailconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// hookRecorder is an Options.DialContext that records what it was asked
// and connects somewhere else: a proxy or a socket, as far as the Sender
// can tell.
type hookRecorder struct {
	mu    sync.Mutex
	asked []string
	dial  func(ctx context.Context) (net.Conn, error)
}

func (h *hookRecorder) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	h.mu.Lock()
	h.asked = append(h.asked, network+" "+addr)
	h.mu.Unlock()
	return h.dial(ctx)
}

func (h *hookRecorder) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.asked)
}

// unixRelay listens on a Unix socket and forwards every connection to the
// TCP address target: a local relay reached over a socket.
func unixRelay(t *testing.T, target string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("no Unix sockets here: %v", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return path
}

func TestIssue13_4_DialContext(t *testing.T) {
	t.Parallel()
	t.Run("issue13-4/unix-socket-relay", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		sock := unixRelay(t, srv.Addr())
		h := &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}
		c := emailconn.Connection{Name: "relay", MailServer: "127.0.0.1:25", From: "engine@example.com", SendTimeout: 5 * time.Second}
		s := mustSender(t, c, &emailconn.Options{DialContext: h.DialContext})
		rc, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if err != nil {
			t.Fatalf("Send through a Unix socket: %v", err)
		}
		if rc.Server != "127.0.0.1:25" || !slices.Equal(h.calls(), []string{"tcp 127.0.0.1:25"}) {
			t.Errorf("Receipt.Server = %q, hook asked %q; want 127.0.0.1:25 both", rc.Server, h.calls())
		}
		if len(srv.Messages()) != 1 {
			t.Errorf("the server got %d messages", len(srv.Messages()))
		}
	})

	t.Run("issue13-4/starttls-through-proxy-verifies-the-server", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"u": "p"}, RequireAuth: true})
		h := &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr())
		}}
		c := emailconn.Connection{Name: "tls", MailServer: "127.0.0.1:587", EnableTLS: true, RootCAs: smtptest.SharedCA().Pool(),
			Username: "u", Password: "p", From: "engine@example.com", SendTimeout: 5 * time.Second}
		rc, err := mustSender(t, c, &emailconn.Options{DialContext: h.DialContext}).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if err != nil || rc.TLSVersion == "" || rc.Mechanism != "PLAIN" {
			t.Fatalf("Send = %+v, %v; want TLS and PLAIN", rc, err)
		}
		// The certificate is checked against the configured name, not
		// whatever the hook reached.
		c.MailServer = "localhost.invalid:587"
		s := mustSender(t, c, emailconn.WithLookup(&emailconn.Options{DialContext: h.DialContext, Retry: emailconn.RetryPolicy{MaxAttempts: 1}},
			func(context.Context, string) ([]netip.Addr, error) {
				return []netip.Addr{netip.MustParseAddr("192.0.2.7")}, nil
			}))
		_, err = s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrTLSUnavailable) {
			t.Errorf("Send to a name the certificate does not hold = %v, want ErrTLSUnavailable", err)
		}
		if got := h.calls(); got[len(got)-1] != "tcp 192.0.2.7:587" {
			t.Errorf("hook asked %q, want the resolved address last", got)
		}
	})

	t.Run("issue13-4/no-loopback-exception-for-credentials", func(t *testing.T) {
		// Without TLS, credentials may go to a loopback server; through a
		// hook the Sender cannot know where the bytes go (a proxy on
		// 127.0.0.1 forwards them to the network), so they are refused.
		srv := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"u": "p"}, RequireAuth: true})
		h := &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr())
		}}
		c := emailconn.Connection{Name: "plain", MailServer: "127.0.0.1:25", Username: "u", Password: "p", From: "engine@example.com", SendTimeout: 5 * time.Second}
		opts := &emailconn.Options{DialContext: h.DialContext, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}
		_, err := mustSender(t, c, opts).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrInsecureAuth) {
			t.Fatalf("plaintext AUTH through a hook = %v, want ErrInsecureAuth", err)
		}
		for _, l := range srv.Transcript() {
			if strings.HasPrefix(strings.ToUpper(l), "AUTH") {
				t.Errorf("the server saw %q", l)
			}
		}
		// The same server dialled directly keeps the loopback exception,
		// and AllowInsecureAuth lets the hook's session authenticate.
		c.MailServer = srv.Addr()
		if _, err := mustSender(t, c, nil).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"}); err != nil {
			t.Errorf("direct plaintext AUTH on loopback: %v", err)
		}
		c.MailServer, c.AllowInsecureAuth = "127.0.0.1:25", true
		if _, err := mustSender(t, c, opts).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"}); err != nil {
			t.Errorf("AllowInsecureAuth through a hook: %v", err)
		}
	})

	t.Run("issue13-4/policy-judges-the-address-the-hook-is-asked-for", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		h := &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr())
		}}
		// The name resolves to a metadata address, a loopback one and a
		// private one: only the private one, which the policy allows, is
		// passed to the hook.
		lookup := func(context.Context, string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("169.254.169.254"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3")}, nil
		}
		c := emailconn.Connection{Name: "tenant", MailServer: "smtp.tenant.example:2525", From: "engine@example.com", SendTimeout: 5 * time.Second}
		opts := emailconn.WithLookup(&emailconn.Options{DialContext: h.DialContext, DialPolicy: &emailconn.DialPolicy{AllowPrivate: true}, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}, lookup)
		rc, err := mustSender(t, c, opts).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := h.calls(); !slices.Equal(got, []string{"tcp 10.1.2.3:2525"}) || rc.Server != "10.1.2.3:2525" {
			t.Errorf("hook asked %q, Receipt.Server %q; want only tcp 10.1.2.3:2525", got, rc.Server)
		}
		// Nothing allowed: the hook is never called.
		opts.DialPolicy = &emailconn.DialPolicy{}
		h2 := &hookRecorder{dial: h.dial}
		opts.DialContext = h2.DialContext
		_, err = mustSender(t, c, opts).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrBlocked) || len(h2.calls()) != 0 {
			t.Errorf("Send = %v, hook asked %q; want ErrBlocked and no call", err, h2.calls())
		}
	})

	t.Run("issue13-4/hook-errors", func(t *testing.T) {
		c := emailconn.Connection{Name: "x", MailServer: "127.0.0.1:25", From: "engine@example.com"}
		proxyErr := errors.New("proxy: connection refused by upstream")
		h := &hookRecorder{dial: func(context.Context) (net.Conn, error) { return nil, proxyErr }}
		_, err := mustSender(t, c, &emailconn.Options{DialContext: h.DialContext, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrConnect) || !errors.Is(err, proxyErr) {
			t.Errorf("Send with a failing hook = %v, want ErrConnect wrapping the hook's error", err)
		}
		h = &hookRecorder{dial: func(context.Context) (net.Conn, error) { return nil, nil }}
		_, err = mustSender(t, c, &emailconn.Options{DialContext: h.DialContext, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrConnect) || !strings.Contains(err.Error(), "DialContext returned neither") {
			t.Errorf("Send with a hook returning nil, nil = %v", err)
		}
		// The hook gets the caller's context: cancelling the send ends it.
		ctx, cancel := context.WithCancel(context.Background())
		h = &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}}
		_, err = mustSender(t, c, &emailconn.Options{DialContext: h.DialContext}).Send(ctx, &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Send cancelled in the hook = %v, want context.Canceled", err)
		}
	})

	t.Run("issue13-4/test-connection", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{})
		h := &hookRecorder{dial: func(ctx context.Context) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr())
		}}
		rep := emailconn.Connection{Name: "x", MailServer: "127.0.0.1:25", From: "engine@example.com"}.Test(context.Background(),
			&emailconn.TestOptions{Options: &emailconn.Options{DialContext: h.DialContext}})

		if !rep.OK || rep.Server.Address != "127.0.0.1:25" {
			t.Errorf("TestConnection through a hook: OK %v, address %q, %s", rep.OK, rep.Server.Address, rep.Sentence)
		}
	})
}
