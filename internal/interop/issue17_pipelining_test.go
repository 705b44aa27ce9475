package interop

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestIssue17_MailpitOffersNeither: Mailpit (v1.33.1) offers neither
// PIPELINING nor CHUNKING, so emailconn sends to it in lockstep; Test
// Connection says so. Should a later Mailpit offer them, this test fails
// and the pipelined cases below can run without the proxy.
func TestIssue17_MailpitOffersNeither(t *testing.T) {
	s := setup(t)
	c := s.conn(instPlain, "none")
	rep := c.Test(t.Context(), &emailconn.TestOptions{Options: allowCA(c, nil)})
	if !rep.OK {
		t.Fatalf("Test Connection: %s", rep.Sentence)
	}
	if sv := rep.Server; sv.Pipelining || sv.Chunking || sv.PipeliningUsed || sv.ChunkingUsed {
		t.Errorf("Mailpit's extensions %q: pipelining %v (used %v), chunking %v (used %v); want none",
			sv.Extensions, sv.Pipelining, sv.PipeliningUsed, sv.Chunking, sv.ChunkingUsed)
	}
	px := newProxy(t, smtpAddr(instPlain), "")
	c.MailServer = px.addr()
	mailpitOf(instPlain).reset(t)
	if _, err := newSender(t, c, nil).Send(t.Context(), &emailconn.Message{Subject: "lockstep", Text: "x", To: []string{"a@example.com", "b@example.com"}}); err != nil {
		t.Fatalf("Send = %v", err)
	}
	if sent := px.sent(); strings.Contains(sent, "BDAT") {
		t.Errorf("BDAT sent to a server that does not offer CHUNKING:\n%s", sent)
	}
}

// TestIssue17_PipelinedToMailpit sends pipelined transactions to Mailpit,
// an independently written server that reads commands one line at a time,
// through a proxy that adds PIPELINING to its EHLO reply (Mailpit does not
// offer it, and emailconn never pipelines to a server that does not). The
// faulty instance refuses recipients outside example.com (550), messages
// over 1 MiB (552 after the data) and, with a chaos trigger, MAIL.
func TestIssue17_PipelinedToMailpit(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instChaos)
	newConn := func(t *testing.T) (emailconn.Connection, *proxy) {
		px := newExtProxy(t, smtpAddr(instChaos), "PIPELINING")
		c := s.conn(instChaos, "none")
		c.MailServer = px.addr()
		return c, px
	}
	noRetry := &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}}

	t.Run("test connection", func(t *testing.T) {
		c, _ := newConn(t)
		rep := c.Test(t.Context(), &emailconn.TestOptions{Options: allowCA(c, nil)})
		if !rep.OK || !rep.Server.Pipelining || !rep.Server.PipeliningUsed || rep.Server.ChunkingUsed {
			t.Fatalf("report: ok %v, server %+v", rep.OK, rep.Server)
		}
	})
	t.Run("some recipients refused", func(t *testing.T) {
		mp.reset(t)
		c, px := newConn(t)
		snd := newSender(t, c, noRetry)
		rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: "some refused", Text: "x",
			To: []string{"a@example.com", "b@other.test", "c@example.com"}})
		if !errors.Is(err, emailconn.ErrRecipientRejected) || rc == nil || len(rc.Accepted) != 2 || len(rc.Rejected) != 1 || rc.Rejected[0].Err.Code != 550 {
			t.Fatalf("Send = %+v, %v; want 2 accepted, b@other.test refused with 550", rc, err)
		}
		list := mp.list(t)
		if len(list) != 1 || len(list[0].To) != 3 { // To is the header: all three are named
			t.Fatalf("Mailpit holds %d messages", len(list))
		}
		if sent := px.sent(); !strings.Contains(sent, "RCPT TO:<a@example.com>\r\nRCPT TO:<b@other.test>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n") {
			t.Errorf("the commands were not one flight:\n%s", sent)
		}
	})
	t.Run("all recipients refused, then DATA", func(t *testing.T) {
		mp.reset(t)
		c, px := newConn(t)
		snd := newSender(t, c, noRetry)
		_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "all refused", Text: "x", To: []string{"a@other.test", "b@other.test"}})
		var re *emailconn.RecipientsError
		if !errors.As(err, &re) || len(re.Rejected) != 2 {
			t.Fatalf("Send = %v, want both recipients refused", err)
		}
		// Mailpit refused DATA too; the session is in step for the next.
		if _, err := snd.Send(t.Context(), &emailconn.Message{Subject: "next", Text: "x", To: []string{"a@example.com"}}); err != nil {
			t.Fatalf("next Send = %v", err)
		}
		if n := mp.total(t); n != 1 || px.sessions() != 1 {
			t.Errorf("messages %d, sessions %d; want 1, 1", n, px.sessions())
		}
	})
	t.Run("DATA refused after the data", func(t *testing.T) {
		mp.reset(t)
		c, _ := newConn(t)
		snd := newSender(t, c, noRetry)
		big := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
		_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "too large", Text: "x", To: []string{"a@example.com"},
			Attachments: []emailconn.Attachment{{Filename: "big.bin", Content: onlyReader{bytes.NewReader(big)}}}})
		var se *emailconn.SMTPError
		if !errors.Is(err, emailconn.ErrRefused) || errors.Is(err, emailconn.ErrDeliveryUnknown) || !errors.As(err, &se) || se.Code != 552 {
			t.Fatalf("Send = %v, want the 552 refusal", err)
		}
		if _, err := snd.Send(t.Context(), &emailconn.Message{Subject: "next", Text: "x", To: []string{"a@example.com"}}); err != nil {
			t.Fatalf("next Send = %v", err)
		}
	})
	t.Run("MAIL refused", func(t *testing.T) {
		mp.reset(t)
		c, px := newConn(t)
		mp.setChaos(t, chaos{Sender: &trigger{ErrorCode: 550, Probability: 100}})
		snd := newSender(t, c, noRetry)
		_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "refused", Text: "x", To: []string{"a@example.com", "b@example.com"}})
		var ee *emailconn.Error
		if !errors.Is(err, emailconn.ErrRefused) || !errors.As(err, &ee) || ee.Stage != emailconn.StageMail {
			t.Fatalf("Send = %v, want ErrRefused at mail", err)
		}
		mp.setChaos(t, chaos{})
		if _, err := snd.Send(t.Context(), &emailconn.Message{Subject: "next", Text: "x", To: []string{"a@example.com"}}); err != nil {
			t.Fatalf("next Send = %v", err)
		}
		if n := mp.total(t); n != 1 || px.sessions() != 1 {
			t.Errorf("messages %d, sessions %d; want 1, 1 (the refused MAIL's replies were drained)", n, px.sessions())
		}
	})
}
