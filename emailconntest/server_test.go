package emailconntest_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// TestMain fails the package's tests if a goroutine outlives them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newServer(t *testing.T, opts *emailconntest.Options) *emailconntest.Server {
	t.Helper()
	srv := emailconntest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

func newSender(t *testing.T, c emailconn.Connection, opts *emailconn.Options) *emailconn.Sender {
	t.Helper()
	s, err := emailconn.NewSender(c, opts)
	if err != nil {
		t.Fatalf("NewSender(%v): %v", c, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noRetry makes a failed send fail at once.
var noRetry = &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}

func TestIssue13_1_Modes(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     *emailconntest.Options
		tls      bool
		mech     string
		wantMode string
	}{
		{"nil options", nil, false, "", ""},
		{"plaintext auth", &emailconntest.Options{Username: "alerts", Password: "s3cret"}, false, "PLAIN", ""},
		{"starttls", &emailconntest.Options{TLS: "starttls"}, true, "", "starttls"},
		{"starttls auth", &emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"}, true, "PLAIN", "starttls"},
		{"implicit auth", &emailconntest.Options{TLS: "implicit", Username: "alerts", Password: "s3cret"}, true, "PLAIN", "implicit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts)
			c := srv.Connection("alerts")
			if c.Name != "alerts" || c.MailServer != srv.Addr() || c.TLSMode != tt.wantMode || c.EnableTLS != tt.tls ||
				c.CAFile != "" || (c.RootCAs != nil) != tt.tls {
				t.Fatalf("Connection(%q) = %v, want MailServer %s, TLS mode %q, RootCAs set %v and no CAFile", "alerts", c, srv.Addr(), tt.wantMode, tt.tls)
			}
			if !strings.HasPrefix(srv.Addr(), "127.0.0.1:") {
				t.Errorf("Addr() = %q, want 127.0.0.1:PORT", srv.Addr())
			}
			c.From = "alerts@example.com"
			rc, err := newSender(t, c, nil).Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Subject: "hi", Text: "hello"})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if (rc.TLSVersion != "") != tt.tls || rc.Mechanism != tt.mech {
				t.Errorf("Receipt TLS %q, mechanism %q; want TLS %v, mechanism %q", rc.TLSVersion, rc.Mechanism, tt.tls, tt.mech)
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].From != "alerts@example.com" || msgs[0].Subject != "hi" || msgs[0].Text != "hello\n" {
				t.Fatalf("Messages() = %+v", msgs)
			}
		})
	}
}

func TestIssue13_1_BadTLSModePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "is not a server mode") {
			t.Errorf("NewServer with TLS \"opportunistic\": recover() = %v, want a panic naming the mode", r)
		}
	}()
	srv := emailconntest.NewServer(&emailconntest.Options{TLS: "opportunistic"})
	srv.Close()
}

