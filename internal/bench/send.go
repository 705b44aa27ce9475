package bench

import (
	"bytes"
	"context"
	"net"
	netsmtp "net/smtp"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/wneessen/go-mail"

	"github.com/emailconn/emailconn"
)

// Concurrency is the number of goroutines of the concurrent variants.
const Concurrency = 16

// A Client is one way of sending the notification of case 1.
type Client struct {
	ID   string // benchmark name element
	Name string // for the table
	// open prepares the client for a variant. newWorker returns the send
	// function of one goroutine; workers may share state (a pool, a
	// session), and must then be safe for concurrent use.
	open func(e *Env, secure bool) (newWorker func() (send func() error, err error), closeFn func(), err error)
	// plainOnly marks a client that has no STARTTLS variant.
	plainOnly bool
}

// Clients are the clients of case 1, the ceiling first.
var Clients = []*Client{
	{ID: "gosmtp-reuse", Name: "go-smtp, one reused session (ceiling)", open: openGoSMTPReuse},
	{ID: "emailconn", Name: "emailconn Sender.Send", open: openEmailconn},
	{ID: "emailconn-key", Name: "emailconn Sender.Send with an IdempotencyKey (in-process ledger)", open: openEmailconnKeyed},
	{ID: "emailconn-raw", Name: "emailconn Sender.SendRaw (prebuilt bytes)", open: openEmailconnRaw},
	{ID: "gosmtp-dial", Name: "go-smtp, new session per message", open: openGoSMTPDial},
	{ID: "netsmtp", Name: "net/smtp.SendMail", open: openNetSMTP},
	{ID: "gomail", Name: "go-mail v0.8.1 DialAndSend", open: openGoMail},
}

// shared wraps one send function, safe for concurrent use, as a worker
// factory.
func shared(send func() error) func() (func() error, error) {
	return func() (func() error, error) { return send, nil }
}

// NewEmailconnSender returns a Sender for a variant's sink with the
// default Options.
func NewEmailconnSender(e *Env, secure bool) (*emailconn.Sender, error) {
	c := emailconn.Connection{MailServer: e.sink(secure).Addr, From: From}
	if secure {
		c.EnableTLS = true
		c.CAFile = e.CAFile
		c.Username = User
		c.Password = emailconn.Secret(Password)
	}
	o := senderOptions()
	o.References = e.References()
	return emailconn.NewSender(c, o)
}

// senderOptions returns the Options of the emailconn rows: the defaults,
// except MaxMessagesPerSession when EMAILCONN_BENCH_MAX_MESSAGES is set
// (for experiments; the table uses the defaults).
func senderOptions() *emailconn.Options {
	o := &emailconn.Options{}
	if n, err := strconv.Atoi(os.Getenv("EMAILCONN_BENCH_MAX_MESSAGES")); err == nil {
		o.MaxMessagesPerSession = n
	}
	return o
}

func openEmailconn(e *Env, secure bool) (func() (func() error, error), func(), error) {
	s, err := NewEmailconnSender(e, secure)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	send := func() error {
		_, err := s.Send(ctx, &emailconn.Message{To: []string{To}, Subject: notificationSubject, Text: notificationText})
		return err
	}
	return shared(send), func() { s.Close() }, nil
}

// openEmailconnKeyed sends the notification of openEmailconn with a new
// IdempotencyKey each time: the ledger's common path (a first send,
// accepted), in the Sender's own in-process ledger.
func openEmailconnKeyed(e *Env, secure bool) (func() (func() error, error), func(), error) {
	s, err := NewEmailconnSender(e, secure)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	var n atomic.Int64
	send := func() error {
		key := "bench/" + strconv.FormatInt(n.Add(1), 10)
		_, err := s.Send(ctx, &emailconn.Message{To: []string{To}, Subject: notificationSubject, Text: notificationText, IdempotencyKey: key})
		return err
	}
	return shared(send), func() { s.Close() }, nil
}

// openEmailconnRaw sends the prebuilt message with SendRaw: the Sender's
// session handling without its message composition.
func openEmailconnRaw(e *Env, secure bool) (func() (func() error, error), func(), error) {
	s, err := NewEmailconnSender(e, secure)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	send := func() error {
		_, err := s.SendRaw(ctx, From, []string{To}, bytes.NewReader(rawNotification))
		return err
	}
	return shared(send), func() { s.Close() }, nil
}

