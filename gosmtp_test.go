package emailconn_test

// Tests against go-smtp's own server, a strict and independent receiver
// (it accepts only CRLF.CRLF as the end of data), for the paths every
// engine uses: STARTTLS and implicit TLS, AUTH PLAIN, MIME composition read
// back byte for byte, concurrency, SMTPUTF8 and SIZE.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/smtptest"
)

type goSMTPServer struct {
	*smtp.Server
	addr  string
	mu    sync.Mutex
	msgs  []goSMTPMessage
	conns map[string]bool // remote addresses seen: one per TCP connection
}

type goSMTPMessage struct {
	from string
	to   []string
	opts smtp.MailOptions
	data []byte
	tls  bool
	user string
}

// startGoSMTP starts go-smtp's server on loopback with the test
// certificate and AUTH PLAIN for alice.
func startGoSMTP(t testing.TB, implicit bool, configure func(*smtp.Server)) *goSMTPServer {
	t.Helper()
	g := &goSMTPServer{conns: map[string]bool{}}
	g.Server = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		g.mu.Lock()
		g.conns[c.Conn().RemoteAddr().String()] = true
		g.mu.Unlock()
		return &goSMTPSession{g: g, tls: isTLS}, nil
	}))
	g.Domain = "localhost"
	g.TLSConfig = &tls.Config{Certificates: []tls.Certificate{smtptest.Cert(smtptest.CertGood)}}
	g.MaxMessageBytes = 64 << 20
	if configure != nil {
		configure(g.Server)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		l = tls.NewListener(l, g.TLSConfig)
	}
	g.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(l)
	}()
	t.Cleanup(func() {
		g.Close()
		<-done
	})
	return g
}

func (g *goSMTPServer) messages() []goSMTPMessage {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]goSMTPMessage(nil), g.msgs...)
}

type goSMTPSession struct {
	g    *goSMTPServer
	tls  bool
	user string
	msg  goSMTPMessage
}

func (s *goSMTPSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *goSMTPSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "alice" || pass != "s3cret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}), nil
}
func (s *goSMTPSession) Mail(from string, opts *smtp.MailOptions) error {
	s.msg = goSMTPMessage{from: from, tls: s.tls, user: s.user}
	if opts != nil {
		s.msg.opts = *opts
	}
	return nil
}
func (s *goSMTPSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.to = append(s.msg.to, to)
	return nil
}
func (s *goSMTPSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = b
	s.g.mu.Lock()
	s.g.msgs = append(s.g.msgs, s.msg)
	s.g.mu.Unlock()
	return nil
}
func (s *goSMTPSession) Reset()        {}
func (s *goSMTPSession) Logout() error { return nil }

func goSMTPConn(t *testing.T, g *goSMTPServer, mode string) emailconn.Connection {
	return emailconn.Connection{Name: "gosmtp", MailServer: g.addr, TLSMode: mode, EnableTLS: mode != "none",
		CAFile: caFile(t), Username: "alice", Password: "s3cret", From: "engine@example.com"}
}

// decoded is a message read back with go-message.
type decoded struct {
	subject, text, html string
	from, to            []*mail.Address
	parts               map[string][]byte // attachment filename or inline Content-ID → bytes
	headers             map[string]string
}

func decode(t *testing.T, data []byte) decoded {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reading the message back: %v", err)
	}
	d := decoded{parts: map[string][]byte{}, headers: map[string]string{}}
	d.subject, _ = mr.Header.Subject()
	d.from, _ = mr.Header.AddressList("From")
	d.to, _ = mr.Header.AddressList("To")
	for f := mr.Header.Fields(); f.Next(); {
		if strings.HasPrefix(f.Key(), "X-") {
			d.headers[f.Key()], _ = f.Text()
		}
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a part: %v", err)
		}
		body, err := io.ReadAll(p.Body)
		if err != nil {
			t.Fatal(err)
		}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			switch {
			case h.Get("Content-Id") != "":
				d.parts[strings.Trim(h.Get("Content-Id"), "<>")] = body
			case ct == "text/plain":
				d.text = string(body)
			case ct == "text/html":
				d.html = string(body)
			}
		case *mail.AttachmentHeader:
			name, _ := h.Filename()
			if id := h.Get("Content-Id"); id != "" {
				name = strings.Trim(id, "<>")
			}
			d.parts[name] = body
		}
	}
	return d
}

