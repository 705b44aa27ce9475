package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn"
)

// BareProtocolBench is the reference of case 5: what Test Connection does
// on the wire, by hand with go-smtp: dial, EHLO, STARTTLS and its
// handshake, the EHLO after it, AUTH PLAIN, QUIT.
func BareProtocolBench(b *testing.B) {
	e, err := Setup()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := smtp.DialStartTLS(e.TLS.DialAddr(), e.PKI.clientTLS())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", User, Password)); err != nil {
			b.Fatal(err)
		}
		if err := c.Quit(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConnectionBench is case 5 for emailconn: Connection.Test
// (a new Sender, the CA file read, every stage traced and
// reported), or with registry, Registry.TestConnection on a connection
// whose Sender the Registry keeps. Both run STARTTLS, AUTH PLAIN and QUIT
// against the same sink.
func TestConnectionBench(registry bool) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := Setup()
		if err != nil {
			b.Fatal(err)
		}
		// One connection per sink port, used in turn, as the bare protocol
		// rotates its dials (see sinkPorts).
		var conns []emailconn.Connection
		for i, addr := range e.TLS.Addrs {
			conns = append(conns, emailconn.Connection{Name: fmt.Sprintf("bench%d", i), MailServer: addr, EnableTLS: true,
				CAFile: e.CAFile, From: From, Username: User, Password: emailconn.Secret(Password)})
		}
		ctx := context.Background()
		topts := &emailconn.TestOptions{Options: withRefs(e, nil)}
		n := 0
		test := func() *emailconn.TestReport {
			n++
			return conns[n%len(conns)].Test(ctx, topts)
		}
		if registry {
			r, err := emailconn.NewRegistry(emailconn.Config{Connections: conns}, withRefs(e, nil))
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			test = func() *emailconn.TestReport {
				n++
				return r.TestConnection(ctx, conns[n%len(conns)].Name, nil)
			}
		}
		if rep := test(); !rep.OK {
			b.Fatalf("Test Connection failed: %s", rep.Sentence)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if rep := test(); !rep.OK {
				b.Fatalf("Test Connection failed: %s", rep.Sentence)
			}
		}
	}
}
