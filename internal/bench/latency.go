package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail"

	"github.com/emailconn/emailconn"
)

// Case 7 (issue 17): sends over a link with a real round trip. A
// LatencyProxy on loopback delays every chunk it forwards by half the
// round trip, each way, in front of the plaintext sink; every client sends
// the 2 KB notification through it over sessions opened before the timing.

// DefaultRTT is the round trip of case 7; EMAILCONN_BENCH_RTT_MS changes
// it.
const DefaultRTT = 20 * time.Millisecond

// RTT returns the round trip of case 7.
func RTT() time.Duration {
	if ms, err := strconv.Atoi(os.Getenv("EMAILCONN_BENCH_RTT_MS")); err == nil && ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	return DefaultRTT
}

// A LatencyProxy forwards TCP connections to a target, delaying every chunk
// it reads by a fixed time before it writes it on: a link with a round trip
// of twice that time and no bandwidth limit. Chunks are delayed, not
// serialised: a second chunk read 1 ms after the first is written 1 ms
// after it.
type LatencyProxy struct {
	Addr   string
	target string
	oneWay time.Duration
	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// StartLatencyProxy listens on 127.0.0.1 and forwards to target with the
// given round trip.
func StartLatencyProxy(target string, rtt time.Duration) (*LatencyProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &LatencyProxy{Addr: ln.Addr().String(), target: target, oneWay: rtt / 2, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

func (p *LatencyProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe forwards src to dst, each chunk oneWay after it was read.
func (p *LatencyProxy) pipe(dst, src net.Conn) {
	type chunk struct {
		due time.Time
		b   []byte
	}
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(p.oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	for range q {
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// Close stops the proxy and closes its connections.
func (p *LatencyProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

var (
	latencyOnce  sync.Once
	latencyProxy *LatencyProxy
	latencyErr   error
)

// Latency returns the proxy of case 7 in front of the plaintext sink,
// started once.
func (e *Env) Latency() (*LatencyProxy, error) {
	latencyOnce.Do(func() { latencyProxy, latencyErr = StartLatencyProxy(e.Plain.Addr, RTT()) })
	return latencyProxy, latencyErr
}

// A LatencyClient is one way of sending over the latency link.
type LatencyClient struct {
	ID   string
	Name string
	// open returns a send function safe for concurrent use, to the
	// proxy's address, with rcpts recipients per message.
	open func(addr string, rcpts int) (send func() error, closeFn func(), err error)
	// pooled marks a client whose concurrent sends use several sessions.
	pooled bool
}

// LatencyClients are the rows of case 7, the go-smtp baseline first.
var LatencyClients = []*LatencyClient{
	{ID: "gosmtp-reuse", Name: "go-smtp, one reused session", open: openLatencyGoSMTP},
	{ID: "gomail-kept", Name: "go-mail v0.8.1, one kept connection (DialWithContext + Send)", open: openLatencyGoMail},
	{ID: "emailconn-lockstep", Name: "emailconn, lockstep (disablePipelining)", open: openLatencyEmailconn(true, true), pooled: true},
	{ID: "emailconn-pipelining", Name: "emailconn, PIPELINING (disableChunking)", open: openLatencyEmailconn(false, true), pooled: true},
	{ID: "emailconn-chunking", Name: "emailconn, PIPELINING + CHUNKING (the default)", open: openLatencyEmailconn(false, false), pooled: true},
}

// latencyRecipients returns n recipient addresses.
func latencyRecipients(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ops%d@example.com", i)
	}
	return out
}

func openLatencyGoSMTP(addr string, rcpts int) (func() error, func(), error) {
	c, err := smtp.Dial(addr)
	if err != nil {
		return nil, nil, err
	}
	if err := c.Hello("localhost"); err != nil {
		c.Close()
		return nil, nil, err
	}
	to := latencyRecipients(rcpts)
	var mu sync.Mutex
	send := func() error {
		mu.Lock()
		defer mu.Unlock()
		return sendGoSMTPTo(c, to, rawNotification)
	}
	return send, func() { c.Quit() }, nil
}

func openLatencyGoMail(addr string, rcpts int) (func() error, func(), error) {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	c, err := mail.NewClient(host, mail.WithPort(p), mail.WithTLSPolicy(mail.NoTLS))
	if err != nil {
		return nil, nil, err
	}
	if err := c.DialWithContext(context.Background()); err != nil {
		return nil, nil, err
	}
	to := latencyRecipients(rcpts)
	send := func() error { // go-mail's Send holds its own mutex
		m := mail.NewMsg()
		if err := m.From(From); err != nil {
			return err
		}
		if err := m.To(to...); err != nil {
			return err
		}
		m.Subject(notificationSubject)
		m.SetBodyString(mail.TypeTextPlain, notificationText)
		return c.Send(m)
	}
	return send, func() { c.Close() }, nil
}

func openLatencyEmailconn(noPipelining, noChunking bool) func(addr string, rcpts int) (func() error, func(), error) {
	return func(addr string, rcpts int) (func() error, func(), error) {
		c := emailconn.Connection{MailServer: addr, From: From, DisablePipelining: noPipelining, DisableChunking: noChunking}
		s, err := emailconn.NewSender(c, senderOptions())
		if err != nil {
			return nil, nil, err
		}
		to := latencyRecipients(rcpts)
		ctx := context.Background()
		send := func() error {
			_, err := s.Send(ctx, &emailconn.Message{To: to, Subject: notificationSubject, Text: notificationText})
			return err
		}
		return send, func() { s.Close() }, nil
	}
}

// LatencyCases are the benchmarks of case 7: every client, one and ten
// recipients, sequentially over one session and from Concurrency
// goroutines (emailconn over its default pool of 4 sessions; go-smtp and
// go-mail over their one session, serialised).
func LatencyCases() []Case {
	var cs []Case
	for _, rcpts := range []int{1, 10} {
		for _, g := range []int{1, Concurrency} {
			mode := "seq"
			if g > 1 {
				mode = "par16"
			}
			for _, c := range LatencyClients {
				cs = append(cs, Case{Name: fmt.Sprintf("rcpt%d/%s/%s", rcpts, mode, c.ID), F: LatencyBench(c, rcpts, g)})
			}
		}
	}
	return cs
}

// LatencyBench returns the benchmark of one client over the latency link.
// It reports msg/s and RT/msg, the time per message divided by the round
// trip. The warm-up is one message per session the client keeps, so that
// -benchtime=1x stays short.
func LatencyBench(c *LatencyClient, rcpts, goroutines int) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := Setup()
		if err != nil {
			b.Fatal(err)
		}
		p, err := e.Latency()
		if err != nil {
			b.Fatal(err)
		}
		send, closeFn, err := c.open(p.Addr, rcpts)
		if err != nil {
			b.Fatal(err)
		}
		defer closeFn()
		workers := make([]func() error, goroutines)
		for i := range workers {
			workers[i] = send
		}
		warm := 1
		if goroutines > 1 && c.pooled {
			warm = 4 // emailconn's default pool: one message opens each session
		}
		if err := runWorkers(workers[:warm], warm); err != nil {
			b.Fatalf("%s: warm-up: %v", c.ID, err)
		}
		b.ResetTimer()
		if err := runWorkers(workers, b.N); err != nil {
			b.Fatalf("%s: %v", c.ID, err)
		}
		b.StopTimer()
		perMsg := b.Elapsed().Seconds() / float64(b.N)
		b.ReportMetric(1/perMsg, "msg/s")
		b.ReportMetric(perMsg/RTT().Seconds(), "RT/msg")
	}
}
