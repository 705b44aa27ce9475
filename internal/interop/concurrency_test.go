package interop

import (
	"fmt"
	"sync"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestConcurrentSends sends 200 messages from 16 goroutines through one
// Sender over STARTTLS with AUTH, and checks through Mailpit's API that
// every message arrived exactly once: 200 stored, their Message-IDs those
// of the 200 receipts, each subject once, and each receipt's QueueID the
// ID Mailpit gave the message.
func TestConcurrentSends(t *testing.T) {
	s := setup(t)
	mp := mailpitOf(instSTARTTLS).reset(t)
	const messages, workers = 200, 16
	snd := newSender(t, s.conn(instSTARTTLS, "starttls"), &emailconn.Options{MaxSessions: 8})

	var mu sync.Mutex
	receipts := make(map[int]*emailconn.Receipt)
	var errs []error
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for n := range jobs {
				rc, err := snd.Send(t.Context(), &emailconn.Message{
					Subject: fmt.Sprintf("concurrent %03d", n),
					Text:    fmt.Sprintf("message %d of %d\n", n, messages),
					Headers: map[string]string{"X-Interop-Seq": fmt.Sprint(n)},
				})
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("message %d: %w", n, err))
				} else {
					receipts[n] = rc
				}
				mu.Unlock()
			}
		})
	}
	for n := range messages {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("Send: %v", err)
	}

	list := mp.list(t)
	if len(list) != messages {
		t.Errorf("Mailpit stored %d messages, want %d", len(list), messages)
	}
	byMsgID := map[string][]summary{}
	bySubject := map[string]int{}
	for _, m := range list {
		byMsgID[m.MessageID] = append(byMsgID[m.MessageID], m)
		bySubject[m.Subject]++
	}
	queueIDs := map[string]int{}
	for n, rc := range receipts {
		stored := byMsgID[rc.MessageID]
		switch {
		case len(stored) == 0:
			t.Errorf("message %d (Message-ID %s) was accepted (%q) but is not in Mailpit", n, rc.MessageID, rc.Reply)
		case len(stored) > 1:
			t.Errorf("message %d (Message-ID %s) is in Mailpit %d times", n, rc.MessageID, len(stored))
		case stored[0].Subject != fmt.Sprintf("concurrent %03d", n):
			t.Errorf("message %d (Message-ID %s) is stored with subject %q", n, rc.MessageID, stored[0].Subject)
		case rc.QueueID != stored[0].ID:
			t.Errorf("message %d: Receipt.QueueID = %q, Mailpit's ID %q", n, rc.QueueID, stored[0].ID)
		}
		if rc.Attempts != 1 {
			t.Errorf("message %d took %d attempts, want 1", n, rc.Attempts)
		}
		queueIDs[rc.QueueID]++
	}
	if len(byMsgID) != len(list) {
		t.Errorf("Mailpit holds %d messages with %d distinct Message-IDs", len(list), len(byMsgID))
	}
	for subject, k := range bySubject {
		if k != 1 {
			t.Errorf("subject %q stored %d times, want once", subject, k)
		}
	}
	for id, k := range queueIDs {
		if k != 1 {
			t.Errorf("QueueID %q in %d receipts, want 1", id, k)
		}
	}
}