// dialGoSMTP opens an authenticated go-smtp session as its documentation
// shows: DialStartTLS and AUTH PLAIN for the secure variant.
func dialGoSMTP(e *Env, secure bool, addr string) (*smtp.Client, error) {
	if !secure {
		c, err := smtp.Dial(addr)
		if err != nil {
			return nil, err
		}
		return c, c.Hello("localhost")
	}
	c, err := smtp.DialStartTLS(addr, e.PKI.clientTLS())
	if err != nil {
		return nil, err
	}
	if err := c.Auth(sasl.NewPlainClient("", User, Password)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// sendGoSMTP runs one mail transaction with the prebuilt message.
func sendGoSMTP(c *smtp.Client, msg []byte) error { return sendGoSMTPTo(c, toOne, msg) }

// toOne is the recipient list of the send cases: To.
var toOne = []string{To}

// sendGoSMTPTo runs one mail transaction to the recipients to with the
// prebuilt message.
func sendGoSMTPTo(c *smtp.Client, to []string, msg []byte) error {
	if err := c.Mail(From, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	return w.Close()
}

func openGoSMTPReuse(e *Env, secure bool) (func() (func() error, error), func(), error) {
	c, err := dialGoSMTP(e, secure, e.sink(secure).Addr)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	send := func() error {
		mu.Lock()
		defer mu.Unlock()
		return sendGoSMTP(c, rawNotification)
	}
	return shared(send), func() { c.Quit() }, nil
}

func openGoSMTPDial(e *Env, secure bool) (func() (func() error, error), func(), error) {
	send := func() error {
		c, err := dialGoSMTP(e, secure, e.sink(secure).DialAddr())
		if err != nil {
			return err
		}
		if err := sendGoSMTP(c, rawNotification); err != nil {
			c.Close()
			return err
		}
		return c.Quit()
	}
	return shared(send), func() {}, nil
}

func openNetSMTP(e *Env, secure bool) (func() (func() error, error), func(), error) {
	sink := e.sink(secure)
	var auth netsmtp.Auth
	if secure {
		// SendMail starts TLS when offered and verifies against the system
		// roots, which Setup pointed at the bench CA.
		auth = netsmtp.PlainAuth("", User, Password, "127.0.0.1")
	}
	send := func() error { return netsmtp.SendMail(sink.DialAddr(), auth, From, []string{To}, rawNotification) }
	return shared(send), func() {}, nil
}

func openGoMail(e *Env, secure bool) (func() (func() error, error), func(), error) {
	sink := e.sink(secure)
	// go-mail Clients per goroutine, one per sink port, used in turn; each
	// call dials, as DialAndSend does.
	newWorker := func() (func() error, error) {
		var clients []*mail.Client
		for _, addr := range sink.Addrs {
			_, port, _ := net.SplitHostPort(addr)
			p, _ := strconv.Atoi(port)
			opts := []mail.Option{mail.WithPort(p), mail.WithTLSPolicy(mail.NoTLS)}
			if secure {
				opts = []mail.Option{mail.WithPort(p), mail.WithTLSPolicy(mail.TLSMandatory),
					mail.WithTLSConfig(e.PKI.clientTLS()), mail.WithSMTPAuth(mail.SMTPAuthPlain),
					mail.WithUsername(User), mail.WithPassword(Password)}
			}
			c, err := mail.NewClient("127.0.0.1", opts...)
			if err != nil {
				return nil, err
			}
			clients = append(clients, c)
		}
		i := 0
		return func() error {
			c := clients[i%len(clients)]
			i++
			m := mail.NewMsg()
			if err := m.From(From); err != nil {
				return err
			}
			if err := m.To(To); err != nil {
				return err
			}
			m.Subject(notificationSubject)
			m.SetBodyString(mail.TypeTextPlain, notificationText)
			return c.DialAndSend(m)
		}, nil
	}
	return newWorker, func() {}, nil
}

// SendBench returns the benchmark of one client and variant: one send per
// iteration, from one goroutine or from Concurrency goroutines sharing
// b.N. It reports msg/s.
func SendBench(c *Client, secure bool, goroutines int) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := Setup()
		if err != nil {
			b.Fatal(err)
		}
		newWorker, closeFn, err := c.open(e, secure)
		if err != nil {
			b.Fatal(err)
		}
		defer closeFn()
		workers := make([]func() error, goroutines)
		for i := range workers {
			if workers[i], err = newWorker(); err != nil {
				b.Fatal(err)
			}
		}
		// Warm up: open the sessions a pool keeps, outside the timing.
		if err := runWorkers(workers, 2*goroutines); err != nil {
			b.Fatalf("%s: warm-up: %v", c.ID, err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		if err := runWorkers(workers, b.N); err != nil {
			b.Fatalf("%s: %v", c.ID, err)
		}
		cpu := cpuTime() - cpu0
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

// runWorkers makes n sends spread over the workers, each in its own
// goroutine (inline for one worker), and returns the first error.
func runWorkers(workers []func() error, n int) error {
	if len(workers) == 1 {
		for range n {
			if err := workers[0](); err != nil {
				return err
			}
		}
		return nil
	}
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, w := range workers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := w(); err != nil {
					once.Do(func() { first = err })
					left.Store(0)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}
