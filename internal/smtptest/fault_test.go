package smtptest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// closesFast checks that Close returns promptly even with a session stuck in
// a fault.
func closesFast(t *testing.T, s *Server) {
	t.Helper()
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestGreetingDelay(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Delay: delay, Session: 1}}})
	for i, slow := range []bool{true, false} {
		start := time.Now()
		r := dialRaw(t, s.Addr())
		r.expect("220 ")
		if d := time.Since(start); slow != (d >= delay) {
			t.Errorf("session %d: greeting after %v, want delayed=%v", i+1, d, slow)
		}
	}
}

func TestGreetingTarpit(t *testing.T) {
	t.Parallel()
	for _, a := range []Action{Silent, Stall} {
		s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Action: a}}})
		r := dialRaw(t, s.Addr())
		r.send("EHLO impatient")
		r.conn.SetReadDeadline(time.Now().Add(150 * time.Millisecond))
		if _, err := r.reply(); !isTimeout(err) {
			t.Errorf("%v: read = %v, want timeout", a, err)
		}
		closesFast(t, s)
		if a == Silent && !slices.Equal(s.Transcript(), []string{"EHLO impatient"}) {
			t.Errorf("%v: Transcript() = %q", a, s.Transcript())
		}
	}
}

func TestGreetingReplies(t *testing.T) {
	t.Parallel()
	// 421 then close: go-smtp sees a temporary SMTPError.
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Reply: "421 4.3.2 Service not available", Close: true}}})
	c := dial(t, s)
	err := c.Noop()
	var e *smtp.SMTPError
	if !errors.As(err, &e) || e.Code != 421 || e.EnhancedCode != (smtp.EnhancedCode{4, 3, 2}) || !e.Temporary() {
		t.Errorf("Noop = %#v, want 421 4.3.2", err)
	}
	r := dialRaw(t, s.Addr())
	if rest := r.expectEOF(); rest != "421 4.3.2 Service not available\r\n" {
		t.Errorf("bytes = %q", rest)
	}

	// 554 without Close: RFC 5321 §3.1, the server waits for QUIT.
	s = NewServer(t, Options{Faults: []Fault{{At: Greeting, Reply: "554 No SMTP service here"}}})
	r = dialRaw(t, s.Addr())
	r.expect("554 No SMTP service here")
	r.cmd("EHLO x", "503 5.5.1")
	r.cmd("MAIL FROM:<a@x>", "503 5.5.1")
	r.cmd("QUIT", "221 ")
	r.expectEOF()

	// A non-SMTP banner, byte for byte.
	banner := "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	s = NewServer(t, Options{Faults: []Fault{{At: Greeting, Reply: banner, Close: true}}})
	r = dialRaw(t, s.Addr())
	if got := r.expectEOF(); got != banner {
		t.Errorf("banner = %q, want %q", got, banner)
	}
	c = dial(t, s)
	var pe textproto.ProtocolError
	if err := c.Noop(); !errors.As(err, &pe) {
		t.Errorf("go-smtp on an HTTP banner: %#v, want textproto.ProtocolError", err)
	}

	// Multi-line custom greeting written with bare "\n".
	s = NewServer(t, Options{Faults: []Fault{{At: Greeting, Reply: "220-first\n220 second"}}})
	r = dialRaw(t, s.Addr())
	if l := r.expect("220 second"); !slices.Equal(l, []string{"220-first", "220 second"}) {
		t.Errorf("greeting = %q", l)
	}
	r.cmd("EHLO x", "250 ")
}

func TestGreetingEndless(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Action: Endless}}})
	r := dialRaw(t, s.Addr())
	n := 0
	for n < 1<<20 {
		l, err := r.r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
		if !strings.HasPrefix(l, "220-xxxx") || !strings.HasSuffix(l, "\r\n") {
			t.Fatalf("line %q", l)
		}
		n += len(l)
	}
	r.conn.Close() // the session ends when the client goes away

	// And a client that stops reading does not keep Close waiting.
	s = NewServer(t, Options{Faults: []Fault{{At: "EHLO", Action: Endless, Reply: "250-AUTH PLAIN"}}})
	r = dialRaw(t, s.Addr())
	r.expect("220 ")
	r.send("EHLO x")
	if l, _ := r.r.ReadString('\n'); l != "250-AUTH PLAIN\r\n" {
		t.Errorf("line = %q", l)
	}
	waitFlowStopped(t, r.conn)
	closesFast(t, s)
}