// TestIssue13_1_Decoded: the content is decoded with go-message.
func TestIssue13_1_Decoded(t *testing.T) {
	srv := newServer(t, &emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"})
	c := srv.Connection("alerts")
	c.From = "Alerts <alerts@example.com>"
	c.ActionsBaseURL = "https://approvals.example.com"
	s := newSender(t, c, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	png := []byte("\x89PNG\r\n\x1a\n not really")
	_, err := s.Send(context.Background(), &emailconn.Message{
		To: []string{"Jörg Müller <approver@example.com>"}, Cc: []string{"cc@example.com"}, Bcc: []string{"audit@example.com"},
		Subject: "Workunit 42 — approval needed",
		Text:    "Approve: http://engine.internal:8080/actions/approve?wu=42&sig=a=b\nThanks, " + strings.Repeat("long line ", 20),
		HTML:    `<p><a href="http://engine.internal:8080/actions/approve?wu=42">Approve</a><img src="cid:logo@x"></p>`,
		Headers: map[string]string{"X-Workunit": "42"},
		Attachments: []emailconn.Attachment{
			{Filename: "report ü.bin", ContentType: "application/octet-stream", Content: bytes.NewReader(binary)},
			{Filename: "log.txt", Content: strings.NewReader("line 1\nline 2\n")},
			{Filename: "logo.png", ContentType: "image/png", Content: bytes.NewReader(png), Inline: true, ContentID: "logo@x"},
		},
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Messages()[0]
	if want := []string{"approver@example.com", "cc@example.com", "audit@example.com"}; strings.Join(m.To, ",") != strings.Join(want, ",") {
		t.Errorf("To = %q, want %q", m.To, want)
	}
	if m.Subject != "Workunit 42 — approval needed" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if want := "Approve: https://approvals.example.com/actions/approve?wu=42&sig=a=b\nThanks, " + strings.Repeat("long line ", 20); !strings.HasPrefix(m.Text, want) {
		t.Errorf("Text = %q, want it to start with %q", m.Text, want)
	}
	if !strings.Contains(m.HTML, `href="https://approvals.example.com/actions/approve?wu=42"`) {
		t.Errorf("HTML = %q, want the rewritten link", m.HTML)
	}
	if !bytes.Contains(m.Raw, []byte("=3D")) && !bytes.Contains(m.Raw, []byte("Content-Transfer-Encoding: base64")) {
		t.Errorf("Raw is neither quoted-printable nor base64: the test does not show decoding\n%s", m.Raw)
	}
	if got := m.Header.Get("X-Workunit"); got != "42" {
		t.Errorf("Header.Get(X-Workunit) = %q", got)
	}
	if got := m.Header.Get("To"); !strings.Contains(got, "Jörg Müller") {
		t.Errorf("Header.Get(To) = %q, want the decoded name", got)
	}
	if l, err := m.Header.AddressList("To"); err != nil || len(l) != 1 || l[0].Name != "Jörg Müller" || l[0].Address != "approver@example.com" {
		t.Errorf("Header.AddressList(To) = %v, %v", l, err)
	}
	if m.Header.Get("Bcc") != "" || bytes.Contains(m.Raw, []byte("audit@")) {
		t.Errorf("Bcc recipient appears in the content")
	}
	if len(m.Attachments) != 3 {
		t.Fatalf("Attachments = %+v, want 3", m.Attachments)
	}
	byName := map[string]emailconntest.Attachment{}
	for _, a := range m.Attachments {
		byName[a.Filename] = a
	}
	if a := byName["report ü.bin"]; a.ContentType != "application/octet-stream" || !bytes.Equal(a.Content, binary) || a.Inline {
		t.Errorf("report ü.bin: %q inline %v, %d bytes, equal %v", a.ContentType, a.Inline, len(a.Content), bytes.Equal(a.Content, binary))
	}
	if a := byName["log.txt"]; !strings.HasPrefix(a.ContentType, "text/plain") || strings.ReplaceAll(string(a.Content), "\r\n", "\n") != "line 1\nline 2\n" {
		t.Errorf("log.txt: %q %q", a.ContentType, a.Content)
	}
	if a := byName["logo.png"]; !a.Inline || a.ContentID != "logo@x" || a.ContentType != "image/png" || !bytes.Equal(a.Content, png) {
		t.Errorf("logo.png: inline %v, Content-ID %q, %q, %q", a.Inline, a.ContentID, a.ContentType, a.Content)
	}
}

// TestIssue13_1_DecodeLenient: a raw message that is not MIME still shows
// its envelope, what header there is, and its bytes.
func TestIssue13_1_DecodeLenient(t *testing.T) {
	srv := newServer(t, nil)
	s := newSender(t, srv.Connection("raw"), nil)
	for _, raw := range []string{
		"Subject: plain\r\n\r\njust text\r\n",
		"no header at all\r\n",
		"Content-Type: multipart/mixed; boundary=x\r\nSubject: broken\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nunterminated",
	} {
		if _, err := s.SendRaw(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(raw)); err != nil {
			t.Fatalf("SendRaw(%q): %v", raw, err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 3 {
		t.Fatalf("got %d messages", len(msgs))
	}
	if m := msgs[0]; m.Subject != "plain" || m.Text != "just text\n" {
		t.Errorf("plain message: Subject %q, Text %q", m.Subject, m.Text)
	}
	for i, m := range msgs {
		if m.From != "a@example.com" || len(m.To) != 1 || len(m.Raw) == 0 {
			t.Errorf("message %d: envelope %q %q, %d raw bytes", i, m.From, m.To, len(m.Raw))
		}
	}
}

func TestIssue13_1_Auth(t *testing.T) {
	srv := newServer(t, &emailconntest.Options{TLS: "starttls", Username: "alerts", Password: "s3cret"})
	msg := &emailconn.Message{From: "alerts@example.com", To: []string{"ops@example.com"}, Text: "x"}

	c := srv.Connection("wrong")
	c.Password = "wrong"
	_, err := newSender(t, c, noRetry).Send(context.Background(), msg)
	if !errors.Is(err, emailconn.ErrAuthFailed) {
		t.Errorf("Send with a wrong password = %v, want ErrAuthFailed", err)
	}

	c = srv.Connection("none")
	c.Username, c.Password = "", ""
	_, err = newSender(t, c, noRetry).Send(context.Background(), msg)
	var se *emailconn.SMTPError
	if !errors.As(err, &se) || se.Code != 530 {
		t.Errorf("Send without credentials = %v, want 530 (authentication required)", err)
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("the server accepted %d messages", n)
	}
}

// TestIssue13_1_Token: XOAUTH2 and OAUTHBEARER are checked by the token
// callback, through a Registry's OAuth2 configuration.
func TestIssue13_1_Token(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := newServer(t, &emailconntest.Options{
		TLS: "implicit", Username: "robot@example.com",
		ValidateToken: func(user, token string) bool {
			mu.Lock()
			seen = append(seen, user+" "+token)
			mu.Unlock()
			return user == "robot@example.com" && token == "good-token"
		},
	})
	for _, tt := range []struct {
		token string
		want  error
	}{{"good-token", nil}, {"bad-token", emailconn.ErrAuthFailed}} {
		c := srv.Connection("m365")
		if c.AuthType != "oauth2" || c.Username != "robot@example.com" || c.Password != "" {
			t.Fatalf("Connection() = %v, want an OAuth2 connection for robot@example.com", c)
		}
		c.OAuth2Config = "test"
		c.From = "robot@example.com"
		reg, err := emailconn.NewRegistry(emailconn.Config{
			Connections:   []emailconn.Connection{c},
			OAuth2Configs: []emailconn.OAuth2Config{{Name: "test", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tt.token})}},
			Processes:     map[string]string{"Payroll": "m365"},
		}, noRetry)
		if err != nil {
			t.Fatal(err)
		}
		rt, _ := reg.Resolve("Payroll")
		rc, err := rt.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		reg.Close()
		if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
			t.Errorf("token %q: Send = %v, want %v", tt.token, err, tt.want)
		}
		if err == nil && rc.Mechanism != "XOAUTH2" && rc.Mechanism != "OAUTHBEARER" {
			t.Errorf("token %q: mechanism %q", tt.token, rc.Mechanism)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < 2 || seen[0] != "robot@example.com good-token" {
		t.Errorf("ValidateToken saw %q", seen)
	}
}

func TestIssue13_1_RejectRecipients(t *testing.T) {
	srv := newServer(t, &emailconntest.Options{RejectRecipients: []string{"Gone@Example.com"}})
	s := newSender(t, srv.Connection("x"), noRetry)
	rc, err := s.Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"ops@example.com", "gone@example.com"}, Text: "x"})
	var re *emailconn.RecipientsError
	if !errors.Is(err, emailconn.ErrRecipientRejected) || !errors.As(err, &re) || rc == nil {
		t.Fatalf("Send = %v, %v; want a receipt and ErrRecipientRejected", rc, err)
	}
	if len(re.Rejected) != 1 || re.Rejected[0].Address != "gone@example.com" || !strings.Contains(re.Rejected[0].Err.Error(), "550 5.1.1") {
		t.Errorf("Rejected = %v", re.Rejected)
	}
	if m := srv.Messages(); len(m) != 1 || strings.Join(m[0].To, ",") != "ops@example.com" {
		t.Errorf("Messages() = %+v, want one message to ops@example.com", m)
	}
}

func TestIssue13_1_Refuse(t *testing.T) {
	t.Run("issue13-1/mail-once-then-retry", func(t *testing.T) {
		var n atomic.Int32
		srv := newServer(t, &emailconntest.Options{Refuse: func(cmd, arg string) string {
			if cmd == "MAIL" && n.Add(1) == 1 {
				return "451 4.3.0 Try again later"
			}
			return ""
		}})
		s := newSender(t, srv.Connection("x"), &emailconn.Options{Retry: emailconn.RetryPolicy{InitialBackoff: time.Millisecond}})
		rc, err := s.Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x"})
		if err != nil || rc.Attempts != 2 {
			t.Fatalf("Send = %v, %v; want success on the second attempt", rc, err)
		}
		if len(srv.Messages()) != 1 {
			t.Errorf("got %d messages, want 1", len(srv.Messages()))
		}
	})
	for _, tt := range []struct {
		name, cmd, reply string
		code             int
		enhanced, text   string
	}{
		{"issue13-1/data-refused", "DATA", "554 5.7.1 Message rejected as spam", 554, "5.7.1", "Message rejected as spam"},
		{"issue13-1/rcpt-no-enhanced-code", "RCPT", "550 No such user", 550, "", "No such user"},
		{"issue13-1/mail-permanent", "MAIL", "553 5.7.1 Sender not allowed", 553, "5.7.1", "Sender not allowed"},
		{"issue13-1/not-a-reply", "MAIL", "250 fine", 451, "4.3.5", `emailconntest: Refuse returned "250 fine", which is not a 4xx or 5xx reply`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, &emailconntest.Options{Refuse: func(cmd, arg string) string {
				if cmd == tt.cmd {
					return tt.reply
				}
				return ""
			}})
			s := newSender(t, srv.Connection("x"), noRetry)
			_, err := s.Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x"})
			var se *emailconn.SMTPError
			if !errors.As(err, &se) || se.Code != tt.code || se.Enhanced() != tt.enhanced || se.Message != tt.text {
				t.Fatalf("Send = %v; want %d %s %s", err, tt.code, tt.enhanced, tt.text)
			}
			if len(srv.Messages()) != 0 {
				t.Errorf("a refused message was recorded")
			}
		})
	}
}

func TestIssue13_1_WaitMessages(t *testing.T) {
	srv := newServer(t, nil)
	s := newSender(t, srv.Connection("x"), nil)
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 3 && err == nil; i++ {
			_, err = s.Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x"})
		}
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := srv.WaitMessages(ctx, 3)
	if err != nil || len(msgs) < 3 {
		t.Fatalf("WaitMessages(3) = %d messages, %v", len(msgs), err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	short, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := srv.WaitMessages(short, 4); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitMessages with a cancelled context = %v, want context.Canceled", err)
	}
	cause := errors.New("the engine gave up")
	withCause, cancel3 := context.WithCancelCause(context.Background())
	cancel3(cause)
	if _, err := srv.WaitMessages(withCause, 4); !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
		t.Errorf("WaitMessages with a cause = %v, want context.Canceled and the cause", err)
	}
	srv.Close()
	if _, err := srv.WaitMessages(context.Background(), 4); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("WaitMessages after Close = %v, want an error saying the server is closed", err)
	}
	if msgs, err := srv.WaitMessages(context.Background(), 3); err != nil || len(msgs) != 3 {
		t.Errorf("WaitMessages(3) after Close = %d, %v; want the 3 messages", len(msgs), err)
	}
}

