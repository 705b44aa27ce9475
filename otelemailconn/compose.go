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
	if f := b.StageDone; f != nil {
		t.StageDone = func(ctx context.Context, r emailconn.StageResult) {
			a.StageDone(ctx, r)
			f(ctx, r)
		}
	}
	if f := b.TransactionDone; f != nil {
		t.TransactionDone = func(ctx context.Context, i emailconn.TransactionInfo) {
			a.TransactionDone(ctx, i)
			f(ctx, i)
		}
	}
	if f := b.TokenFetched; f != nil {
		t.TokenFetched = func(ctx context.Context, i emailconn.TokenInfo) {
			a.TokenFetched(ctx, i)
			f(ctx, i)
		}
	}
	if f := b.TokenRefreshed; f != nil {
		t.TokenRefreshed = func(ctx context.Context, i emailconn.TokenInfo) {
			a.TokenRefreshed(ctx, i)
			f(ctx, i)
		}
	}
	// The hooks this package leaves nil are b's alone.
	t.Connected, t.Greeting, t.Capabilities, t.Authenticated = b.Connected, b.Greeting, b.Capabilities, b.Authenticated
	t.TLSHandshakeDone = b.TLSHandshakeDone
	return &t
}