func TestGreetingLongLine(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Action: LongLine}}})
	r := dialRaw(t, s.Addr())
	l, err := r.r.ReadString('\n')
	if err != nil || len(l) != 5000 || !strings.HasPrefix(l, "220 xxx") {
		t.Fatalf("line of %d bytes (%.10q), err %v", len(l), l, err)
	}
	c := dial(t, s)
	if err := c.Noop(); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("go-smtp on a 5000-byte greeting: %v", err)
	}
}

func TestGreetingDropAndReset(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Action: Drop, Session: 1}, {At: Greeting, Action: Reset, Session: 2}}})
	r := dialRaw(t, s.Addr())
	if b, err := io.ReadAll(r.r); err != nil || len(b) != 0 {
		t.Errorf("Drop: read %q, %v; want clean EOF", b, err)
	}
	// The RST can arrive before the client's connect completes.
	conn, err := net.Dial("tcp", s.Addr())
	if err == nil {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(timeout))
		_, err = io.ReadAll(conn)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Reset: error %v, want ECONNRESET", err)
	}
}

func TestCommandReplies(t *testing.T) {
	t.Parallel()
	// 421 to MAIL, then close.
	s := NewServer(t, Options{Faults: []Fault{{At: "MAIL", Reply: "421 4.3.2 Shutting down", Close: true}}})
	c := dial(t, s)
	if err := c.Mail("a@x", nil); smtpCode(err) != 421 {
		t.Errorf("Mail = %v, want 421", err)
	}
	if err := c.Noop(); !errors.Is(err, io.EOF) {
		t.Errorf("Noop after 421 = %v, want EOF", err)
	}

	// 502 to EHLO: go-smtp falls back to HELO.
	s = NewServer(t, Options{Faults: []Fault{{At: "EHLO", Reply: "502 5.5.1 EHLO not implemented"}}})
	c = dial(t, s)
	if err := c.Noop(); err != nil {
		t.Fatalf("Noop = %v", err)
	}
	if got := s.Transcript(); !slices.Equal(got, []string{"EHLO localhost", "HELO localhost", "NOOP"}) {
		t.Errorf("Transcript() = %q", got)
	}

	// 454 and 502 to STARTTLS.
	for _, reply := range []string{"454 4.7.0 TLS not available due to temporary reason", "502 5.5.1 Not now"} {
		s = NewServer(t, Options{TLS: StartTLS, Faults: []Fault{{At: "STARTTLS", Reply: reply}}})
		conn, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_, err = smtp.NewClientStartTLS(conn, s.ClientTLSConfig())
		if !strings.HasPrefix(reply, itoa(smtpCode(err))) {
			t.Errorf("STARTTLS with %q: %v", reply, err)
		}
	}

	// 450 greylisting once, then accepted; 550 and 552 to RCPT.
	s = NewServer(t, Options{Faults: []Fault{
		{At: "RCPT", Reply: "450 4.2.0 Greylisted, try again", Times: 1},
		{At: "rcpt", Reply: "552 5.5.3 Too many recipients", Session: 2},
	}})
	c = dial(t, s)
	c.Mail("a@x", nil)
	if err := c.Rcpt("b@x", nil); smtpCode(err) != 450 {
		t.Errorf("first Rcpt = %v, want 450", err)
	}
	if err := c.Rcpt("b@x", nil); err != nil {
		t.Errorf("second Rcpt = %v", err)
	}
	c = dial(t, s)
	c.Mail("a@x", nil)
	if err := c.Rcpt("b@x", nil); smtpCode(err) != 552 {
		t.Errorf("session 2 Rcpt = %v, want 552", err)
	}

	// AnyCommand.
	s = NewServer(t, Options{Faults: []Fault{{At: AnyCommand, Reply: "451 4.3.0 Busy", Times: 2}}})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "451 ")
	r.cmd("NOOP", "451 ")
	r.cmd("NOOP", "250 ")
}

