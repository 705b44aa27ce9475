package dialguard

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingListener is a loopback TCP listener that records the remote
// address of every connection it accepts.
type countingListener struct {
	net.Listener
	mu       sync.Mutex
	accepted []string
	changed  chan struct{} // receives after each accept
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln, changed: make(chan struct{}, 100)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cl.mu.Lock()
			cl.accepted = append(cl.accepted, c.RemoteAddr().String())
			cl.mu.Unlock()
			c.Close()
			cl.changed <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return cl
}

func (cl *countingListener) port() string {
	return strings.TrimPrefix(cl.Addr().String(), "127.0.0.1:")
}

// assertNoAccepts proves that no refused dial reached the listener. It
// makes one allowed connection and waits until the listener has accepted
// it; a refused dial that had connected would have been queued, and
// accepted, before it. So the listener must have accepted exactly one
// connection, the allowed one.
func (cl *countingListener) assertNoAccepts(t *testing.T) {
	t.Helper()
	c, err := (&Policy{AllowLoopback: true}).DialContext(nil)(t.Context(), "tcp4", cl.Addr().String())
	if err != nil {
		t.Fatalf("allowed dial: %v", err)
	}
	defer c.Close()
	sentinel := c.LocalAddr().String()
	timeout := time.After(5 * time.Second)
	for {
		cl.mu.Lock()
		accepted := append([]string(nil), cl.accepted...)
		cl.mu.Unlock()
		for _, a := range accepted {
			if a == sentinel {
				if len(accepted) != 1 {
					t.Fatalf("listener accepted %d connections %v, want only the allowed one %s", len(accepted), accepted, sentinel)
				}
				return
			}
		}
		select {
		case <-cl.changed:
		case <-timeout:
			t.Fatalf("the allowed connection %s was not accepted; accepted %v", sentinel, accepted)
		}
	}
}

// TestDialRefusedBeforeConnect dials a loopback listener through a real
// net.Dialer with the policy in ControlContext and checks that the
// listener never sees a connection.
func TestDialRefusedBeforeConnect(t *testing.T) {
	ln := newCountingListener(t)
	port := ln.port()
	tests := []struct {
		name    string
		p       *Policy
		network string
		addr    string
	}{
		{"loopback refused", &Policy{}, "tcp", "127.0.0.1:" + port},
		{"loopback refused tcp4", &Policy{AllowPrivate: true, AllowCGNAT: true}, "tcp4", "127.0.0.1:" + port},
		{"mapped loopback", &Policy{}, "tcp", "[::ffff:127.0.0.1]:" + port},
		// (With "tcp6" the net package itself refuses an IPv4-mapped address.)
		{"name localhost", &Policy{}, "tcp", "localhost:" + port},
		{"port not allowed", &Policy{AllowLoopback: true, Ports: []int{25, 587}}, "tcp", "127.0.0.1:" + port},
		{"allow-list elsewhere", &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, "tcp", "127.0.0.1:" + port},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The raw dialer with Control installed.
			d := &net.Dialer{ControlContext: tt.p.Control}
			c, err := d.DialContext(t.Context(), tt.network, tt.addr)
			if err == nil {
				c.Close()
				t.Fatalf("Dialer{ControlContext: Control}.DialContext(%q, %q) connected, want %v", tt.network, tt.addr, ErrBlocked)
			}
			var opErr *net.OpError
			if !errors.Is(err, ErrBlocked) || !errors.As(err, &opErr) {
				t.Errorf("Dialer{ControlContext: Control}.DialContext(%q, %q) = %v, want a *net.OpError matching ErrBlocked", tt.network, tt.addr, err)
			}

			// The ready-made dialer.
			c, err = tt.p.DialContext(nil)(t.Context(), tt.network, tt.addr)
			if err == nil {
				c.Close()
				t.Fatalf("DialContext(%q, %q) connected, want %v", tt.network, tt.addr, ErrBlocked)
			}
			if want := "dial " + tt.network + ": destination not allowed"; !errors.Is(err, ErrBlocked) || err.Error() != want {
				t.Errorf("DialContext(%q, %q) = %v, want %q matching ErrBlocked", tt.network, tt.addr, err, want)
			}
		})
	}
	ln.assertNoAccepts(t)
}

