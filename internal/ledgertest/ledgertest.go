// Package ledgertest is the fault matrix of the delivery ledger (issue 16),
// shared by the root package's tests (one process, the in-memory store)
// and internal/sqlstoretest's (a second process sharing PostgreSQL): the
// connection is cut at one point of the first attempt, and the engine
// retries the activity three times with the same IdempotencyKey.
//
// The promises checked: no message the ledger says was accepted is
// delivered twice; every cut after the whole message was sent (after the
// final dot, or after a pipelined BDAT LAST) comes back, at the first
// attempt and every retry, as ErrDeliveryUnknown with its ledger record
// (and nothing is sent again); a cut before that leaves the key free, so
// that a retry delivers the message exactly once.
package ledgertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/internal/smtptest"
)

// Attempts is the number of attempts of the activity: the first and three
// retries.
const Attempts = 4

// A Cut is where the first attempt's connection is cut.
type Cut struct {
	Name   string
	Faults []smtptest.Fault
	// Big sends a message larger than the socket buffers, so that a cut
	// during the upload reaches the client while it is still writing.
	Big bool
	// Chunking makes the server offer CHUNKING: a small message then goes
	// as BDAT LAST in the same write as MAIL and RCPT, so that a cut
	// anywhere after that write is after the whole message was sent.
	Chunking bool
	// Unknown is a cut after the whole message was sent (after the final
	// dot, or after the write of a pipelined BDAT LAST): its delivery is
	// unknown.
	Unknown bool
}

// Cuts are the points of the matrix. Each fault fires once (the first
// attempt); the retries find a healthy server.
func Cuts() []Cut {
	return []Cut{
		{Name: "before MAIL", Faults: []smtptest.Fault{{At: "MAIL", Action: smtptest.Drop, Times: 1}}},
		{Name: "after RCPT", Faults: []smtptest.Fault{{At: "DATA", Action: smtptest.Drop, Times: 1}}},
		{Name: "during DATA", Big: true, Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Reset, Bytes: 16 << 10, Times: 1}}},
		{Name: "after the final dot before the reply", Unknown: true, Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop, Times: 1}}},
		{Name: "after the reply", Faults: []smtptest.Fault{{At: smtptest.AfterMessage, Action: smtptest.Drop, Times: 1}}},
		// The same with BDAT (issue 17): a small notification is written
		// whole with its envelope, so a cut before any reply is unknown.
		{Name: "BDAT: before MAIL", Chunking: true, Unknown: true, Faults: []smtptest.Fault{{At: "MAIL", Action: smtptest.Drop, Times: 1}}},
		{Name: "BDAT: after RCPT", Chunking: true, Unknown: true, Faults: []smtptest.Fault{{At: "BDAT", Action: smtptest.Drop, Times: 1}}},
		{Name: "BDAT: during the chunks of a large message", Chunking: true, Big: true, Faults: []smtptest.Fault{{At: smtptest.DataBody, Action: smtptest.Reset, Bytes: 16 << 10, Times: 1}}},
		{Name: "BDAT: after LAST before the reply", Chunking: true, Unknown: true, Faults: []smtptest.Fault{{At: smtptest.AfterDot, Action: smtptest.Drop, Times: 1}}},
		{Name: "BDAT: after the reply", Chunking: true, Faults: []smtptest.Fault{{At: smtptest.AfterMessage, Action: smtptest.Drop, Times: 1}}},
	}
}

// Server starts the test server of c.
func Server(t testing.TB, c Cut) *smtptest.Server {
	return smtptest.NewServer(t, smtptest.Options{Faults: c.Faults, ReadBuffer: 16 << 10, EnableCHUNKING: c.Chunking})
}

// An Outcome is what one attempt of the activity got back, in a form a
// second process can print as JSON.
type Outcome struct {
	Pid       int    // the process that made the attempt
	MessageID string // the Receipt's, or the ledger record's
	Replayed  bool
	Accepted  bool // a Receipt without error
	Unknown   bool // errors.Is(err, ErrDeliveryUnknown)
	Temporary bool // a failure the engine retries
	Delivery  *emailconn.Delivery
	Err       string
}

// Send makes one attempt of the activity: a new Sender, as a new worker
// would make, through the server at addr with Options(store), and the
// message of key.
func Send(ctx context.Context, addr string, store emailconn.Store, key string, big bool) Outcome {
	s, err := emailconn.NewSender(Connection(addr), Options(store))
	if err != nil {
		return Outcome{Err: err.Error()}
	}
	defer s.Close()
	return Try(ctx, s, key, big)
}

// Options are the Sender's options of the matrix, with the ledger in store
// (nil: the Sender's own): small socket buffers, and no retries of the
// library's own: the engine's are the matrix's.
func Options(store emailconn.Store) *emailconn.Options {
	return &emailconn.Options{Store: store, DialContext: smallBuffers, Retry: emailconn.RetryPolicy{MaxAttempts: 1}}
}