func TestCommandDelaySilentDrop(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{
		{At: "NOOP", Delay: 150 * time.Millisecond, Times: 1},
		{At: "MAIL", Action: Silent, Session: 1},
		{At: "MAIL", Action: Drop, Session: 2},
		{At: "MAIL", Action: Reset, Session: 3},
		{At: "MAIL", Action: Stall, Session: 4},
	}})
	c := dial(t, s)
	start := time.Now()
	if err := c.Noop(); err != nil || time.Since(start) < 150*time.Millisecond {
		t.Errorf("delayed Noop = %v after %v", err, time.Since(start))
	}
	c.CommandTimeout = 150 * time.Millisecond
	if err := c.Mail("a@x", nil); !isTimeout(err) {
		t.Errorf("Mail to a silent server = %v, want timeout", err)
	}

	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.send("MAIL FROM:<a@x>")
	if rest := r.expectEOF(); rest != "" {
		t.Errorf("Drop: got %q", rest)
	}

	r = dialRaw(t, s.Addr())
	r.expect("220 ")
	r.send("MAIL FROM:<a@x>")
	if _, err := io.ReadAll(r.r); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("Reset: %v, want ECONNRESET", err)
	}

	r = dialRaw(t, s.Addr())
	r.expect("220 ")
	r.send("MAIL FROM:<a@x>")
	r.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := r.reply(); !isTimeout(err) {
		t.Errorf("Stall: %v, want timeout", err)
	}
	closesFast(t, s)
	if got := s.SessionTranscript(1); !slices.Contains(got, "MAIL FROM:<a@x> BODY=8BITMIME") {
		t.Errorf("session 1 transcript = %q", got)
	}
}

func TestStripStartTLS(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{TLS: StartTLS, Faults: []Fault{{At: "EHLO", Action: StripStartTLS}}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	_, err = smtp.NewClientStartTLS(conn, s.ClientTLSConfig())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("NewClientStartTLS = %v, want 'doesn't support STARTTLS'", err)
	}
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	if l := r.cmd("EHLO x", "250 "); slices.Contains(l, "250-STARTTLS") {
		t.Errorf("EHLO = %q", l)
	}
	r.cmd("STARTTLS", "502 5.5.1")
}

func TestInject(t *testing.T) {
	t.Parallel()
	const inj = "250-INJECTED\r\n250 AUTH PLAIN\r\n"
	s := NewServer(t, Options{TLS: StartTLS, Faults: []Fault{{At: "STARTTLS", Action: Inject, Reply: "250-INJECTED\n250 AUTH PLAIN", Session: 1}}})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.send("STARTTLS")
	want := "220 2.0.0 Ready to start TLS\r\n" + inj
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r.r, got); err != nil || string(got) != want {
		t.Fatalf("read %q, %v; want %q", got, err, want)
	}
	if r.r.Buffered() != 0 {
		t.Errorf("more bytes after the injection")
	}

	// go-smtp drops the injected lines (same segment); the TLS EHLO rules.
	s = NewServer(t, Options{TLS: StartTLS, Users: users, Mechanisms: []string{"LOGIN"},
		Faults: []Fault{{At: "STARTTLS", Action: Inject, Reply: inj}}})
	c := dialStartTLS(t, s)
	if ok, _ := c.Extension("INJECTED"); ok || c.SupportsAuth("PLAIN") || !c.SupportsAuth("LOGIN") {
		t.Errorf("injected capabilities were used")
	}
	if got := s.Transcript(); !slices.Equal(got, []string{"EHLO localhost", "STARTTLS", "EHLO localhost"}) {
		t.Errorf("Transcript() = %q", got)
	}

	// In a later segment the injection breaks the handshake.
	s = NewServer(t, Options{TLS: StartTLS, Faults: []Fault{{At: "STARTTLS", Action: Inject, Reply: inj, Delay: 50 * time.Millisecond}}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err = smtp.NewClientStartTLS(conn, s.ClientTLSConfig())
	if err != nil {
		t.Fatalf("NewClientStartTLS: %v", err)
	}
	defer c.Close()
	if err := c.Noop(); err == nil {
		t.Errorf("handshake succeeded despite injected plaintext")
	}
}

// bodyClient opens a raw session up to the 354.
func bodyClient(t *testing.T, s *Server) *raw {
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.cmd("MAIL FROM:<a@x>", "250 ")
	r.cmd("RCPT TO:<b@x>", "250 ")
	r.cmd("DATA", "354 ")
	return r
}

func TestDataStall(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: DataBody, Action: Stall}}})
	r := bodyClient(t, s)
	chunk := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n"), 1024)
	r.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	total := 0
	var err error
	for total < 256<<20 {
		var n int
		n, err = r.conn.Write(chunk)
		total += n
		if err != nil {
			break
		}
	}
	if !isTimeout(err) {
		t.Fatalf("wrote %d bytes, err %v; want the write to block", total, err)
	}
	t.Logf("writes blocked after %d KiB", total>>10)
	closesFast(t, s)
	if got := s.Transcript(); got[len(got)-1] != "<DATA 0 bytes, incomplete>" {
		t.Errorf("Transcript() ends %q", got[len(got)-1])
	}
}

