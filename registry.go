package emailconn

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// layer names where an effective value came from.
type layer uint8

const (
	layerNone layer = iota
	layerNode
	layerConnection
	layerGrid
)

func (l layer) String() string {
	switch l {
	case layerNode:
		return "node"
	case layerConnection:
		return "connection"
	case layerGrid:
		return "grid"
	}
	return "none"
}

// A Route is where and how a process's notifications go, as resolved by a
// Registry: through the process's connection (Connection names it) or the
// grid settings (Connection is ""). The sender address and the Email
// Actions Base URL always come from that layer (grid values never apply
// once a connection is specified); the recipients too, unless the activity
// node named its own (NodeRecipients). The zero value is no route: its
// Send fails with ErrNotFound. A Route stays valid and consistent after the
// registry's configuration is replaced: it keeps the configuration it was
// resolved from. Its slices are shared and must not be modified. String
// explains every value's layer in one line.
type Route struct {
	// Process is the process the route was resolved for.
	Process string
	// Connection is the name of the connection used, or "" when the grid
	// settings are used.
	Connection string
	// MailServer is the effective mail server, from the connection or the
	// grid.
	MailServer string
	// From is the effective sender address; "" when the layer names none.
	From string
	// To are the effective recipients: the activity node's when
	// NodeRecipients is set (they win over the connection's and the
	// grid's for that node's notifications), else the layer's.
	To []string
	// NodeRecipients reports that To are the recipients the activity node
	// named in Resolve. Zero means To come from the connection or the
	// grid.
	NodeRecipients bool
	// ActionsBaseURL is the effective Email Actions Base URL; "" when
	// action links are left as they are.
	ActionsBaseURL string

	entry *connEntry
}

// via returns the layer the route goes through.
func (rt Route) via() layer {
	if rt.entry == nil {
		return layerNone
	}
	return rt.entry.via
}

// String explains the route in one line, naming the layer of each value,
// for administrators asking why a process uses what it uses.
func (rt Route) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "process %q: ", rt.Process)
	via := rt.via()
	switch via {
	case layerConnection:
		fmt.Fprintf(&b, "connection %q (%s)", rt.Connection, rt.MailServer)
	case layerGrid:
		fmt.Fprintf(&b, "grid settings (%s)", rt.MailServer)
	default:
		b.WriteString("no route")
	}
	b.WriteString("; from ")
	if rt.From == "" {
		b.WriteString("(none)")
	} else {
		fmt.Fprintf(&b, "%s [%s]", rt.From, via)
	}
	b.WriteString("; to ")
	to := via
	if rt.NodeRecipients {
		to = layerNode
	}
	if len(rt.To) == 0 {
		b.WriteString("(none)")
	} else {
		fmt.Fprintf(&b, "%s [%s]", strings.Join(rt.To, ", "), to)
	}
	if rt.ActionsBaseURL != "" {
		fmt.Fprintf(&b, "; action links %s [%s]", rt.ActionsBaseURL, via)
	}
	return b.String()
}

// Send sends msg along the route: through the route's connection, or the
// grid settings, with the route's sender and recipients where msg names
// none. It is Sender.Send otherwise. A route resolved before the
// configuration was replaced sends with the configuration it was resolved
// from.
func (rt Route) Send(ctx context.Context, msg *Message) (*Receipt, error) {
	s, err := rt.Sender()
	if err != nil {
		return nil, err
	}
	return s.send(ctx, msg, rt.From, rt.To)
}

// Sender returns the Sender of the route's connection (or grid settings).
func (rt Route) Sender() (*Sender, error) {
	if rt.entry == nil {
		return nil, &noRouteError{process: rt.Process}
	}
	return rt.entry.getSender()
}

// A Registry holds an engine's email configuration and resolves which
// connection, sender and recipients each process uses.
//
// A Registry is safe for concurrent use. Resolving takes no lock and does
// not allocate. Replace and Update swap the whole configuration atomically;
// routes resolved before keep the configuration they were resolved from.
// The zero value holds no configuration; NewRegistry returns a Registry
// holding one.
type Registry struct {
	mu     sync.Mutex // serialises writers
	cur    atomic.Pointer[snapshot]
	opts   Options
	closed atomic.Bool  // set by Close; every Sender the registry made reads it
	tokens *tokenClient // the HTTP client of the token requests, when the registry made it
}

