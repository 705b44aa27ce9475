package smtptest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

func TestPlainSend(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Host() != "127.0.0.1" || s.Port() == 0 {
		t.Fatalf("Addr() = %q, Host() = %q, Port() = %d", s.Addr(), s.Host(), s.Port())
	}
	if s.CAPEM() != nil || s.CAPool() != nil || s.ClientTLSConfig() != nil {
		t.Errorf("CAPEM/CAPool/ClientTLSConfig not nil in Plain mode")
	}
	c := dial(t, s)
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Errorf("Plain server advertises STARTTLS")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Errorf("server without users advertises AUTH")
	}
	body := "Subject: hi\r\n\r\n.leading dot\r\nline two\r\n"
	if err := send(c, "from@example.com", []string{"a@example.com", "b@example.com"}, body); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("Quit: %v", err)
	}

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("Messages() has %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "from@example.com" || !slices.Equal(m.To, []string{"a@example.com", "b@example.com"}) {
		t.Errorf("envelope = %q -> %q", m.From, m.To)
	}
	if string(m.Data) != body {
		t.Errorf("Data = %q, want %q", m.Data, body)
	}
	if m.TLS || m.AuthUser != "" || m.Mechanism != "" || m.Helo != "localhost" || m.Session != 1 {
		t.Errorf("Message = %+v", m)
	}
	if m.MailOptions.Body != smtp.Body8BitMIME {
		t.Errorf("MailOptions.Body = %q, want 8BITMIME", m.MailOptions.Body)
	}
	want := []string{
		"EHLO localhost",
		"MAIL FROM:<from@example.com> BODY=8BITMIME",
		"RCPT TO:<a@example.com>",
		"RCPT TO:<b@example.com>",
		"DATA",
		fmt.Sprintf("<DATA %d bytes>", len(body)),
		"QUIT",
	}
	if got := s.Transcript(); !slices.Equal(got, want) {
		t.Errorf("Transcript() = %q, want %q", got, want)
	}
	if s.Sessions() != 1 {
		t.Errorf("Sessions() = %d, want 1", s.Sessions())
	}
	s.Reset()
	if len(s.Messages()) != 0 || len(s.Transcript()) != 0 {
		t.Errorf("Reset did not clear messages and transcript")
	}
}

func TestNilTB(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, Options{})
	c := dial(t, s)
	if err := c.Noop(); err != nil {
		t.Fatalf("Noop: %v", err)
	}
	s.Close()
	s.Close() // idempotent
}