func TestDataSlowRead(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: DataBody, Action: SlowRead, Bytes: 32 << 10, Interval: 40 * time.Millisecond}}})
	c := dial(t, s)
	line := strings.Repeat("x", 62) + "\r\n"
	body := strings.Repeat(line, (256<<10)/len(line))
	start := time.Now()
	if err := send(c, "a@x", []string{"b@x"}, body); err != nil {
		t.Fatalf("send: %v", err)
	}
	// 256 KiB at 32 KiB per 40ms: at least 7 pauses.
	if d := time.Since(start); d < 7*40*time.Millisecond {
		t.Errorf("slow read took only %v", d)
	}
	if m := s.Messages(); len(m) != 1 || string(m[0].Data) != body {
		t.Errorf("message not received intact")
	}
}

func TestDataResetAndDrop(t *testing.T) {
	t.Parallel()
	for _, a := range []Action{Reset, Drop} {
		s := NewServer(t, Options{Faults: []Fault{{At: DataBody, Action: a, Bytes: 100000}}})
		c := dial(t, s)
		err := send(c, "a@x", []string{"b@x"}, strings.Repeat(strings.Repeat("y", 78)+"\r\n", 1<<14))
		if err == nil {
			t.Fatalf("%v: send succeeded", a)
		}
		if a == Reset && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("Reset: send = %v, want ECONNRESET or EPIPE", err)
		}
		s.Close()
		if len(s.Messages()) != 0 {
			t.Errorf("%v: message recorded", a)
		}
		if got := s.Transcript(); got[len(got)-1] != "<DATA 100000 bytes, incomplete>" {
			t.Errorf("%v: Transcript() ends %q", a, got[len(got)-1])
		}
	}
}

func TestAfterDot(t *testing.T) {
	t.Parallel()
	body := "hello\r\n"
	for _, tc := range []struct {
		name      string
		fault     Fault
		code      int  // want this SMTP code from the final dot
		delivered bool // recorded in Messages
		eof       bool // connection closed afterwards
		timeout   bool
	}{
		{"drop", Fault{Action: Drop}, 0, false, true, false},
		{"reset", Fault{Action: Reset}, 0, false, true, false},
		{"silent", Fault{Action: Silent}, 0, false, false, true},
		{"451", Fault{Reply: "451 4.3.0 Try again later"}, 451, false, false, false},
		{"552", Fault{Reply: "552 5.3.4 Too big"}, 552, false, false, false},
		{"554", Fault{Reply: "554 5.7.1 Rejected"}, 554, false, false, false},
		{"250 then close", Fault{Close: true}, 0, true, true, false},
		{"custom 250", Fault{Reply: "250 2.0.0 Queued as X"}, 0, true, false, false},
		{"delay", Fault{Delay: 100 * time.Millisecond}, 0, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fault
			f.At = AfterDot
			s := NewServer(t, Options{Faults: []Fault{f}})
			c := dial(t, s)
			if tc.timeout {
				c.SubmissionTimeout = 200 * time.Millisecond
			}
			start := time.Now()
			err := send(c, "a@x", []string{"b@x"}, body)
			switch {
			case tc.code != 0:
				if smtpCode(err) != tc.code {
					t.Errorf("send = %v, want %d", err, tc.code)
				}
			case tc.timeout:
				if !isTimeout(err) {
					t.Errorf("send = %v, want timeout", err)
				}
			case tc.delivered:
				if err != nil {
					t.Errorf("send = %v", err)
				}
			default:
				if err == nil {
					t.Errorf("send succeeded")
				}
			}
			if f.Delay > 0 && time.Since(start) < f.Delay {
				t.Errorf("reply came before the delay")
			}
			if !tc.timeout {
				if err := c.Noop(); tc.eof != (err != nil) {
					t.Errorf("Noop after = %v, want closed=%v", err, tc.eof)
				}
			}
			s.Close()
			if n := len(s.Messages()); (n == 1) != tc.delivered {
				t.Errorf("%d messages recorded, want delivered=%v", n, tc.delivered)
			}
			if !slices.Contains(s.Transcript(), "<DATA 7 bytes>") {
				t.Errorf("Transcript() = %q", s.Transcript())
			}
		})
	}
}

