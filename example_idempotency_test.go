package emailconn_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync/atomic"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example is an engine's email activity, retried by the engine as
// Temporal, Camunda or n8n retry a failed activity. Its IdempotencyKey is
// the engine's identity of the notification (workflow and activity, never
// the attempt), so every attempt is the same message: the first fails
// before anything was accepted (the key stays free), the second is
// delivered, and the third — the engine lost the second's result and
// asked again — gets the stored Receipt back without sending a second
// email.
func ExampleMessage_idempotencyKey() {
	var data atomic.Int32
	srv := emailconntest.NewServer(&emailconntest.Options{
		Refuse: func(command, arg string) string {
			if command == "DATA" && data.Add(1) == 1 {
				return "451 4.3.0 Try again later"
			}
			return ""
		},
	})
	defer srv.Close()

	conn := srv.Connection("approvals")
	conn.From = "approvals@example.com"
	// One attempt at a time, as the engine schedules them; no retries of
	// the library's own, so that the engine's show.
	s, err := emailconn.NewSender(conn, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	activity := func(ctx context.Context, workflowID, activityID string) error {
		rc, err := s.Send(ctx, &emailconn.Message{
			To:             []string{"approver@example.com"},
			Subject:        "Approval needed: purchase order 4711",
			Text:           "Please approve purchase order 4711.",
			IdempotencyKey: workflowID + "/" + activityID,
		})
		var d *emailconn.Delivery
		switch {
		case errors.Is(err, emailconn.ErrDeliveryUnknown) && errors.As(err, &d):
			// Sent once, outcome unknown: not sent again. Escalate to a
			// person (who may set ResendUnknown) instead of retrying.
			return fmt.Errorf("do not retry: message %s sent by %s at %s: %w", d.MessageID, d.Node, d.Started, err)
		case err != nil:
			return err // the engine retries a temporary failure
		}
		fmt.Println("accepted, replayed:", rc.Replayed)
		return nil
	}

	for attempt := 1; attempt <= 3; attempt++ {
		if err := activity(context.Background(), "order-4711", "notify-approver"); err != nil {
			var e *emailconn.Error
			fmt.Println("attempt", attempt, "failed, temporary:", errors.As(err, &e) && e.Temporary())
		}
	}
	fmt.Println("messages delivered:", len(srv.Messages()))
	// Output:
	// attempt 1 failed, temporary: true
	// accepted, replayed: false
	// accepted, replayed: true
	// messages delivered: 1
}