func TestCloseWithLiveConnections(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	var clients []*smtp.Client
	for range 3 {
		c := dial(t, s)
		if err := c.Noop(); err != nil {
			t.Fatalf("Noop: %v", err)
		}
		clients = append(clients, c)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	for _, c := range clients {
		if err := c.Noop(); err == nil {
			t.Errorf("Noop after Close succeeded")
		}
	}
	if s.Sessions() != 3 {
		t.Errorf("Sessions() = %d, want 3", s.Sessions())
	}
}

func TestDotUnstuffingAndStrictEnd(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("EHLO x", "250 ")
	r.cmd("MAIL FROM:<a@x>", "250 ")
	r.cmd("RCPT TO:<b@x>", "250 ")
	r.cmd("DATA", "354 ")
	// Neither LF.LF nor LF.CRLF nor CR.CR ends the data; ".." is unstuffed.
	body := "a\n.\nb\n.\r\nc\r.\rd\r\n..e\r\n.\r\n"
	if _, err := r.conn.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	r.expect("250 ")
	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	if want := "a\n.\nb\n.\r\nc\r.\rd\r\n.e\r\n"; string(msgs[0].Data) != want {
		t.Errorf("Data = %q, want %q", msgs[0].Data, want)
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{
		MailHook: func(from string) *smtp.SMTPError {
			if from == "blocked@x" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Sender blocked"}
			}
			return nil
		},
		RcptHook: func(to string) *smtp.SMTPError {
			switch to {
			case "c@x":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			case "greylisted@x":
				return &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 0}, Message: "Greylisted"}
			}
			return nil
		},
		DataHook: func(from string, to []string, data []byte) *smtp.SMTPError {
			if strings.Contains(string(data), "spam") {
				return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Spam"}
			}
			return nil
		},
	})
	c := dial(t, s)
	if err := c.Mail("blocked@x", nil); smtpCode(err) != 550 {
		t.Errorf("Mail(blocked) = %v, want 550", err)
	}
	if err := c.Mail("a@x", nil); err != nil {
		t.Fatalf("Mail: %v", err)
	}
	for _, tc := range []struct {
		to   string
		code int
	}{{"a@x", 0}, {"b@x", 0}, {"c@x", 550}, {"greylisted@x", 450}} {
		if err := c.Rcpt(tc.to, nil); smtpCode(err) != tc.code {
			t.Errorf("Rcpt(%q) = %v, want code %d", tc.to, err, tc.code)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("spam\r\n"))
	if err := w.Close(); smtpCode(err) != 554 {
		t.Errorf("Data close = %v, want 554", err)
	}
	if err := send(c, "a@x", []string{"a@x", "c@x"}, "ham\r\n"); smtpCode(err) != 550 {
		t.Errorf("send with c@x = %v, want 550", err)
	}
	c.Reset()
	if err := send(c, "a@x", []string{"a@x", "b@x"}, "ham\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := s.Messages()
	if len(msgs) != 1 || !slices.Equal(msgs[0].To, []string{"a@x", "b@x"}) {
		t.Fatalf("Messages() = %+v", msgs)
	}
}

func TestSizeUTF8DSN(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{MaxMessageBytes: 100, EnableSMTPUTF8: true, EnableDSN: true})
	c := dial(t, s)
	if size, ok := c.MaxMessageSize(); !ok || size != 100 {
		t.Errorf("MaxMessageSize() = %d, %v", size, ok)
	}
	for _, ext := range []string{"SMTPUTF8", "DSN", "8BITMIME", "PIPELINING", "ENHANCEDSTATUSCODES"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("%s not advertised", ext)
		}
	}
	if err := c.Mail("a@x", &smtp.MailOptions{Size: 101}); smtpCode(err) != 552 {
		t.Errorf("Mail(SIZE=101) = %v, want 552", err)
	}
	if err := send(c, "a@x", []string{"b@x"}, strings.Repeat("x", 200)+"\r\n"); smtpCode(err) != 552 {
		t.Errorf("send 200 bytes = %v, want 552", err)
	}
	env := "id+1"
	opts := &smtp.MailOptions{UTF8: true, Return: smtp.DSNReturnHeaders, EnvelopeID: env, Size: 10}
	if err := c.Mail("jörg@x", opts); err != nil {
		t.Fatalf("Mail: %v", err)
	}
	if err := c.Rcpt("ünï@x", &smtp.RcptOptions{Notify: []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed},
		OriginalRecipientType: smtp.DSNAddressTypeRFC822, OriginalRecipient: "orig@x"}); err != nil {
		t.Fatalf("Rcpt: %v", err)
	}
	w, _ := c.Data()
	w.Write([]byte("hi\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m := s.Messages()[0]
	if !m.MailOptions.UTF8 || m.MailOptions.Return != smtp.DSNReturnHeaders || m.MailOptions.EnvelopeID != env || m.MailOptions.Size != 10 {
		t.Errorf("MailOptions = %+v", m.MailOptions)
	}
	ro := m.RcptOptions[0]
	if !slices.Equal(ro.Notify, []smtp.DSNNotify{smtp.DSNNotifyFailure, smtp.DSNNotifyDelayed}) || ro.OriginalRecipient != "orig@x" || ro.OriginalRecipientType != smtp.DSNAddressTypeRFC822 {
		t.Errorf("RcptOptions = %+v", ro)
	}
}

func TestEnvelopeStrictness(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("MAIL FROM:<a@x>", "503 5.5.1")
	r.cmd("EHLO x", "250 ")
	r.cmd("RCPT TO:<b@x>", "503 5.5.1")
	r.cmd("DATA", "503 5.5.1")
	r.cmd("MAIL FROM:a@x", "501 5.5.4")
	r.cmd("MAIL FROM:<a@x> RET=FULL>", "555 5.5.4") // smuggled parameter, DSN off
	r.cmd("MAIL FROM:<jörg@x>", "553 5.6.7")        // non-ASCII without SMTPUTF8
	r.cmd("MAIL FROM:<a@x> SMTPUTF8", "555 5.5.4")  // not advertised
	r.cmd("MAIL FROM:<>", "250 ")
	r.cmd("MAIL FROM:<a@x>", "503 5.5.1")
	r.cmd("RCPT TO:<>", "501 5.5.4")
	r.cmd("RCPT TO:<\"odd>name\"@x>", "250 ")
	r.cmd("DATA x", "501 5.5.4")
	r.cmd("VRFY a", "252 ")
	r.cmd("HELP", "502 5.5.1")
	r.cmd("BOGUS", "500 5.5.2")
	r.cmd("RSET", "250 ")
	r.cmd("DATA", "503 5.5.1")
	r.cmd("NOOP", "250 ")
	r.cmd("HELO", "501 5.5.4")
	r.cmd("HELO y", "250 mail.test")
	r.cmd("QUIT", "221 ")
	r.expectEOF()
}

func TestMaxLineLength(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{MaxLineLength: 512})
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd("NOOP "+strings.Repeat("x", 512-len("NOOP \r\n")), "250 ") // exactly 512 octets
	r.cmd("NOOP "+strings.Repeat("x", 512-len("NOOP \r\n")+1), "500 5.4.0 Too long line")
	r.expectEOF()
	if got := s.Transcript(); len(got) != 2 || got[1] != "<LINE TOO LONG>" {
		t.Errorf("Transcript() = %q", got)
	}
}