// TestIssue13_1_MessagesAreCopies: changing what Messages returned does not
// change what the server holds.
func TestIssue13_1_MessagesAreCopies(t *testing.T) {
	srv := newServer(t, nil)
	s := newSender(t, srv.Connection("x"), nil)
	if _, err := s.Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x",
		Attachments: []emailconn.Attachment{{Filename: "a.bin", Content: strings.NewReader("abc")}}}); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	m.To[0] = "changed"
	m.Header["Subject"] = []string{"changed"}
	m.Attachments[0].Content[0] = 'X'
	m.Raw[0] = 'X'
	again := srv.Messages()[0]
	if again.To[0] != "b@example.com" || again.Header.Get("Subject") == "changed" || string(again.Attachments[0].Content) != "abc" || again.Raw[0] == 'X' {
		t.Errorf("Messages() shares memory with the server: %+v", again)
	}
}

// TestIssue13_1_Concurrent sends from many goroutines (run with -race).
func TestIssue13_1_Concurrent(t *testing.T) {
	srv := newServer(t, &emailconntest.Options{TLS: "starttls", Username: "u", Password: "p"})
	c := srv.Connection("x")
	c.From = "a@example.com"
	s := newSender(t, c, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), &emailconn.Message{To: []string{"b@example.com"}, Text: "x"}); err != nil {
				t.Error(err)
			}
			_ = srv.Messages()
		})
	}
	wg.Wait()
	if n := len(srv.Messages()); n != 8 {
		t.Errorf("got %d messages, want 8", n)
	}
}

