package smtptest

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// await fails the test unless ch is closed within timeout.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("%s: not within %v", what, timeout)
	}
}

// TestIssue10_27_CloseAfterReplyIsEOFNotReset: a client whose next command
// reaches the server before the server has closed the connection after a
// "421 … then close" reply must read that reply and then EOF. Before the
// fix, the server closed a socket with unread input, so the kernel sent a
// RST instead of the FIN and the client read ECONNRESET: on a loaded
// machine that happened at random (TestCommandReplies,
// TestAfterMessageAndPooledSessions). Here the client sends more than the
// server reads before closing, which made the RST certain.
func TestIssue10_27_CloseAfterReplyIsEOFNotReset(t *testing.T) {
	t.Parallel()
	junk := strings.Repeat("NOOP\r\n", 200<<10/6) // far more than one read
	for _, tc := range []struct {
		name   string
		fault  Fault
		prefix []string // commands before the one that gets the 421
		cmd    string
	}{
		{"issue11-14/421-to-MAIL", Fault{At: "MAIL", Reply: "421 4.3.2 Shutting down", Close: true}, []string{"EHLO x"}, "MAIL FROM:<a@x>"},
		{"issue10-27/421-after-message", Fault{At: AfterMessage, Reply: "421 4.4.2 Connection dropped", Close: true},
			[]string{"EHLO x", "MAIL FROM:<a@x>", "RCPT TO:<b@x>", "DATA", ".", ""}, "NOOP"},
		{"issue10-27/421-to-NOOP", Fault{At: "NOOP", Reply: "421 4.4.2 Idle too long", Close: true}, nil, "NOOP"},
		{"drop-at-MAIL", Fault{At: "MAIL", Action: Drop}, []string{"EHLO x"}, "MAIL FROM:<a@x>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t, Options{Faults: []Fault{tc.fault}})
			r := dialRaw(t, s.Addr())
			r.expect("220 ")
			for _, c := range tc.prefix {
				switch c {
				case "DATA":
					r.cmd(c, "354 ")
				case "":
					r.expect("250 ")
				case ".":
					r.send(".")
				default:
					r.cmd(c, "250 ")
				}
			}
			// The command and what a pipelining client sends next, in one
			// write: most of it is still unread when the server closes.
			go io.WriteString(r.conn, tc.cmd+"\r\n"+junk) //nolint:errcheck // the server may stop reading
			rest, err := io.ReadAll(r.r)
			if err != nil {
				t.Fatalf("after %q: read %q, then %v; want the reply, then EOF", tc.cmd, rest, err)
			}
			want := ""
			if tc.fault.Reply != "" {
				want = tc.fault.Reply + "\r\n"
			}
			if string(rest) != want {
				t.Errorf("after %q: read %q, want %q", tc.cmd, rest, want)
			}
		})
	}
}

func TestFired(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{
		{At: "NOOP", Reply: "250 2.0.0 slow OK", Delay: 50 * time.Millisecond},
		{At: "RSET", Reply: "421 4.3.2 bye", Close: true, Session: 2},
	}})
	select {
	case <-s.Fired(0, 1):
		t.Fatal("Fired(0, 1) closed before any NOOP")
	default:
	}
	first, third := s.Fired(0, 1), s.Fired(0, 3)
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.send("NOOP")
	await(t, first, "Fired(0, 1) after one NOOP")
	r.expect("250 2.0.0 slow")
	r.cmd("NOOP", "250 2.0.0 slow")
	select {
	case <-third:
		t.Fatal("Fired(0, 3) closed after two NOOPs")
	default:
	}
	r.cmd("NOOP", "250 2.0.0 slow")
	await(t, third, "Fired(0, 3) after three NOOPs")
	await(t, s.Fired(0, 2), "Fired(0, 2) asked for after the fact")
	await(t, s.Fired(0, 0), "Fired(0, 0)")

	// SessionClosed: the server's side is shut when the channel closes.
	r2 := dialRaw(t, s.Addr())
	r2.expect("220 ")
	r2.cmd("RSET", "421 ")
	await(t, s.Fired(1, 1), "Fired(1, 1)")
	await(t, s.SessionClosed(2), "SessionClosed(2)")
	r2.conn.SetReadDeadline(time.Now().Add(time.Millisecond)) // no wait: it is there
	if b, err := io.ReadAll(r2.r); err != nil || len(b) != 0 {
		t.Errorf("after SessionClosed(2): read %q, %v; want EOF at once", b, err)
	}
	select {
	case <-s.SessionClosed(1):
		t.Error("SessionClosed(1) closed while session 1 is open")
	case <-s.SessionClosed(0):
		t.Error("SessionClosed(0) closed")
	default:
	}
	r.cmd("QUIT", "221 ")
	await(t, s.SessionClosed(1), "SessionClosed(1) after QUIT")

	defer func() {
		if recover() == nil {
			t.Error("Fired(2, 1) with two faults did not panic")
		}
	}()
	s.Fired(2, 1)
}