func TestDialAllowed(t *testing.T) {
	ln := newCountingListener(t)
	for _, p := range []*Policy{
		{AllowLoopback: true},
		{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.1/128")}},
		{AllowLoopback: true, Ports: []int{25, mustAtoi(t, ln.port())}},
	} {
		for _, addr := range []string{ln.Addr().String(), "localhost:" + ln.port()} {
			c, err := p.DialContext(&net.Dialer{Timeout: 5 * time.Second})(t.Context(), "tcp4", addr)
			if err != nil {
				t.Errorf("DialContext(%q) with %+v = %v, want a connection", addr, *p, err)
				continue
			}
			c.Close()
			<-ln.changed
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	ap, err := netip.ParseAddrPort("127.0.0.1:" + s)
	if err != nil {
		t.Fatal(err)
	}
	return int(ap.Port())
}

// TestDialContextKeepsBase checks that DialContext keeps the base dialer's
// settings, runs its Control hooks after the policy's for allowed
// addresses only, and does not modify it.
func TestDialContextKeepsBase(t *testing.T) {
	ln := newCountingListener(t)
	var calls atomic.Int32
	hookErr := errors.New("base hook refuses")
	for _, tt := range []struct {
		name string
		base *net.Dialer
	}{
		{"ControlContext", &net.Dialer{ControlContext: func(context.Context, string, string, syscall.RawConn) error {
			calls.Add(1)
			return hookErr
		}}},
		{"Control", &net.Dialer{Control: func(string, string, syscall.RawConn) error {
			calls.Add(1)
			return hookErr
		}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			saved := *tt.base
			refused := (&Policy{}).DialContext(tt.base)
			if _, err := refused(t.Context(), "tcp4", ln.Addr().String()); !errors.Is(err, ErrBlocked) {
				t.Errorf("refused dial = %v, want %v", err, ErrBlocked)
			}
			if n := calls.Load(); n != 0 {
				t.Errorf("base hook called %d times for a refused address, want 0", n)
			}
			allowed := (&Policy{AllowLoopback: true}).DialContext(tt.base)
			if _, err := allowed(t.Context(), "tcp4", ln.Addr().String()); !errors.Is(err, hookErr) || errors.Is(err, ErrBlocked) {
				t.Errorf("allowed dial = %v, want the base hook's error", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("base hook called %d times for an allowed address, want 1", n)
			}
			if (tt.base.ControlContext == nil) != (saved.ControlContext == nil) || (tt.base.Control == nil) != (saved.Control == nil) {
				t.Errorf("DialContext modified the base dialer")
			}
		})
	}
	ln.assertNoAccepts(t)
}

// TestDialErrorsIdentical checks that refused metadata, private, loopback
// and port-not-allowed destinations give errors that match ErrBlocked and
// do not say which class was hit: identical from DialContext, and
// differing only in the address from a raw dialer.
func TestDialErrorsIdentical(t *testing.T) {
	p := &Policy{Ports: []int{25, 80}}
	targets := []string{
		"169.254.169.254:80",      // metadata
		"100.100.100.200:80",      // metadata (Alibaba)
		"[fd00:ec2::254]:80",      // metadata (AWS IPv6)
		"[64:ff9b::a9fe:a9fe]:80", // metadata through NAT64
		"10.0.0.5:25",             // private
		"[fd00::5]:25",            // unique local
		"100.64.0.1:25",           // CGNAT
		"127.0.0.1:25",            // loopback
		"[::ffff:127.0.0.1]:25",   // mapped loopback
		"[::1]:25",                // IPv6 loopback
		"8.8.8.8:22",              // port not allowed
		"[2001:4860:4860::8888]:22",
	}
	dial := p.DialContext(nil)
	raw := &net.Dialer{ControlContext: p.Control}
	const want = "dial tcp: destination not allowed"
	for _, addr := range targets {
		_, err := dial(t.Context(), "tcp", addr)
		if !errors.Is(err, ErrBlocked) || err == nil || err.Error() != want {
			t.Errorf("DialContext(%q) = %v, want %q matching ErrBlocked", addr, err, want)
		}
		_, err = raw.DialContext(t.Context(), "tcp", addr)
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("Dialer{ControlContext: Control}.DialContext(%q) = %v, want an error matching ErrBlocked", addr, err)
			continue
		}
		// The dialer names the address it refused, and nothing else.
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Addr == nil {
			t.Errorf("Dialer{ControlContext: Control}.DialContext(%q) = %v, want a *net.OpError with the address", addr, err)
			continue
		}
		if got, want := strings.Replace(err.Error(), opErr.Addr.String(), "ADDR", 1), "dial tcp ADDR: destination not allowed"; got != want {
			t.Errorf("Dialer{ControlContext: Control}.DialContext(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestDNSRebinding dials a name whose resolver answers with a public
// address the first time and a loopback address afterwards. A check made on
// the first answer passes; the dial, which resolves again, is refused
// because the policy checks the address being connected to.
func TestDNSRebinding(t *testing.T) {
	ln := newCountingListener(t)
	var queries atomic.Int32
	r := fakeResolver(t, func(name string) netip.Addr {
		if queries.Add(1) == 1 {
			return netip.MustParseAddr("93.184.215.14")
		}
		return netip.MustParseAddr("127.0.0.1")
	})
	p := &Policy{}
	const host = "mail.rebind.test"

	ips, err := r.LookupNetIP(t.Context(), "ip4", host)
	if err != nil || len(ips) != 1 {
		t.Fatalf("LookupNetIP(%q) = %v, %v, want one address", host, ips, err)
	}
	first := netip.AddrPortFrom(ips[0], uint16(mustAtoi(t, ln.port())))
	if err := p.Check(first); err != nil {
		t.Fatalf("Check(%v) = %v, want <nil> (the first answer is public)", first, err)
	}

	dial := p.DialContext(&net.Dialer{Resolver: r, Timeout: 5 * time.Second})
	c, err := dial(t.Context(), "tcp4", host+":"+ln.port())
	if err == nil {
		c.Close()
		t.Fatalf("DialContext(%q) connected, want %v", host, ErrBlocked)
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("DialContext(%q) = %v, want %v", host, err, ErrBlocked)
	}
	if n := queries.Load(); n != 2 {
		t.Errorf("resolver answered %d queries, want 2", n)
	}
	ln.assertNoAccepts(t)
}

// fakeResolver returns a pure-Go resolver whose DNS server, reached over an
// in-memory stream, answers every A query with answer(name) and every other
// query with no records.
func fakeResolver(t *testing.T, answer func(name string) netip.Addr) *net.Resolver {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			client, server := net.Pipe()
			wg.Go(func() {
				defer server.Close()
				serveDNS(server, answer)
			})
			return client, nil
		},
	}
}

// serveDNS answers DNS-over-stream queries (RFC 1035 section 4.2.2) on c
// until it is closed.
func serveDNS(c net.Conn, answer func(name string) netip.Addr) {
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		q := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, q); err != nil || len(q) < 12 {
			return
		}
		// The question: labels up to the root, then type and class.
		i := 12
		var labels []string
		for i < len(q) && q[i] != 0 {
			l := int(q[i])
			if i+1+l > len(q) {
				return
			}
			labels = append(labels, string(q[i+1:i+1+l]))
			i += 1 + l
		}
		end := i + 5
		if end > len(q) {
			return
		}
		qtype := binary.BigEndian.Uint16(q[i+1:])

		resp := append([]byte(nil), q[:2]...)       // ID
		resp = append(resp, 0x81, 0x80)             // response, RD, RA, NOERROR
		resp = append(resp, 0, 1, 0, 0, 0, 0, 0, 0) // QD=1, AN, NS=0, AR=0
		resp = append(resp, q[12:end]...)           // the question
		if qtype == 1 {                             // A
			ip := answer(strings.Join(labels, ".")).As4()
			resp[7] = 1                               // AN=1
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1) // name pointer, A, IN
			resp = append(resp, 0, 0, 0, 0, 0, 4)     // TTL 0, length 4
			resp = append(resp, ip[:]...)
		}
		msg := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := c.Write(append(msg, resp...)); err != nil {
			return
		}
	}
}

// TestHTTPTransport uses the policy as an http.Transport's DialContext, as
// for an OAuth2 token endpoint (threat T14): refused destinations, including
// a redirect to the metadata service, are never connected to.
func TestHTTPTransport(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
			return
		}
		io.WriteString(w, `{"access_token":"x"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	client := func(p *Policy) *http.Client {
		return &http.Client{Transport: &http.Transport{DialContext: p.DialContext(&net.Dialer{Timeout: 5 * time.Second})}}
	}

	refused := client(&Policy{})
	defer refused.CloseIdleConnections()
	for _, u := range []string{srv.URL + "/token", "http://169.254.169.254/latest/api/token", "http://[fd00:ec2::254]/latest/api/token"} {
		resp, err := refused.Post(u, "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("Post(%q) = %s, want an error matching ErrBlocked", u, resp.Status)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("Post(%q) = %v, want an error matching ErrBlocked", u, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("server saw %d connections from refused requests, want 0", n)
	}

	allowed := client(&Policy{AllowLoopback: true})
	defer allowed.CloseIdleConnections()
	resp, err := allowed.Post(srv.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		t.Fatalf("Post(%q) = %v, want 200 OK", srv.URL+"/token", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"access_token":"x"}` {
		t.Errorf("Post(%q) = %s %q, want 200 OK with the token", srv.URL+"/token", resp.Status, body)
	}

	// Redirects dial again, through the same policy.
	resp, err = allowed.Get(srv.URL + "/redirect")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("Get(%q) = %s, want an error matching ErrBlocked", srv.URL+"/redirect", resp.Status)
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("Get(%q) = %v, want an error matching ErrBlocked", srv.URL+"/redirect", err)
	}
}

func TestControl(t *testing.T) {
	p := &Policy{AllowPrivate: true}
	tests := []struct {
		network, address string
		want             error
	}{
		{"tcp4", "8.8.8.8:25", nil},
		{"tcp4", "10.0.0.5:25", nil},
		{"tcp6", "[fd00::5]:25", nil},
		{"tcp4", "127.0.0.1:25", ErrBlocked},
		{"tcp6", "[::ffff:127.0.0.1]:25", ErrBlocked},
		{"tcp6", "[::1]:25", ErrBlocked},
		{"tcp6", "[fe80::1%eth0]:25", ErrBlocked},
		{"tcp6", "[fd00::5%eth0]:25", nil},
		{"udp4", "169.254.169.254:53", ErrBlocked},
		{"tcp4", "8.8.8.8", ErrBlocked},
		{"tcp4", "", ErrBlocked},
		{"tcp4", "mail.example.com:25", ErrBlocked},
		{"unix", "/run/postfix.sock", ErrBlocked},
		{"unix", "@abstract", ErrBlocked},
	}
	for _, tt := range tests {
		if got := p.Control(t.Context(), tt.network, tt.address, nil); got != tt.want {
			t.Errorf("Control(%q, %q) = %v, want %v", tt.network, tt.address, got, tt.want)
		}
	}
}

func TestDialUnixRefused(t *testing.T) {
	_, err := (&Policy{AllowLoopback: true, AllowPrivate: true}).DialContext(nil)(t.Context(), "unix", t.TempDir()+"/sock")
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("DialContext(unix) = %v, want %v", err, ErrBlocked)
	}
}

