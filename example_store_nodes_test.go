package emailconn_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"sync"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example is two engine nodes sharing one Store: each node's Options
// get the same one, and the connection's MaxSessions then holds for both
// together, as its OAuth2 token and message rate would. In production the
// nodes are processes and the store is NewSQLStore on the engine's
// database (see newNodeOptions); in a unit test, emailconntest.NewStore.
func ExampleOptions_store() {
	srv := emailconntest.NewServer(nil)
	defer srv.Close()
	store := emailconntest.NewStore()

	conn := srv.Connection("alerts")
	conn.From = "engine@example.com"
	conn.MaxSessions = 1 // the mailbox allows one session, whichever node opens it
	var nodes []*emailconn.Sender
	for range 2 {
		s, err := emailconn.NewSender(conn, &emailconn.Options{Store: store})
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		nodes = append(nodes, s)
	}

	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Go(func() {
			msg := &emailconn.Message{To: []string{"ops@example.com"}, Subject: fmt.Sprintf("from node %d", i), Text: "x"}
			if _, err := s.Send(context.Background(), msg); err != nil {
				log.Fatal(err)
			}
		})
	}
	wg.Wait()
	fmt.Println(len(srv.Messages()), "messages, one session at a time")
	// Output:
	// 2 messages, one session at a time
}

// newNodeOptions is what each node of an engine does at start: the
// engine's own *sql.DB (PostgreSQL through pgx's stdlib or lib/pq, shared
// by every node; or SQLite for one machine), given to NewSQLStore, which
// creates its tables when absent. The library imports no driver.
func newNodeOptions(ctx context.Context, db *sql.DB) (*emailconn.Options, error) {
	store, err := emailconn.NewSQLStore(ctx, db)
	if err != nil {
		return nil, err // emailconn: store: …
	}
	return &emailconn.Options{Store: store}, nil
}

var _ = newNodeOptions