// TestSessionClosedOnServerClose: a session stuck in a fault ends when the
// Server is closed, and its channel closes.
func TestSessionClosedOnServerClose(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Faults: []Fault{{At: Greeting, Action: Stall}}})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	await(t, s.Fired(0, 1), "the stall")
	closed := s.SessionClosed(1)
	s.Close()
	await(t, closed, "SessionClosed(1) after Close")
}

// TestIssue11_6_PipelinedLogin: the server that answers LOGIN ahead, which
// the transcript tests of the sender need.
func TestIssue11_6_PipelinedLogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, user, pass string
		ir               bool
		ok               bool
	}{
		{"right", "alice", "right", false, true},
		{"right, initial response", "alice", "right", true, true},
		{"wrong", "alice", "nope", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewServer(t, Options{Users: users, RequireAuth: true, Mechanisms: []string{"LOGIN"}, PipelinedLogin: true})
			r := dialRaw(t, s.Addr())
			r.expect("220 ")
			r.cmd("EHLO x", "250 ")
			want := "334 " + b64("Username:") + "\r\n334 " + b64("Password:") + "\r\n" + string(replyOK)
			auth := "AUTH LOGIN"
			if tc.ir {
				want = "334 " + b64("Password:") + "\r\n" + string(replyOK)
				auth += " " + b64(tc.user)
			}
			r.send(auth)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(r.r, got); err != nil || string(got) != want {
				t.Fatalf("after %q: read %q, %v; want %q in one go", auth, got, err, want)
			}
			if !tc.ir {
				r.send(b64(tc.user))
			}
			r.send(b64(tc.pass))
			if !tc.ok {
				if rest := r.expectEOF(); rest != "" {
					t.Errorf("wrong credentials: read %q, want the connection closed", rest)
				}
				return
			}
			r.cmd("MAIL FROM:<a@x>", "250 ")
			r.cmd("RCPT TO:<b@x>", "250 ")
			r.cmd("DATA", "354 ")
			r.cmd("hi\r\n.", "250 ")
			if m := s.Messages(); len(m) != 1 || m[0].AuthUser != "alice" || m[0].Mechanism != "LOGIN" {
				t.Errorf("Messages() = %+v", m)
			}
			if tr := s.Transcript(); !slices.Contains(tr, b64(tc.pass)) {
				t.Errorf("Transcript() = %q lacks the password response", tr)
			}
		})
	}
}

// TestReadBuffer: with a small receive buffer, a stalled server blocks the
// client's writes after little data.
func TestReadBuffer(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{ReadBuffer: 16 << 10, Faults: []Fault{{At: DataBody, Action: Stall}}})
	r := bodyClient(t, s)
	r.conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
	await(t, s.Fired(0, 1), "the stall")
	chunk := make([]byte, 4<<10)
	r.conn.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	total := 0
	var err error
	for total < 64<<20 {
		var n int
		n, err = r.conn.Write(chunk)
		total += n
		if err != nil {
			break
		}
	}
	if !isTimeout(err) || total > 2<<20 {
		t.Errorf("wrote %d bytes, then %v; want the writes blocked within 2 MiB", total, err)
	}
	t.Logf("writes blocked after %d KiB", total>>10)
}
