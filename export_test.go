package emailconn

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The seams below are compiled into the test binary only (the standard
// export_test.go pattern): the black-box tests of package emailconn_test
// reach the unexported hooks through them and nothing else.

// WithDial sets o's dialer, which replaces the guarded dialer (and
// Options.DialContext) outright, and returns o.
func WithDial(o *Options, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Options {
	o.dial = dial
	return o
}

// WithLookup sets o's resolver for the guarded dialer and returns o.
func WithLookup(o *Options, lookup func(ctx context.Context, host string) ([]netip.Addr, error)) *Options {
	o.lookup = lookup
	return o
}

// ErrReplyTooLarge is the cause of a server reply over the size limit.
var ErrReplyTooLarge = errReplyTooLarge

// MaxConfigBytes is the size limit of a configuration document.
const MaxConfigBytes = maxConfigBytes

// JSONQuote quotes s as a JSON string.
var JSONQuote = jsonQuote

// LadderLen is the number of stages of a Test Connection report.
func LadderLen() int { return len(ladder) }

// SetDefaultTestTimeout sets the bound of a Test Connection run without
// timeouts until t ends. The variable is package-wide: t must not be
// parallel.
func SetDefaultTestTimeout(t testing.TB, d time.Duration) {
	old := defaultTestTimeout
	defaultTestTimeout = d
	t.Cleanup(func() { defaultTestTimeout = old })
}

// SetTokenClock sets the token caches' clock until t ends. The variable
// is package-wide: t must not be parallel.
func SetTokenClock(t testing.TB, now func() time.Time) {
	tokenClock = now
	t.Cleanup(func() { tokenClock = nil })
}

// SetTokenRequestTimeout sets the bound of one token request until t
// ends. The variable is package-wide: t must not be parallel.
func SetTokenRequestTimeout(t testing.TB, d time.Duration) {
	old := tokenRequestTimeout
	tokenRequestTimeout = d
	t.Cleanup(func() { tokenRequestTimeout = old })
}

// SnapshotOf returns the registry's current snapshot, to compare by
// identity.
func SnapshotOf(r *Registry) any { return r.cur.Load() }

// TokenCacheOf returns the registry's token cache of the named OAuth2
// configuration, to compare by identity.
func TokenCacheOf(r *Registry, name string) any { return r.cur.Load().oauth[name] }

// RouteEntry returns the connection entry a route sends through, to
// compare by identity.
func RouteEntry(rt Route) any { return rt.entry }

// SameConnection reports whether a Replace may keep x's sessions for y.
var SameConnection = sameConnection

// Layer is the configuration layer a route's connection or addresses come
// from.
type Layer = layer

// The layers.
const (
	LayerNone       = layerNone
	LayerNode       = layerNode
	LayerConnection = layerConnection
	LayerGrid       = layerGrid
)

// RouteVia returns the layer of the route's connection.
func RouteVia(rt Route) Layer { return rt.via() }