// TestIssue13_1_HeaderDecoding: header values are unfolded and their
// RFC 2047 words decoded; repeated fields keep their order.
func TestIssue13_1_HeaderDecoding(t *testing.T) {
	srv := newServer(t, nil)
	s := newSender(t, srv.Connection("raw"), nil)
	raw := "Received: first\r\nReceived: second\r\nSubject: =?utf-8?q?Genehmigung_f=C3=BCr?=\r\n =?utf-8?q?_Workunit_42?=\r\nX-Long: one\r\n\ttwo\r\n\r\nbody\r\n"
	if _, err := s.SendRaw(context.Background(), "a@example.com", []string{"b@example.com"}, strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if m.Subject != "Genehmigung für Workunit 42" || m.Header.Get("X-Long") != "one two" ||
		strings.Join(m.Header["Received"], ",") != "first,second" {
		t.Errorf("Subject %q, X-Long %q, Received %q", m.Subject, m.Header.Get("X-Long"), m.Header["Received"])
	}
}

func TestIssue13_1_RefusePanics(t *testing.T) {
	srv := newServer(t, &emailconntest.Options{Refuse: func(cmd, arg string) string { panic("bug in the test") }})
	_, err := newSender(t, srv.Connection("x"), noRetry).Send(context.Background(), &emailconn.Message{From: "a@example.com", To: []string{"b@example.com"}, Text: "x"})
	var se *emailconn.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || !strings.Contains(se.Message, "Refuse panicked: bug in the test") {
		t.Errorf("Send with a panicking Refuse = %v, want 451 naming the panic", err)
	}
}
