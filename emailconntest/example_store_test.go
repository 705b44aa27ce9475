package emailconntest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/emailconntest"
)

// This example is two engine nodes sharing one store, as an engine's unit
// test sets them up: each node's Options get the same Store. Here the nodes
// use the store's primitives directly: one lease that only one node holds
// at a time, and a record that only one of two concurrent writers updates.
func ExampleNewStore() {
	store := emailconntest.NewStore()
	nodeA := &emailconn.Options{Store: store} // for emailconn.NewRegistry(cfg, nodeA)
	nodeB := &emailconn.Options{Store: store} // for emailconn.NewRegistry(cfg, nodeB)
	ctx := context.Background()

	// A lease with one slot: node A takes it, node B has to wait.
	slot, _, err := nodeA.Store.Acquire(ctx, "example/refresh", 1, "node-a", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node A holds slot", slot)
	slot, wait, err := nodeB.Store.Acquire(ctx, "example/refresh", 1, "node-b", time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node B gets slot", slot, "and waits at most", wait.Round(time.Minute))

	// A record: both nodes read version 0; only the first swap wins.
	_, version, _ := nodeA.Store.Load(ctx, "example/token")
	okA, _ := nodeA.Store.Swap(ctx, "example/token", version, []byte("token from A"), time.Hour)
	okB, _ := nodeB.Store.Swap(ctx, "example/token", version, []byte("token from B"), time.Hour)
	value, version, _ := nodeB.Store.Load(ctx, "example/token")
	fmt.Printf("A wrote %v, B wrote %v; node B reads %q, version %d\n", okA, okB, value, version)
	// Output:
	// node A holds slot 0
	// node B gets slot -1 and waits at most 1m0s
	// A wrote true, B wrote false; node B reads "token from A", version 1
}