// snapshot is one immutable configuration with its precomputed routes.
type snapshot struct {
	cfg       Config
	conns     map[string]*connEntry
	routes    map[string]Route // process → route (Process filled in)
	oauth     map[string]*oauthEntry
	grid      *connEntry
	gridRoute Route // for processes without a connection
	hasGrid   bool
}

// connEntry is one connection of a snapshot, with the Sender made for it
// on first use. An entry whose connection is unchanged by a Replace is
// carried into the new snapshot, so its open sessions stay in use.
type connEntry struct {
	conn      Connection
	via       layer       // layerConnection or layerGrid
	oauth     *oauthEntry // the OAuth2 configuration of an OAuth2 connection
	opts      *Options
	regClosed *atomic.Bool   // the registry's closed flag
	ca        *x509.CertPool // the certificates of its CAFile, read when the configuration was checked

	made    atomic.Pointer[Sender] // the Sender, once made: the lock-free path
	mu      sync.Mutex             // guards the fields below
	sender  *Sender
	err     error
	retired bool // replaced in the registry: its Sender keeps no sessions
}

// getSender returns the entry's Sender, making it on first use. An entry
// of a registry that was closed makes none.
func (e *connEntry) getSender() (*Sender, error) {
	if s := e.made.Load(); s != nil {
		return s, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sender != nil || e.err != nil {
		return e.sender, e.err
	}
	if e.regClosed.Load() {
		return nil, &Error{Connection: e.conn.Name, kind: ErrClosed}
	}
	c := e.conn
	if e.via == layerGrid {
		c.Name = gridName
	}
	e.sender, e.err = newSender(c, *e.opts, e.ca)
	if e.err != nil {
		return nil, e.err
	}
	e.sender.regClosed = e.regClosed
	if e.oauth != nil {
		e.sender.tokens = cacheTokens{e: e.oauth, logger: e.opts.Logger}
	}
	if e.retired {
		e.sender.retire()
	}
	e.made.Store(e.sender)
	return e.sender, nil
}

// retire stops the entry's Sender, made now or later, from keeping
// sessions; routes still holding the entry can send.
func (e *connEntry) retire() {
	e.mu.Lock()
	e.retired = true
	s := e.sender
	e.mu.Unlock()
	if s != nil {
		s.retire()
	}
}

// close closes the entry's Sender and keeps it from making one.
func (e *connEntry) close() {
	e.mu.Lock()
	if e.sender == nil && e.err == nil {
		e.err = &Error{Connection: e.conn.Name, kind: ErrClosed}
	}
	s := e.sender
	e.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// NewRegistry returns a Registry holding cfg, which must be valid (see
// Config.Validate). opts, which may be nil, configures the Senders the
// registry makes for its connections. The Registry keeps its own copy of
// cfg and opts. Close it when done.
func NewRegistry(cfg Config, opts *Options) (*Registry, error) {
	r := &Registry{}
	if opts != nil {
		r.opts = *opts
	}
	if r.opts.Store != nil {
		r.opts.owner = newOwner() // one owner for all the registry's leases
	}
	r.tokens = ownTokenClient(&r.opts)
	r.opts.local = new(localStore) // the ledger of all its Senders, with no Store
	if err := r.Replace(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// Replace validates cfg and, when it is valid, makes it the registry's
// configuration in one atomic step. On error the previous configuration
// stays in place. The Registry keeps its own copy of cfg.
func (r *Registry) Replace(cfg Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replaceLocked(cfg.clone())
}

// Update applies fn to a copy of the current configuration and replaces the
// configuration with the result when fn returns nil and the result is
// valid; otherwise nothing changes and fn's error, or the validation error,
// is returned. Use it to register or remove a single connection, OAuth2
// configuration, process assignment or grid setting.
//
// fn runs without the registry's lock, so it may call any method of the
// registry, Replace, Update and Close included, without deadlocking. When
// the configuration changes while fn runs (another goroutine's Replace or
// Update, or fn itself), fn's result is dropped
// and fn is called again on the new configuration, so no change is lost:
// fn must only change cfg and must be safe to call more than once. After
// maxUpdateAttempts changes in a row — which in practice means fn changes
// the registry itself every time — Update gives up with an error that
// matches ErrInvalid. After Close, Update returns ErrClosed.
func (r *Registry) Update(fn func(cfg *Config) error) error {
	for attempt := 1; ; attempt++ {
		r.mu.Lock()
		closed, s := r.closed.Load(), r.cur.Load()
		r.mu.Unlock()
		if closed {
			return ErrClosed
		}
		var cfg Config
		if s != nil {
			cfg = s.config()
		}
		shown := refreshTokens(&cfg)
		if err := fn(&cfg); err != nil {
			return err
		}
		if s != nil {
			s.asConfigured(&cfg, shown)
		}
		r.mu.Lock()
		if r.cur.Load() == s || r.closed.Load() {
			err := r.replaceLocked(cfg)
			r.mu.Unlock()
			return err
		}
		r.mu.Unlock()
		if attempt == maxUpdateAttempts {
			return &FieldError{Field: "fn", Problem: fmt.Sprintf("the configuration changed while fn ran, %d times in a row: fn must not change the registry itself (call Replace or Update after Update returns)", attempt)}
		}
	}
}

// maxUpdateAttempts bounds how often Update calls fn again because the
// configuration changed meanwhile.
const maxUpdateAttempts = 100

func (r *Registry) replaceLocked(cfg Config) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cas, err := cfg.checkRefs(&r.opts.References)
	if err != nil {
		return err
	}
	prev := r.cur.Load()
	next := newSnapshot(cfg, prev, r, cas)
	r.cur.Store(next)
	retire(prev, next)
	return nil
}

// checkRefs reports every secret reference and CAFile of c that refs does
// not allow or that does not resolve, by its path in the JSON form, and
// returns the CA files' certificates by connection name ("" for the grid).
func (c *Config) checkRefs(refs *References) (map[string]*x509.CertPool, error) {
	var p problems
	cas := map[string]*x509.CertPool{}
	for i := range c.OAuth2Configs {
		sub := problems{prefix: fmt.Sprintf("oauth2Configurations[%d].", i)}
		c.OAuth2Configs[i].checkRefs(&sub, oauth2JSONNames, refs)
		p.merge(&sub)
	}
	for i := range c.Connections {
		sub := problems{prefix: fmt.Sprintf("connections[%d].", i)}
		if ca := c.Connections[i].checkRefs(&sub, jsonNames, refs); ca != nil {
			cas[c.Connections[i].Name] = ca
		}
		p.merge(&sub)
	}
	if c.Grid != nil {
		sub := problems{prefix: "grid."}
		if ca := c.Grid.checkRefs(&sub, jsonNames, refs); ca != nil {
			cas[""] = ca
		}
		p.merge(&sub)
	}
	return cas, p.err()
}

// retire stops the senders of prev's entries that next does not carry
// over from keeping sessions; routes still holding them can send.
func retire(prev, next *snapshot) {
	if prev == nil {
		return
	}
	kept := make(map[*connEntry]bool, len(next.conns)+1)
	for _, e := range next.conns {
		kept[e] = true
	}
	kept[next.grid] = true
	for _, e := range prev.entries() {
		if !kept[e] {
			e.retire()
		}
	}
}

// entries returns every connection entry of the snapshot, grid included.
func (s *snapshot) entries() []*connEntry {
	out := make([]*connEntry, 0, len(s.conns)+1)
	for _, e := range s.conns {
		out = append(out, e)
	}
	if s.grid != nil {
		out = append(out, s.grid)
	}
	return out
}

// Close closes the Senders of every connection; later sends fail with
// ErrClosed and the registry cannot be changed any more. Routes resolved
// before Close fail too, including routes of configurations replaced
// before: after Close nothing sends and nothing dials. Sends in progress
// finish; their sessions are closed when they do. When Options.HTTPClient
// is nil, the registry made the HTTP client of its OAuth2 token requests
// itself: Close closes its idle connections, and later token requests fail
// with ErrClosed. A caller's Options.HTTPClient is left alone.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed.Store(true)
	defer r.tokens.close() // after the senders: none asks for a token any more
	if s := r.cur.Load(); s != nil {
		for _, e := range s.entries() {
			e.close()
		}
	}
	return nil
}

// String describes the registry by the names it holds, with no secret.
// Format and LogValue print the same for every verb and handler.
func (r *Registry) String() string {
	if r == nil {
		return "emailconn.Registry(nil)"
	}
	s := r.cur.Load()
	if s == nil {
		return "emailconn.Registry{}"
	}
	var b strings.Builder
	b.WriteString("emailconn.Registry{connections: ")
	b.WriteString(strconv.Quote(strings.Join(slices.Sorted(maps.Keys(s.conns)), ", ")))
	if len(s.oauth) > 0 {
		b.WriteString(", oauth2Configurations: ")
		b.WriteString(strconv.Quote(strings.Join(slices.Sorted(maps.Keys(s.oauth)), ", ")))
	}
	if s.grid != nil {
		b.WriteString(", grid: " + strconv.Quote(s.grid.conn.MailServer))
	}
	if r.closed.Load() {
		b.WriteString(", closed")
	}
	b.WriteByte('}')
	return b.String()
}

// Format writes String for every verb.
func (r *Registry) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, r.String()) }