// Try makes one attempt of the activity through s.
func Try(ctx context.Context, s *emailconn.Sender, key string, big bool) Outcome {
	rc, err := s.Send(ctx, Message(key, big))
	out := Outcome{Pid: os.Getpid()}
	if rc != nil {
		out.MessageID, out.Replayed = rc.MessageID, rc.Replayed
	}
	out.Accepted = rc != nil && err == nil
	if err != nil {
		out.Err = err.Error()
		out.Unknown = errors.Is(err, emailconn.ErrDeliveryUnknown)
		var e *emailconn.Error
		out.Temporary = errors.As(err, &e) && e.Temporary()
		var d *emailconn.Delivery
		if errors.As(err, &d) {
			out.Delivery = d
			out.MessageID = d.MessageID
		}
	}
	return out
}

// Connection is the connection of the matrix to the server at addr.
func Connection(addr string) emailconn.Connection {
	return emailconn.Connection{Name: "ledger", MailServer: addr, From: "engine@example.com",
		ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second}
}

// Message is the notification of key: small, or with a 128 KiB attachment.
func Message(key string, big bool) *emailconn.Message {
	m := &emailconn.Message{To: []string{"approver@example.com"}, Subject: "Approval needed",
		Text: "Please approve the request.", IdempotencyKey: key}
	if big {
		m.Attachments = []emailconn.Attachment{{Filename: "request.bin", Content: bytes.NewReader(bytes.Repeat([]byte("0123456789abcdef"), 1<<13))}}
	}
	return m
}

// smallBuffers dials with a 16 KiB send buffer, so that a cut during the
// upload finds the client still writing.
func smallBuffers(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return conn, nil
}

var messageIDField = regexp.MustCompile(`(?mi)^Message-ID:\s*<([^>\r\n]+)>`)

// Delivered counts the messages srv accepted by Message-ID.
func Delivered(srv *smtptest.Server) map[string]int {
	n := map[string]int{}
	for _, m := range srv.Messages() {
		id := "?"
		if mm := messageIDField.FindSubmatch(m.Data); mm != nil {
			id = string(mm[1])
		}
		n[id]++
	}
	return n
}

// Check reports every broken promise of the matrix for cut c, given the
// outcomes of the attempts in order and what the server delivered.
func Check(t testing.TB, c Cut, outs []Outcome, delivered map[string]int) {
	t.Helper()
	if len(outs) != Attempts {
		t.Fatalf("%d outcomes, want %d", len(outs), Attempts)
	}
	id := ""
	for _, o := range outs {
		if o.MessageID != "" {
			if id != "" && o.MessageID != id {
				t.Errorf("Message-IDs %s and %s for the same key", id, o.MessageID)
			}
			id = o.MessageID
		}
	}
	total := 0
	for _, n := range delivered {
		total += n
	}
	switch {
	case c.Unknown:
		for i, o := range outs {
			switch {
			case !o.Unknown:
				t.Errorf("attempt %d: %s; want ErrDeliveryUnknown", i+1, describe(o))
			case o.Delivery == nil:
				t.Errorf("attempt %d: ErrDeliveryUnknown without its ledger record: %s", i+1, o.Err)
			case o.Delivery.State != "unknown" || o.Delivery.MessageID == "" || o.Delivery.Node == "" || o.Delivery.Started.IsZero():
				t.Errorf("attempt %d: record %+v; want state unknown with Message-ID, node and start", i+1, *o.Delivery)
			}
		}
		if total > 1 {
			t.Errorf("delivered %v: a message of unknown delivery was sent again", delivered)
		}
	default:
		if delivered[id] != 1 || total != 1 {
			t.Errorf("delivered %v; want message %s exactly once", delivered, id)
		}
		first := -1
		for i, o := range outs {
			switch {
			case o.Accepted && first < 0:
				first = i
				if o.Replayed {
					t.Errorf("attempt %d: the first acceptance is marked Replayed", i+1)
				}
			case o.Accepted && !o.Replayed:
				t.Errorf("attempt %d: accepted again without being a replay", i+1)
			case !o.Accepted && first >= 0:
				t.Errorf("attempt %d after the acceptance at %d: %s; want the replayed Receipt", i+1, first+1, describe(o))
			case !o.Accepted && !o.Temporary:
				t.Errorf("attempt %d: %s; a cut before the final dot must be a temporary failure", i+1, describe(o))
			}
		}
		if first < 0 {
			t.Errorf("no attempt was accepted: %v", outs)
		}
	}
}

func describe(o Outcome) string {
	if o.Err == "" {
		return fmt.Sprintf("accepted (replayed %v)", o.Replayed)
	}
	return o.Err
}
