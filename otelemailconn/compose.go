package otelemailconn

import (
	"context"
	"time"

	"github.com/emailconn/emailconn"
)

// compose returns a Trace that calls a's hooks and then b's; a when b is
// nil.
func compose(a, b *emailconn.Trace) *emailconn.Trace {
	if b == nil {
		return a
	}
	t := *a
	if b.SendStart != nil {
		t.SendStart = func(ctx context.Context, connection, server string) context.Context {
			if c := a.SendStart(ctx, connection, server); c != nil {
				ctx = c
			}
			if c := b.SendStart(ctx, connection, server); c != nil {
				ctx = c
			}
			return ctx
		}
	}
	if f := b.SendDone; f != nil {
		t.SendDone = func(ctx context.Context, connection string, attempts int, took time.Duration, err error) {
			a.SendDone(ctx, connection, attempts, took, err)
			f(ctx, connection, attempts, took, err)
		}
	}
	if f := b.Retrying; f != nil {
		t.Retrying = func(ctx context.Context, connection string, attempt int, wait time.Duration, err error) {
			a.Retrying(ctx, connection, attempt, wait, err)
			f(ctx, connection, attempt, wait, err)
		}
	}
	if f := b.LimitWaited; f != nil {
		t.LimitWaited = func(ctx context.Context, connection, limit string, waited time.Duration) {
			a.LimitWaited(ctx, connection, limit, waited)
			f(ctx, connection, limit, waited)
		}
	}
	if f := b.SessionsChanged; f != nil {
		t.SessionsChanged = func(ctx context.Context, connection string, delta int) {
			a.SessionsChanged(ctx, connection, delta)
			f(ctx, connection, delta)
		}
	}
	t.StageDone = both(a.StageDone, b.StageDone)
	t.TransactionDone = both(a.TransactionDone, b.TransactionDone)
	t.TokenFetched = both(a.TokenFetched, b.TokenFetched)
	t.TokenRefreshed = both(a.TokenRefreshed, b.TokenRefreshed)
	// The hooks this package leaves nil are b's alone.
	t.Connected, t.Greeting, t.Capabilities, t.Authenticated = b.Connected, b.Greeting, b.Capabilities, b.Authenticated
	t.TLSHandshakeDone = b.TLSHandshakeDone
	return &t
}

// both returns a hook that calls f and then g; f when g is nil. f is one
// of this package's hooks, never nil.
func both[T any](f, g func(context.Context, T)) func(context.Context, T) {
	if g == nil {
		return f
	}
	return func(ctx context.Context, v T) {
		f(ctx, v)
		g(ctx, v)
	}
}