// LogValue returns String as a slog value.
func (r *Registry) LogValue() slog.Value { return slog.StringValue(r.String()) }

// Format writes String for every verb, so that no verb prints the route's
// internals.
func (rt Route) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, rt.String()) }

// Sender returns the Sender of the named connection, or of the grid
// settings when name is "". Senders are made on first use and shared:
// do not close them; close the Registry. An unknown name fails with
// ErrNotFound, and so does "" without grid settings.
func (r *Registry) Sender(name string) (*Sender, error) {
	s := r.cur.Load()
	if s == nil {
		if name != "" {
			return nil, &notFoundError{kind: "connection", name: name}
		}
		return nil, &noRouteError{noGrid: true}
	}
	e := s.grid
	if name != "" {
		e = s.conns[name]
	}
	if e == nil {
		if name == "" {
			return nil, &noRouteError{noGrid: true}
		}
		return nil, &notFoundError{kind: "connection", name: name, known: slices.Collect(maps.Keys(s.conns))}
	}
	return e.getSender()
}

// Config returns a copy of the current configuration (empty when there is
// none). A literal RefreshToken is the one in use: after the token
// endpoint rotated it, the new one, so that Config.Save writes a token
// that still works.
func (r *Registry) Config() Config {
	if s := r.cur.Load(); s != nil {
		return s.config()
	}
	return Config{}
}