func TestGoSMTPServerFullMessage(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{false, true} {
		t.Run(fmt.Sprintf("implicit=%v", implicit), func(t *testing.T) {
			g := startGoSMTP(t, implicit, nil)
			mode := "starttls"
			if implicit {
				mode = "implicit"
			}
			s := mustSender(t, goSMTPConn(t, g, mode), &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
			big := make([]byte, 3<<20)
			_, _ = rand.Read(big)
			png := []byte("\x89PNG\r\n\x1a\n fake image bytes \r\n.\r\n")
			subject := "Genehmigung erforderlich: Überstunden für Jürgen"
			text := "Hallo Jürgen,\nbitte genehmigen.\r\n.\nEine Zeile mit nur einem Punkt steht darüber.\n"
			html := `<p>山田太郎 さん</p><img src="cid:logo@engine">`
			msg := &emailconn.Message{
				From: "Workflow Engine <engine@example.com>", To: []string{"山田太郎 <yamada@example.com>", "Jürgen Groß <juergen@example.com>"},
				Bcc: []string{"audit@example.com"}, Subject: subject, Text: text, HTML: html,
				Headers: map[string]string{"X-Workunit": "4711"},
				Attachments: []emailconn.Attachment{
					{Filename: "Bericht für März.bin", Content: bytes.NewReader(big)},
					{Filename: "logo.png", ContentType: "image/png", Content: bytes.NewReader(png), Inline: true, ContentID: "logo@engine"},
				},
			}
			rc, err := s.Send(context.Background(), msg)
			if err != nil {
				t.Fatal(err)
			}
			msgs := g.messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			m := msgs[0]
			if !m.tls || m.user != "alice" || strings.Join(m.to, ",") != "yamada@example.com,juergen@example.com,audit@example.com" {
				t.Errorf("envelope: tls %v user %q to %v", m.tls, m.user, m.to)
			}
			if bytes.Contains(m.data, []byte("audit@example.com")) {
				t.Error("the Bcc recipient appears in the message")
			}
			if !bytes.Contains(m.data, []byte("Message-Id: <"+rc.MessageID+">")) && !bytes.Contains(m.data, []byte("Message-ID: <"+rc.MessageID+">")) {
				t.Errorf("message lacks Message-ID %s", rc.MessageID)
			}
			d := decode(t, m.data)
			if d.subject != subject {
				t.Errorf("subject = %q, want %q", d.subject, subject)
			}
			if len(d.to) != 2 || d.to[0].Name != "山田太郎" || d.to[1].Name != "Jürgen Groß" || d.from[0].Name != "Workflow Engine" {
				t.Errorf("addresses = %v %v", d.from, d.to)
			}
			wantText := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
			if d.text != wantText {
				t.Errorf("text = %q, want %q", d.text, wantText)
			}
			if d.html != html {
				t.Errorf("html = %q, want %q", d.html, html)
			}
			if !bytes.Equal(d.parts["Bericht für März.bin"], big) {
				t.Errorf("the 3 MB attachment differs (%d bytes back)", len(d.parts["Bericht für März.bin"]))
			}
			if !bytes.Equal(d.parts["logo@engine"], png) {
				t.Errorf("the inline image differs: %q", d.parts["logo@engine"])
			}
			if d.headers["X-Workunit"] != "4711" {
				t.Errorf("X-Workunit = %q", d.headers["X-Workunit"])
			}
		})
	}
}

func TestGoSMTPServerConcurrentSends(t *testing.T) {
	t.Parallel()
	g := startGoSMTP(t, false, nil)
	s := mustSender(t, goSMTPConn(t, g, "starttls"), &emailconn.Options{MaxSessions: 4})
	const n, workers = 200, 16
	ids := make(chan string, n)
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				rc, err := s.Send(context.Background(), &emailconn.Message{To: []string{fmt.Sprintf("u%d@example.com", i)}, Subject: fmt.Sprint(i), Text: "x"})
				if err != nil {
					t.Error(err)
					continue
				}
				ids <- rc.MessageID
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(ids)
	sent := map[string]bool{}
	for id := range ids {
		sent[id] = true
	}
	got := map[string]int{}
	for _, m := range g.messages() {
		d := mustHeader(t, m.data, "Message-Id")
		got[strings.Trim(d, "<>")]++
	}
	if len(sent) != n || len(got) != n {
		t.Errorf("sent %d distinct, server has %d distinct, want %d", len(sent), len(got), n)
	}
	for id, c := range got {
		if c != 1 || !sent[id] {
			t.Errorf("Message-ID %s received %d times (sent: %v)", id, c, sent[id])
		}
	}
	if n := len(g.conns); n > 4 {
		t.Errorf("%d connections for MaxSessions 4", n)
	}
}

func mustHeader(t *testing.T, data []byte, key string) string {
	t.Helper()
	mr, err := mail.CreateReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return mr.Header.Get(key)
}

func TestGoSMTPServerSMTPUTF8(t *testing.T) {
	t.Parallel()
	for _, enabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("offered=%v", enabled), func(t *testing.T) {
			g := startGoSMTP(t, false, func(s *smtp.Server) { s.EnableSMTPUTF8 = enabled })
			s := mustSender(t, goSMTPConn(t, g, "starttls"), nil)
			_, err := s.Send(context.Background(), &emailconn.Message{To: []string{"jürgen@bücher.example"}, Subject: "x", Text: "y"})
			if enabled {
				if err != nil {
					t.Fatal(err)
				}
				m := g.messages()[0]
				if !m.opts.UTF8 || m.to[0] != "jürgen@bücher.example" {
					t.Errorf("MAIL options %+v, to %v", m.opts, m.to)
				}
				return
			}
			if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "SMTPUTF8") {
				t.Errorf("Send = %v, want a clear ErrInvalid about SMTPUTF8", err)
			}
			if len(g.messages()) != 0 {
				t.Error("a message was sent")
			}
		})
	}
}

func TestGoSMTPServerSize(t *testing.T) {
	t.Parallel()
	g := startGoSMTP(t, false, func(s *smtp.Server) { s.MaxMessageBytes = 20000 })
	s := mustSender(t, goSMTPConn(t, g, "starttls"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	known := &emailconn.Message{To: []string{"a@example.com"}, Attachments: []emailconn.Attachment{{Filename: "a", Content: bytes.NewReader(make([]byte, 50000))}}}
	if _, err := s.Send(context.Background(), known); !errors.Is(err, emailconn.ErrMessageTooLarge) {
		t.Errorf("known size: Send = %v, want ErrMessageTooLarge", err)
	}
	unknown := &emailconn.Message{To: []string{"a@example.com"}, Attachments: []emailconn.Attachment{{Filename: "a", Content: io.LimitReader(zeroReader{}, 50000)}}}
	_, err := s.Send(context.Background(), unknown)
	var se *emailconn.SMTPError
	if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &se) || se.Code != 552 {
		t.Errorf("unknown size: Send = %v, want the server's 552", err)
	}
	if _, err := s.Send(context.Background(), basicMessage()); err != nil {
		t.Errorf("a small message after a refused one: %v", err)
	}
}
