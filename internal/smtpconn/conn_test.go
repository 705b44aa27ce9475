package smtpconn

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair returns a connected TCP pair on loopback.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestReplyTimeout(t *testing.T) {
	t.Parallel()
	raw, _ := pair(t)
	c := New(raw, Options{SendTimeout: 100 * time.Millisecond})
	c.StartReply()
	start := time.Now()
	_, err := c.Read(make([]byte, 10))
	var te *TimeoutError
	if !errors.As(err, &te) || te.Limit != LimitSend {
		t.Fatalf("Read = %v, want a send-timeout TimeoutError", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > time.Second {
		t.Errorf("timed out after %v, want about 100ms", d)
	}
	// A cleared deadline means no reply timeout: only phase and context.
	c.SetDeadline(time.Time{})
	c.SetPhaseDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = c.Read(make([]byte, 10))
	if !errors.As(err, &te) || te.Limit != LimitPhase {
		t.Fatalf("Read = %v, want a phase TimeoutError", err)
	}
}

func TestPhaseCapsSendTimeout(t *testing.T) {
	t.Parallel()
	raw, _ := pair(t)
	c := New(raw, Options{SendTimeout: time.Hour})
	c.SetPhaseDeadline(time.Now().Add(80 * time.Millisecond))
	// go-smtp sets its own long deadline; the phase still wins.
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	var te *TimeoutError
	if !errors.As(err, &te) || te.Limit != LimitPhase || time.Since(start) > time.Second {
		t.Fatalf("Read = %v after %v, want the phase deadline", err, time.Since(start))
	}
}

func TestCancelWins(t *testing.T) {
	t.Parallel()
	raw, _ := pair(t)
	c := New(raw, Options{})
	ctx, cancel := context.WithCancelCause(context.Background())
	release := c.Bind(ctx)
	defer release()
	cause := errors.New("workflow aborted")
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel(cause)
	}()
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, cause) || time.Since(start) > time.Second {
		t.Fatalf("Read = %v after %v, want the cause", err, time.Since(start))
	}
	// go-smtp clearing or setting deadlines cannot revive the connection.
	c.SetDeadline(time.Time{})
	c.SetDeadline(time.Now().Add(time.Hour))
	if _, err := c.Write([]byte("x")); !errors.Is(err, cause) {
		t.Errorf("Write after cancel = %v, want the cause", err)
	}
}

func TestReplyLimit(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	c := New(raw, Options{ReplyLimit: 1000})
	go func() {
		b := make([]byte, 500)
		for range 10 {
			if _, err := srv.Write(b); err != nil {
				return
			}
		}
	}()
	c.StartReply()
	_, err := io.ReadAll(c)
	if !errors.Is(err, ErrReplyTooLarge) {
		t.Fatalf("ReadAll = %v, want ErrReplyTooLarge", err)
	}
}

func TestReplyLimitResetsPerCommand(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	c := New(raw, Options{ReplyLimit: 100})
	buf := make([]byte, 80)
	for range 5 {
		c.StartReply()
		srv.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("a reply within the limit: %v", err)
		}
	}
}

func TestWriteProgressTimeout(t *testing.T) {
	t.Parallel()
	raw, _ := pair(t) // the server never reads
	c := New(raw, Options{SendTimeout: 150 * time.Millisecond})
	chunk := make([]byte, 1<<20)
	start := time.Now()
	var err error
	for i := 0; i < 200 && err == nil; i++ {
		_, err = c.Write(chunk)
	}
	var te *TimeoutError
	if !errors.As(err, &te) || te.Limit != LimitSend {
		t.Fatalf("Write = %v, want a send-timeout TimeoutError", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a stalled write took %v to fail", d)
	}
	if c.WriteErr() == nil {
		t.Error("WriteErr() = nil after a failed write")
	}
}

func TestWriteSlowButMoving(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	// The upload takes at least 1.3 s, longer than the timeout; no stretch
	// of it comes near the timeout, even on a loaded machine.
	const timeout = 750 * time.Millisecond
	c := New(raw, Options{SendTimeout: timeout})
	done := make(chan struct{})
	go func() { // read 128 KiB every 10 ms
		defer close(done)
		buf := make([]byte, 128<<10)
		for {
			if _, err := io.ReadFull(srv, buf); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	data := make([]byte, 16<<20)
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatalf("a slow but moving upload failed after %v: %v", time.Since(start), err)
	}
	if d := time.Since(start); d < 2*timeout {
		t.Logf("the upload took only %v; the kernel buffered most of it", d)
	}
	raw.Close()
	<-done
}

func TestIdle(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	c := New(raw, Options{})
	if !c.Idle() {
		t.Fatal("Idle() = false on a quiet connection")
	}
	srv.Write([]byte("421 4.4.2 idle timeout\r\n"))
	if !waitFor(func() bool { return !c.Idle() }) {
		t.Error("Idle() = true with unread data from the server")
	}
	raw2, srv2 := pair(t)
	c2 := New(raw2, Options{})
	srv2.Close()
	if !waitFor(func() bool { return !c2.Idle() }) {
		t.Error("Idle() = true after the server closed")
	}
}

func TestTapPrefixAndAbort(t *testing.T) {
	t.Parallel()
	raw, srv := pair(t)
	var client, server []byte
	tap := &Tap{Conn: raw, Prefix: []byte("220 hi\r\n"), OnClient: func(p []byte) { client = append(client, p...) }, OnServer: func(p []byte) { server = append(server, p...) }}
	b := make([]byte, 100)
	n, _ := tap.Read(b)
	if string(b[:n]) != "220 hi\r\n" || len(server) != 0 {
		t.Errorf("prefix read %q, server bytes %q", b[:n], server)
	}
	tap.AnswerAbort = true
	if n, err := tap.Write([]byte("*\r\n")); n != 3 || err != nil {
		t.Errorf("abort write = %d, %v; want it answered locally", n, err)
	}
	if n, _ := tap.Read(b); string(b[:n]) != abortAnswer {
		t.Errorf("abort answered with %q, want %q", b[:n], abortAnswer)
	}
	tap.Write([]byte("EHLO x\r\n"))
	srv.SetReadDeadline(time.Now().Add(time.Second))
	n, _ = srv.Read(b)
	if string(b[:n]) != "EHLO x\r\n" || string(client) != "EHLO x\r\n" {
		t.Errorf("server read %q, client bytes %q", b[:n], client)
	}
}

// waitFor polls cond until it holds or 5 s have passed: data written on
// loopback arrives within microseconds, but a loaded machine may take
// longer, and a fixed sleep would only hope.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