// config returns a copy of the snapshot's configuration with each literal
// refresh token as its token cache, the one owner of the current refresh
// token, holds it now.
func (s *snapshot) config() Config {
	cfg := s.cfg.clone()
	for i := range cfg.OAuth2Configs {
		if e := s.oauth[cfg.OAuth2Configs[i].Name]; e != nil {
			cfg.OAuth2Configs[i].RefreshToken = e.refreshToken()
		}
	}
	return cfg
}

// refreshTokens returns the refresh token of each OAuth2 configuration of
// cfg, by name.
func refreshTokens(cfg *Config) map[string]Secret {
	m := make(map[string]Secret, len(cfg.OAuth2Configs))
	for _, o := range cfg.OAuth2Configs {
		m[o.Name] = o.RefreshToken
	}
	return m
}

// asConfigured puts back the configured refresh token of every OAuth2
// configuration of cfg whose refresh token is still the one shown (by
// config, before Update's fn ran): the token cache may have rotated it
// again since, and the configuration is not changed by that.
func (s *snapshot) asConfigured(cfg *Config, shown map[string]Secret) {
	for i := range cfg.OAuth2Configs {
		o := &cfg.OAuth2Configs[i]
		if e := s.oauth[o.Name]; e != nil && o.RefreshToken == shown[o.Name] {
			o.RefreshToken = e.cfg.RefreshToken
		}
	}
}