func TestDomainAndGreeting(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{Domain: "relay.example"})
	r := dialRaw(t, s.Addr())
	if l := r.expect("220 "); !strings.HasPrefix(l[0], "220 relay.example ") {
		t.Errorf("greeting = %q", l)
	}
	if l := r.cmd("EHLO x", "250 "); l[0] != "250-relay.example" {
		t.Errorf("EHLO reply = %q", l)
	}
}

func TestHookPanicIsReported(t *testing.T) {
	t.Parallel()
	ft := &fakeTB{TB: t}
	s, err := newServer(ft, Options{RcptHook: func(string) *smtp.SMTPError { panic("boom") }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := dial(t, s)
	c.Mail("a@x", nil)
	if err := c.Rcpt("b@x", nil); smtpCode(err) != 451 {
		t.Errorf("Rcpt = %v, want 451", err)
	}
	if !ft.failed() {
		t.Errorf("hook panic not reported")
	}
}

type fakeTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs) > 0
}

func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	s := NewServer(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, s)
			errs <- send(c, "a@x", []string{fmt.Sprintf("r%d@x", i)}, "hello\r\n")
			c.Quit()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(s.Messages()); n != 20 {
		t.Errorf("got %d messages, want 20", n)
	}
	if n := s.Sessions(); n != 20 {
		t.Errorf("Sessions() = %d, want 20", n)
	}
	for i := 1; i <= 20; i++ {
		if got := s.SessionTranscript(i); len(got) != 6 || got[0] != "EHLO localhost" {
			t.Errorf("SessionTranscript(%d) = %q", i, got)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	t.Parallel()
	for _, f := range []Fault{
		{},
		{At: "BOGUS", Reply: "x"},
		{At: "MAIL"},
		{At: Idle},
		{At: Idle, Delay: time.Second, Action: Drop},
		{At: DataBody, Reply: "250 x"},
		{At: DataBody, Action: Endless},
		{At: "MAIL", Action: SlowRead},
		{At: "MAIL", Action: StripStartTLS},
		{At: "STARTTLS", Action: Inject},
		{At: "MAIL", Action: Inject, Reply: "x"},
		{At: "MAIL", Reply: "x", Times: -1},
		{At: "MAIL", Action: Action(99)},
		{At: DataBody, Action: Silent},
		{At: Greeting, Action: SlowRead},
	} {
		if _, err := newServer(nil, Options{Faults: []Fault{f}}); err == nil {
			t.Errorf("newServer accepted %+v", f)
		}
	}
	if _, err := newServer(nil, Options{TLS: Mode(7)}); err == nil {
		t.Errorf("newServer accepted Mode(7)")
	}
	if _, err := newServer(nil, Options{Cert: CertKind(9)}); err == nil {
		t.Errorf("newServer accepted CertKind(9)")
	}
	s, err := newServer(nil, Options{Faults: []Fault{{At: "mail", Reply: "421 x"}}})
	if err != nil {
		t.Fatalf("lower-case verb refused: %v", err)
	}
	s.Close()
}

func TestLogfRedactsAuth(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var logs []string
	const canary = "CANARY-s3cr3t"
	s := NewServer(t, Options{
		Users:         map[string]string{"alice": canary},
		ValidateToken: func(u, tok string) bool { return tok == canary },
		Logf: func(format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		},
	})
	for _, a := range []interface {
		Start() (string, []byte, error)
		Next([]byte) ([]byte, error)
	}{
		&plainNoIR{"alice", canary},
		&login{user: "alice", pass: canary},
		&xoauth2{user: "alice", token: canary},
		&xoauth2{user: "alice", token: canary + "bad"},
	} {
		c := dial(t, s)
		c.Auth(a)
		c.Quit()
	}
	c := dial(t, s)
	send(c, "a@x", []string{"b@x"}, "body has "+canary+"\r\n")
	c.Quit()
	// A SASL response the server reads as a command is redacted too.
	r := dialRaw(t, s.Addr())
	r.expect("220 ")
	r.cmd(b64(canary), "500 ")
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(logs, "\n")
	secrets := []string{canary, b64(canary), b64("\x00alice\x00" + canary), b64(canary + "bad"), "auth=Bearer",
		b64("user=alice\x01auth=Bearer " + canary + "\x01\x01")}
	for _, secret := range secrets {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(all, "<redacted>") || !strings.Contains(all, "C: EHLO localhost") {
		t.Errorf("logs look wrong:\n%s", all)
	}
}
