package smtptest_test

import (
	"fmt"
	"net"
	"strings"

	"github.com/emailconn/emailconn/internal/smtptest"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func ExampleNewServer() {
	s := smtptest.NewServer(nil, smtptest.Options{
		TLS:               smtptest.StartTLS,
		RequireTLSForAuth: true,
		Users:             map[string]string{"alice": "secret"},
		RcptHook: func(to string) *smtp.SMTPError {
			if to == "nobody@example.com" {
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
			}
			return nil
		},
	})
	defer s.Close()

	conn, _ := net.Dial("tcp", s.Addr())
	c, err := smtp.NewClientStartTLS(conn, s.ClientTLSConfig())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", "alice", "secret")); err != nil {
		panic(err)
	}
	c.Mail("alice@example.com", nil)
	fmt.Println(c.Rcpt("nobody@example.com", nil))
	c.Rcpt("bob@example.com", nil)
	w, _ := c.Data()
	fmt.Fprint(w, "Subject: hello\r\n\r\nHi Bob.\r\n")
	w.Close()
	c.Quit()

	m := s.Messages()[0]
	fmt.Println(m.From, m.To, m.TLS, m.AuthUser, m.Mechanism)
	for _, line := range s.Transcript() {
		if strings.HasPrefix(line, "AUTH ") {
			line = "AUTH PLAIN <…>"
		}
		fmt.Println(line)
	}
	// Output:
	// SMTP error 550: No such user
	// alice@example.com [bob@example.com] true alice PLAIN
	// EHLO localhost
	// STARTTLS
	// EHLO localhost
	// AUTH PLAIN <…>
	// MAIL FROM:<alice@example.com> BODY=8BITMIME
	// RCPT TO:<nobody@example.com>
	// RCPT TO:<bob@example.com>
	// DATA
	// <DATA 27 bytes>
	// QUIT
}

func ExampleFault() {
	s := smtptest.NewServer(nil, smtptest.Options{Faults: []smtptest.Fault{
		// The first RCPT is greylisted; the retry is accepted.
		{At: "RCPT", Reply: "450 4.2.0 Greylisted, try again later", Times: 1},
		// The connection breaks after the final dot: delivery unknown.
		{At: smtptest.AfterDot, Action: smtptest.Drop},
	}})
	defer s.Close()

	c, _ := smtp.Dial(s.Addr())
	defer c.Close()
	c.Mail("a@example.com", nil)
	fmt.Println(c.Rcpt("b@example.com", nil))
	fmt.Println(c.Rcpt("b@example.com", nil))
	w, _ := c.Data()
	fmt.Fprint(w, "Hi\r\n")
	fmt.Println(w.Close())
	fmt.Println(len(s.Messages()), s.Transcript()[len(s.Transcript())-1])
	// Output:
	// SMTP error 450: Greylisted, try again later
	// <nil>
	// EOF
	// 0 <DATA 4 bytes>
}