// newSnapshot builds the snapshot of cfg, carrying over prev's entries
// whose connection did not change.
func newSnapshot(cfg Config, prev *snapshot, r *Registry, cas map[string]*x509.CertPool) *snapshot {
	opts := &r.opts
	s := &snapshot{
		cfg:    cfg,
		conns:  make(map[string]*connEntry, len(cfg.Connections)),
		routes: make(map[string]Route, len(cfg.Processes)),
		oauth:  make(map[string]*oauthEntry, len(cfg.OAuth2Configs)),
	}
	for i := range cfg.OAuth2Configs {
		o := &cfg.OAuth2Configs[i]
		if prev != nil {
			if old := prev.oauth[o.Name]; old != nil && old.keeps(o) {
				// The snapshot holds the configuration as configured; the
				// cache, kept, holds the current refresh token.
				o.RefreshToken = old.cfg.RefreshToken
				s.oauth[o.Name] = old
				continue
			}
		}
		s.oauth[o.Name] = newOAuthEntry(*o, opts, nil)
	}
	entry := func(c Connection, via layer, old *connEntry) *connEntry {
		var oe *oauthEntry
		if c.authType() == authOAuth2 {
			oe = s.oauth[c.OAuth2Config]
		}
		if old != nil && old.via == via && old.oauth == oe && sameConnection(&old.conn, &c) {
			return old
		}
		name := c.Name
		if via == layerGrid {
			name = ""
		}
		return &connEntry{conn: c, via: via, oauth: oe, opts: opts, regClosed: &r.closed, ca: cas[name]}
	}
	for i := range cfg.Connections {
		c := cfg.Connections[i]
		var old *connEntry
		if prev != nil {
			old = prev.conns[c.Name]
		}
		s.conns[c.Name] = entry(c, layerConnection, old)
	}
	if cfg.Grid != nil {
		var old *connEntry
		if prev != nil {
			old = prev.grid
		}
		s.hasGrid = true
		s.grid = entry(*cfg.Grid, layerGrid, old)
		s.gridRoute = routeFor(s.grid)
	}
	for proc, name := range cfg.Processes {
		rt := routeFor(s.conns[name])
		rt.Process = proc
		s.routes[proc] = rt
	}
	return s
}

// sameConnection reports whether two connections are equal in every field.
// RootCAs are compared by their certificates (reflect.DeepEqual would call
// two equal pools different).
func sameConnection(a, b *Connection) bool {
	x, y := *a, *b
	x.RootCAs, y.RootCAs = nil, nil
	return reflect.DeepEqual(x, y) && a.RootCAs.Equal(b.RootCAs)
}

// routeFor precomputes the route through one connection or the grid.
func routeFor(e *connEntry) Route {
	rt := Route{MailServer: e.conn.MailServer, entry: e}
	if e.via == layerConnection {
		rt.Connection = e.conn.Name
	}
	rt.From, rt.ActionsBaseURL = e.conn.From, e.conn.ActionsBaseURL
	rt.To = e.conn.To
	return rt
}

// Resolve returns the route of a process's notifications. A process
// assigned a connection uses that connection, and the grid's addresses do
// not apply; any other process uses the grid settings. When
// nodeRecipients is not empty — an activity node that names its own
// recipients — they are the recipients, whatever the layers say.
//
// Resolve takes no lock and does not allocate (the route shares the node's
// slice: pass recipients the engine already holds as nodeRecipients...;
// literal arguments make the caller allocate a slice). It fails with
// ErrNotFound when the process has no connection and there are no grid
// settings.
func (r *Registry) Resolve(process string, nodeRecipients ...string) (Route, error) {
	s := r.cur.Load()
	if s == nil {
		return Route{}, &noRouteError{process: process, empty: true}
	}
	rt, ok := s.routes[process]
	if !ok {
		if !s.hasGrid {
			return Route{}, &noRouteError{process: process}
		}
		rt = s.gridRoute
		rt.Process = process
	}
	if len(nodeRecipients) > 0 {
		rt.To, rt.NodeRecipients = nodeRecipients, true
	}
	return rt, nil
}

type noRouteError struct {
	process string
	empty   bool
	noGrid  bool // the grid settings were asked for, not a process's route
}

func (e *noRouteError) Error() string {
	if e.noGrid {
		return "emailconn: no route: there are no grid settings"
	}
	if e.empty {
		return fmt.Sprintf("emailconn: process %q: no route: the registry holds no configuration", e.process)
	}
	return fmt.Sprintf("emailconn: process %q: no route: it is assigned no connection and there are no grid settings", e.process)
}

// Is reports whether target is ErrNotFound: the route was not found.
func (e *noRouteError) Is(target error) bool { return target == ErrNotFound }

// notFoundError reports a name a Registry does not hold.
type notFoundError struct {
	kind  string // "connection" or "OAuth2 configuration"
	name  string
	known []string
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("emailconn: %s %q does not exist%s", e.kind, e.name, suggest(e.name, e.known))
}

func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }
