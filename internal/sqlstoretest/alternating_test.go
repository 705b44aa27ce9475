package sqlstoretest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn"
)

// alternating is a Store that sends each call to the next of two stores
// on the same tables, as two nodes would.
type alternating struct {
	stores [2]emailconn.Store
	n      atomic.Uint32
}

func (a *alternating) next() emailconn.Store { return a.stores[a.n.Add(1)%2] }

func (a *alternating) Acquire(ctx context.Context, key string, limit int, owner string, ttl time.Duration) (int, time.Duration, error) {
	return a.next().Acquire(ctx, key, limit, owner, ttl)
}

func (a *alternating) Renew(ctx context.Context, key string, slot int, owner string, ttl time.Duration) (bool, error) {
	return a.next().Renew(ctx, key, slot, owner, ttl)
}

func (a *alternating) Release(ctx context.Context, key string, slot int, owner string) error {
	return a.next().Release(ctx, key, slot, owner)
}

func (a *alternating) Load(ctx context.Context, key string) ([]byte, int64, error) {
	return a.next().Load(ctx, key)
}

func (a *alternating) Swap(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) (bool, error) {
	return a.next().Swap(ctx, key, version, value, ttl)
}