// TestControlLogs checks that refusals, and only refusals, are logged for
// the administrator with the address and the reason.
func TestControlLogs(t *testing.T) {
	ln := newCountingListener(t)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	refused := (&Policy{Logger: logger}).DialContext(nil)
	if _, err := refused(t.Context(), "tcp", ln.Addr().String()); !errors.Is(err, ErrBlocked) {
		t.Fatalf("DialContext(%q) = %v, want %v", ln.Addr(), err, ErrBlocked)
	}
	want := `level=WARN msg="outgoing connection refused by policy" network=tcp4 address=` + ln.Addr().String() +
		` reason="127.0.0.1 is loopback; AllowLoopback is off and Allow does not contain it"` + "\n"
	if got := buf.String(); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}

	buf.Reset()
	c, err := (&Policy{AllowLoopback: true, Logger: logger}).DialContext(nil)(t.Context(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-ln.changed
	if got := buf.String(); got != "" {
		t.Errorf("log after an allowed dial = %q, want nothing", got)
	}

	buf.Reset()
	(&Policy{Logger: logger}).Control(t.Context(), "unix", "/run/x.sock", nil)
	if got, want := buf.String(), `level=WARN msg="outgoing connection refused by policy" network=unix address=/run/x.sock reason="not an IP address and port"`+"\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}