func TestAfterMessageAndPooledSessions(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{
		{At: AfterMessage, Reply: "421 4.4.2 Connection dropped", Close: true, Session: 1},
		{At: "RSET", Reply: "421 4.4.2 Idle too long", Close: true, Session: 2},
		{At: "NOOP", Reply: "421 4.4.2 Idle too long", Close: true, Session: 3},
	}})
	c := dial(t, s)
	if err := send(c, "a@x", []string{"b@x"}, "one\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@x", nil); smtpCode(err) != 421 {
		t.Errorf("MAIL after message = %v, want 421", err)
	}
	c = dial(t, s)
	if err := c.Reset(); smtpCode(err) != 421 {
		t.Errorf("RSET = %v, want 421", err)
	}
	c = dial(t, s)
	if err := c.Noop(); smtpCode(err) != 421 {
		t.Errorf("NOOP = %v, want 421", err)
	}
	if err := c.Noop(); !errors.Is(err, io.EOF) {
		t.Errorf("second NOOP = %v, want EOF", err)
	}
	c = dial(t, s)
	for range 2 {
		if err := send(c, "a@x", []string{"b@x"}, "two\r\n"); err != nil {
			t.Errorf("session 4: %v", err)
		}
	}
	if n := len(s.Messages()); n != 3 || s.Sessions() != 4 {
		t.Errorf("%d messages over %d sessions", n, s.Sessions())
	}
}

func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	s := NewServer(t, Options{Faults: []Fault{
		{At: Idle, Delay: idle, Reply: "421 4.4.2 Idle timeout", Session: 1},
		{At: Idle, Delay: idle, Session: 2},
	}})
	c1 := dial(t, s)
	if err := c1.Noop(); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	c3 := dial(t, s) // no idle fault
	if err := c3.Noop(); err != nil {
		t.Fatal(err)
	}

	// Session 2: a partial line does not reset the timer; no farewell.
	r.conn.Write([]byte("NOO"))
	start := time.Now()
	// Session 1: a busy session is not cut.
	for range 3 {
		time.Sleep(idle / 5)
		if err := c1.Noop(); err != nil {
			t.Fatalf("Noop within the idle time: %v", err)
		}
	}
	if rest := r.expectEOF(); rest != "" || time.Since(start) > idle+2*time.Second {
		t.Errorf("silent idle close: %q after %v", rest, time.Since(start))
	}
	// Session 1 closes once it has been idle for the idle time.
	await(t, s.SessionClosed(1), "session 1's idle close")
	if err := c1.Noop(); smtpCode(err) != 421 {
		t.Errorf("Noop after idle timeout = %v, want the 421 farewell", err)
	}
	if err := c3.Noop(); err != nil {
		t.Errorf("session without idle fault: %v", err)
	}
}

func TestIdleTimesAndTLS(t *testing.T) {
	t.Parallel()
	// A spent Idle fault stops firing even while a session waits on it; TLS
	// reads survive the deadline.
	spent := make(chan struct{}, 1)
	// The delay leaves room for both sessions to be waiting before the
	// fault fires, even under the race detector on a loaded machine (a
	// session that starts waiting after the fault is spent arms no timer).
	s := NewServer(t, Options{TLS: StartTLS, Faults: []Fault{{At: Idle, Delay: time.Second, Times: 1}},
		Logf: func(format string, args ...any) {
			if strings.Contains(fmt.Sprintf(format, args...), "the Idle fault is spent") {
				select {
				case spent <- struct{}{}:
				default:
				}
			}
		}})
	c1 := dialStartTLS(t, s)
	c2 := dialStartTLS(t, s)
	// Both time out; one fault to share: one session closes, the other
	// finds the fault spent and waits on.
	await(t, s.Fired(0, 1), "the idle close")
	select {
	case <-spent:
	case <-time.After(timeout):
		t.Fatal("the second session never timed out")
	}
	e1, e2 := c1.Noop(), c2.Noop()
	if (e1 == nil) == (e2 == nil) {
		t.Errorf("Noop = %v, %v; want exactly one idle close", e1, e2)
	}
}

func TestFaultTimesAcrossSessions(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Reply: "421 4.3.2 Busy", Close: true, Times: 2}}})
	var codes []int
	for range 3 {
		codes = append(codes, smtpCode(dial(t, s).Noop()))
	}
	if !slices.Equal(codes, []int{421, 421, 0}) {
		t.Errorf("codes = %v", codes)
	}
}
