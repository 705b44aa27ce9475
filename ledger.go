package emailconn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/memstore"
	"github.com/emailconn/emailconn/internal/throttle"
)

// The delivery ledger (issue 16) makes a send with a Message.IdempotencyKey
// happen at most once however often the engine asks: one record per key,
// under "delivery/" + the SHA-256 of the key, in Options.Store (or, with
// none, in a store of the process that the Senders of one Registry share).
//
// A "sending" record is valid for the lease of Options.Store's leases (30
// seconds; a test seam shortens it) after its last write; its owner
// renews it every third of that while the send lasts.
//
// The common path — a key never sent before, accepted by the server —
// costs two store calls: Swap(version 0) writes the record "sending"
// before the first attempt, and Swap(version 1) writes "accepted" (with the
// Receipt) after the server's reply and before Send returns. Everything
// else (a replay, a wait, a takeover) starts with a Load.

const (
	// ledgerPrefix is the store key prefix of the ledger's records.
	ledgerPrefix = "delivery/"
	// defaultRetention is how long a record is kept when
	// Options.DeliveryRetention is zero.
	defaultRetention = 72 * time.Hour
	// maxKeyBytes bounds an IdempotencyKey.
	maxKeyBytes = 512
	// ledgerWriteTimeout bounds the write after a send, which runs even
	// when the caller's context has ended.
	ledgerWriteTimeout = 10 * time.Second
	// pollMin and pollMax bound the interval at which a send waiting for
	// another send of the same key reads the record again.
	pollMin = 50 * time.Millisecond
	pollMax = time.Second
)

// The states of a ledger record.
const (
	stateSending  = "sending"
	stateAccepted = "accepted"
	stateUnknown  = "unknown"
	stateRefused  = "refused"
	stateFree     = "free" // nothing was delivered: the key may be sent again
)

// A Delivery is the delivery ledger's record of a send with a
// Message.IdempotencyKey. An error matching ErrDeliveryUnknown that Send
// returns for a message with a key holds one: get it with errors.As.
//
//	var d *emailconn.Delivery
//	if errors.Is(err, emailconn.ErrDeliveryUnknown) && errors.As(err, &d) {
//		// d.MessageID, d.Node, d.Started: which send, where, when
//	}
//
// Its times are read from the clock of the node that wrote them. A
// Delivery is a copy: changing it changes nothing in the ledger.
type Delivery struct {
	// State is "accepted" (the server accepted the message; Receipt says
	// what it replied), "unknown" (the connection failed after the whole
	// message was sent and before the server replied, or the node sending
	// it stopped renewing its lease: it may have crashed after the server
	// accepted the message; or a message whose recipients were split into
	// transactions was delivered by some and not the others), "refused"
	// (the server refused the message permanently) or "sending" (a node
	// is sending it now).
	State string
	// MessageID is the message's Message-ID, without angle brackets.
	MessageID string
	// Connection is the name of the connection the message was sent
	// through, or "" for an unnamed one.
	Connection string
	// Node is the host name and process id of the node that sent it.
	Node string
	// Started is when that send began.
	Started time.Time
	// Updated is when the record was last written.
	Updated time.Time
	// Receipt is what the server replied, for State "accepted"; for
	// "unknown" it is what earlier transactions of a message whose
	// recipients were split delivered, when there were any. Nil otherwise.
	Receipt *Receipt
	// Detail says what happened, for "unknown" and "refused": the error
	// of the send that wrote the record.
	Detail string
}

// Error describes the record, for example "emailconn: delivery of
// message 3f…@example.com: unknown since 2026-12-02T10:00:00Z (node
// worker-1/4242)".
func (d *Delivery) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "emailconn: delivery of message %s: %s since %s", d.MessageID, d.State, d.Updated.UTC().Format(time.RFC3339))
	if d.Node != "" {
		fmt.Fprintf(&b, " (node %s)", d.Node)
	}
	return b.String()
}

// localStore is the ledger's store when Options.Store is nil, made on
// first use and shared by the Senders of one Registry.
type localStore struct {
	once sync.Once
	st   Store
}

// newLocalStore makes the in-process store of the ledger, on the clock
// now.
func newLocalStore(now func() time.Time) Store { return memstore.New(now) }

// get returns the store, made on the clock now at the first call.
func (l *localStore) get(now func() time.Time) Store {
	l.once.Do(func() { l.st = newLocalStore(now) })
	return l.st
}

// ledgerStore is the store the Sender's ledger lives in.
func (s *Sender) ledgerStore() Store {
	if s.opts.Store != nil {
		return s.opts.Store
	}
	return s.opts.local.get(s.clock().Now)
}

func (s *Sender) clock() throttle.Clock {
	if s.opts.clock != nil {
		return s.opts.clock
	}
	return throttle.System
}

func (o *Options) retention() time.Duration {
	if o.DeliveryRetention <= 0 {
		return defaultRetention
	}
	return o.DeliveryRetention
}

// checkKey reports the problems of an IdempotencyKey.
func checkKey(p *problems, key string) {
	switch {
	case len(key) > maxKeyBytes:
		p.add("IdempotencyKey", "is %d bytes long; at most %d are allowed", len(key), maxKeyBytes)
	case !utf8.ValidString(key):
		p.add("IdempotencyKey", "is not valid UTF-8")
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		p.add("IdempotencyKey", "contains a control character")
	}
}

// ledgerKey is the store key of an IdempotencyKey's record.
func ledgerKey(key string) string {
	h := sha256.Sum256([]byte("emailconn delivery v1\x00" + key))
	return ledgerPrefix + hex.EncodeToString(h[:])
}

// keyedMessageID is the Message-ID derived from an IdempotencyKey and the
// sender's address: 32 hex digits of SHA-256("emailconn message-id v1",
// NUL, key) at the sender's domain (emailconn.invalid when the address has
// none that may be used). It is a compatibility promise: the same key and
// domain give the same Message-ID in every process and every release.
func keyedMessageID(key, from string) string {
	h := sha256.Sum256([]byte("emailconn message-id v1\x00" + key))
	return hex.EncodeToString(h[:16]) + "@" + idDomain(from)
}

// idDomain is the domain of a Message-ID in the sender's domain.
func idDomain(from string) string {
	if at := strings.LastIndexByte(from, '@'); at >= 0 && at < len(from)-1 {
		if d := from[at+1:]; compose.ValidateEnvelope("x@"+d, false) == nil && !strings.HasPrefix(d, "[") {
			return d
		}
	}
	return "emailconn.invalid"
}

// nodeName is this process as a ledger record names it: host/pid.
var nodeName = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	if len(h) > 64 {
		h = h[:64]
	}
	if h == "" {
		h = "unknown-host"
	}
	return h + "/" + strconv.Itoa(os.Getpid())
})

// A ledgerSend is one keyed send's hold on its record: the version it
// wrote last, renewed while the send lasts.
type ledgerSend struct {
	s   *Sender
	st  Store
	key string
	ctx context.Context // the send's context without its cancellation, for the renewals

	mu      sync.Mutex
	rec     ledgerRecord
	version int64
	lost    bool // a renewal found the record changed: another node took it over
	stopped bool
	stop    func() bool
}

// sendKeyed delivers pr, whose message has an IdempotencyKey, at most once
// per key: it claims the key's record, sends, and records the outcome
// before it returns.
func (s *Sender) sendKeyed(ctx context.Context, msg *Message, pr *prepared, start time.Time) (*Receipt, error) {
	st := s.ledgerStore()
	ls, rc, err := s.claim(ctx, st, msg, pr)
	if ls == nil {
		return rc, err
	}
	ls.renewLater()
	// A panic of the caller's code (an attachment reader) stops the
	// renewals and leaves the record "sending": its lease runs out and
	// retries find the delivery unknown.
	defer ls.halt()
	rc, err = s.deliver(ctx, pr, start)
	ls.halt()
	d := ls.finish(rc, err)
	var e *Error
	if d != nil && errors.Is(err, ErrDeliveryUnknown) && errors.As(err, &e) {
		e.ledger = d
	}
	return rc, err
}

// claim writes the key's record "sending" for this send and returns the
// hold on it; or, when the record says the message was already sent, the
// result to return instead (a replay, its refusal, ErrDeliveryUnknown).
// A record another node is sending is waited for, bounded by ctx.
func (s *Sender) claim(ctx context.Context, st Store, msg *Message, pr *prepared) (*ledgerSend, *Receipt, error) {
	clk := s.clock()
	now := clk.Now()
	c := &ledgerClaim{s: s, ctx: ctx, st: st, key: ledgerKey(msg.IdempotencyKey), ret: s.opts.retention(),
		rec: ledgerRecord{V: 1, State: stateSending, MessageID: pr.messageID(), Connection: s.conn.Name,
			Node: nodeName(), Started: now, Updated: now, LeaseMS: s.opts.storeLeaseTTL().Milliseconds()}}
	if ls, err := c.take(0); ls != nil || err != nil {
		return ls, nil, err
	}
	var seenVersion int64 // the "sending" version being watched, and since when
	var seenSince time.Time
	poll := pollMin
	for {
		cur, version, err := c.load()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case version == 0, cur.State == stateFree,
			cur.State == stateUnknown && msg.ResendUnknown:
			ls, err := c.take(version)
			if ls != nil && cur.State == stateUnknown {
				s.logResend(ctx, &cur)
			}
			if ls != nil || err != nil {
				return ls, nil, err
			}
			continue // another send took it first: read it again
		case cur.State != stateSending:
			rc, err := s.settled(ctx, &cur)
			return nil, rc, err
		}
		// Another send holds the record. It is expired when it was not
		// renewed for a lease as this node's clock measures it, or when
		// the writer's clock says so with a lease of tolerance for
		// clocks that differ.
		now := clk.Now()
		if version != seenVersion {
			seenVersion, seenSince = version, now
		}
		lease := time.Duration(cur.LeaseMS) * time.Millisecond
		if now.Sub(seenSince) >= lease || now.After(cur.Updated.Add(2*lease)) {
			if ls, done, err := c.expire(&cur, version, now, msg.ResendUnknown); done {
				return ls, nil, err
			}
			continue
		}
		if err := sleepClock(ctx, clk, poll, s.opts.pollHook); err != nil {
			return nil, nil, s.ctxError(ctx, "", fmt.Errorf("waiting for node %s, which is sending the same message (Message-ID %s)", cur.Node, cur.MessageID))
		}
		poll = min(2*poll, pollMax)
	}
}

// settled is the result of a send whose record says the message was
// already sent: a replay of its receipt, its refusal, or
// ErrDeliveryUnknown.
func (s *Sender) settled(ctx context.Context, cur *ledgerRecord) (*Receipt, error) {
	switch cur.State {
	case stateAccepted:
		return s.replay(ctx, cur)
	case stateRefused:
		return nil, s.refusal(cur)
	case stateUnknown:
		return cur.receipt(), s.unknownRecord(cur)
	}
	return nil, s.ledgerError(ctx, "reading", fmt.Errorf("the record of the message has an unknown state %q", cur.State))
}

// A ledgerClaim is one send's attempt to take its key's record.
type ledgerClaim struct {
	s   *Sender
	ctx context.Context
	st  Store
	key string
	rec ledgerRecord  // the "sending" record it writes
	ret time.Duration // the records' retention
}

// take writes the claim's record over the record's version (0: none) and
// returns the hold on it; nil and no error when another send changed the
// record first.
func (c *ledgerClaim) take(version int64) (*ledgerSend, error) {
	ok, err := c.st.Swap(c.ctx, c.key, version, mustJSON(&c.rec), c.ret)
	if err != nil {
		return nil, c.s.ledgerError(c.ctx, "writing", err)
	}
	if !ok {
		return nil, nil
	}
	return &ledgerSend{s: c.s, st: c.st, key: c.key, ctx: context.WithoutCancel(c.ctx), rec: c.rec, version: version + 1}, nil
}

// load reads the key's record and its version; version 0 means none.
func (c *ledgerClaim) load() (ledgerRecord, int64, error) {
	var cur ledgerRecord
	val, version, err := c.st.Load(c.ctx, c.key)
	if err != nil {
		return cur, 0, c.s.ledgerError(c.ctx, "reading", err)
	}
	if version != 0 {
		if err := json.Unmarshal(val, &cur); err != nil || cur.State == "" {
			return cur, 0, c.s.ledgerError(c.ctx, "reading", fmt.Errorf("the record of the message is not one this library wrote (%d bytes)", len(val)))
		}
	}
	return cur, version, nil
}

// expire ends another send's hold on the record, cur at version, whose
// lease ran out: with resend (Message.ResendUnknown) the claim takes the
// record over, otherwise it marks the delivery unknown and returns
// ErrDeliveryUnknown. done is false when another send changed the record
// first.
func (c *ledgerClaim) expire(cur *ledgerRecord, version int64, now time.Time, resend bool) (ls *ledgerSend, done bool, err error) {
	if resend {
		ls, err := c.take(version)
		if ls != nil {
			c.s.logResend(c.ctx, cur)
		}
		return ls, ls != nil || err != nil, err
	}
	u := *cur
	u.State, u.Updated = stateUnknown, now
	u.Detail = fmt.Sprintf("node %s stopped renewing its lease of the send that began at %s: it may have crashed after the server accepted the message", cur.Node, cur.Started.UTC().Format(time.RFC3339))
	ok, err := c.st.Swap(c.ctx, c.key, version, mustJSON(&u), c.ret)
	switch {
	case err != nil:
		return nil, true, c.s.ledgerError(c.ctx, "writing", err)
	case ok:
		return nil, true, c.s.unknownRecord(&u)
	}
	return nil, false, nil
}

// sleepClock waits d on clk, or until ctx ends. armed, when not nil, is
// called once the timer is set (a test seam).
func sleepClock(ctx context.Context, clk throttle.Clock, d time.Duration, armed func()) error {
	if armed != nil {
		clk = armedClock{clk, armed}
	}
	return sleepOn(ctx, clk, d)
}

// armedClock is a Clock that calls armed once each timer is set.
type armedClock struct {
	throttle.Clock
	armed func()
}

func (c armedClock) AfterFunc(d time.Duration, f func()) func() bool {
	stop := c.Clock.AfterFunc(d, f)
	c.armed()
	return stop
}

// renewLater arms the renewal of the hold's lease.
func (ls *ledgerSend) renewLater() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if !ls.stopped {
		ls.stop = ls.s.clock().AfterFunc(ls.s.opts.storeLeaseTTL()/3, ls.renew)
	}
}

// renew writes the record again, with a new Updated, so that waiting
// sends see its owner alive.
func (ls *ledgerSend) renew() {
	ls.mu.Lock()
	if ls.stopped || ls.lost {
		ls.mu.Unlock()
		return
	}
	ls.rec.Updated = ls.s.clock().Now()
	ctx, cancel := context.WithTimeout(ls.ctx, ls.s.opts.storeLeaseTTL()/3)
	ok, err := ls.st.Swap(ctx, ls.key, ls.version, mustJSON(&ls.rec), ls.s.opts.retention())
	cancel()
	switch {
	case err != nil:
		ls.s.logLedger(ls.ctx, "delivery ledger: renewing the lease failed", ls.rec.MessageID, err)
	case ok:
		ls.version++
	default:
		ls.lost = true
	}
	ls.mu.Unlock()
	ls.renewLater()
}

// halt stops the renewals; none runs once it returns. It may be called
// more than once.
func (ls *ledgerSend) halt() {
	ls.mu.Lock()
	ls.stopped = true
	if ls.stop != nil {
		ls.stop()
	}
	ls.mu.Unlock()
}

// finish records the outcome of the send and returns the record written,
// as a Delivery for the caller: nil when the key is free again.
func (ls *ledgerSend) finish(rc *Receipt, err error) *Delivery {
	s := ls.s
	rec := ls.rec
	rec.Updated, rec.LeaseMS = s.clock().Now(), 0
	ttl := s.opts.retention()
	switch {
	case errors.Is(err, ErrDeliveryUnknown):
		rec.State, rec.Detail, rec.Receipt = stateUnknown, err.Error(), toLedgerReceipt(rc)
	case rc != nil && err != nil && !onlyRefusedRecipients(err):
		// A message whose recipients were split, delivered to the first
		// batches and not the rest: a replay could say only half of it,
		// and a resend would repeat the delivered half.
		rec.State, rec.Receipt = stateUnknown, toLedgerReceipt(rc)
		rec.Detail = "delivered to some of its recipients (see the Receipt); the transaction of the others failed: " + err.Error()
	case rc != nil:
		rec.State, rec.Receipt = stateAccepted, toLedgerReceipt(rc)
	default:
		if ref := refusalOf(err); ref != nil {
			rec.State, rec.Refusal, rec.Detail = stateRefused, ref, err.Error()
		} else {
			// Nothing was delivered: the key is free for the retry.
			rec.State, ttl = stateFree, time.Millisecond
		}
	}
	ctx, cancel := context.WithTimeout(ls.ctx, ledgerWriteTimeout)
	defer cancel()
	val := mustJSON(&rec)
	ok, werr := ls.st.Swap(ctx, ls.key, ls.version, val, ttl)
	if werr == nil && !ok && rec.State != stateFree {
		// The record changed under the send: a waiting send judged its
		// lease expired and wrote "unknown". What this send knows is
		// better than unknown; a send that took it over is left alone.
		var cur ledgerRecord
		v, version, lerr := ls.st.Load(ctx, ls.key)
		werr = lerr
		if lerr == nil && version != 0 && json.Unmarshal(v, &cur) == nil && cur.State == stateUnknown && rec.State != stateUnknown {
			ok, werr = ls.st.Swap(ctx, ls.key, version, val, ttl)
		}
	}
	if werr != nil {
		s.logLedger(ls.ctx, "delivery ledger: recording the outcome failed; a retry of the message will find it unknown once the lease expires", rec.MessageID, werr)
	}
	if rec.State == stateFree {
		return nil
	}
	return rec.delivery()
}

// onlyRefusedRecipients reports whether err, returned with a Receipt, is
// the refusal of some recipients and nothing else.
func onlyRefusedRecipients(err error) bool {
	var e *Error
	var re *RecipientsError
	return errors.As(err, &e) && e.Stage == StageRcpt && errors.As(e.Err, &re)
}

// replay returns what the send that the record is of returned: its
// Receipt, and the refused recipients' error when there were any.
func (s *Sender) replay(ctx context.Context, r *ledgerRecord) (*Receipt, error) {
	rc := r.receipt()
	if rc == nil {
		rc = &Receipt{MessageID: r.MessageID, Replayed: true}
	}
	if l := s.opts.Logger; l != nil {
		l.LogAttrs(ctx, slog.LevelInfo, "email already sent: receipt from the delivery ledger",
			slog.String("connection", s.conn.Name), slog.String("messageID", r.MessageID),
			slog.String("node", r.Node), slog.Time("sent", r.Updated))
	}
	if len(rc.Rejected) > 0 {
		return rc, &Error{Connection: s.conn.Name, Server: rc.Server, Stage: StageRcpt,
			Err: &RecipientsError{Rejected: rc.Rejected, Accepted: len(rc.Accepted)}}
	}
	return rc, nil
}

// refusal returns the error of the refusal the record keeps: the same
// sentinel, stage and reply as the send that wrote it.
func (s *Sender) refusal(r *ledgerRecord) error {
	ref := r.Refusal
	if ref == nil {
		return &Error{Connection: s.conn.Name, kind: ErrRefused,
			Err: fmt.Errorf("the delivery ledger records message %s as refused: %s", r.MessageID, r.Detail)}
	}
	e := &Error{Connection: s.conn.Name, Server: ref.Server, Stage: ref.Stage}
	if ref.Reply != nil {
		e.kind, e.Err = ErrRefused, ref.Reply.smtpError()
		return e
	}
	re := &RecipientsError{Accepted: ref.Accepted}
	for _, x := range ref.Rejected {
		re.Rejected = append(re.Rejected, RecipientError{Address: x.Address, Err: x.smtpError()})
	}
	e.Err = re
	return e
}

// unknownRecord returns ErrDeliveryUnknown for a record whose delivery is
// unknown, with the record.
func (s *Sender) unknownRecord(r *ledgerRecord) error {
	d := r.delivery()
	return &Error{Connection: s.conn.Name, kind: ErrDeliveryUnknown, ledger: d,
		Err: fmt.Errorf("the delivery ledger records message %s as unknown since %s (node %s); it is not sent again unless Message.ResendUnknown is set",
			d.MessageID, d.Updated.UTC().Format(time.RFC3339), d.Node)}
}

// ledgerError reports a store that could not decide, as ErrStore:
// nothing was sent.
func (s *Sender) ledgerError(ctx context.Context, doing string, err error) error {
	return s.storeFailed(ctx, "", "delivery ledger: "+doing+" the record of the message failed, nothing was sent", err)
}

func (s *Sender) logResend(ctx context.Context, r *ledgerRecord) {
	if l := s.opts.Logger; l != nil {
		l.LogAttrs(ctx, slog.LevelWarn, "email sent again although its delivery is unknown (Message.ResendUnknown)",
			slog.String("connection", s.conn.Name), slog.String("messageID", r.MessageID), slog.String("node", r.Node))
	}
}

func (s *Sender) logLedger(ctx context.Context, msg, messageID string, err error) {
	if l := s.opts.Logger; l != nil {
		l.LogAttrs(ctx, slog.LevelWarn, msg, slog.String("connection", s.conn.Name),
			slog.String("messageID", messageID), slog.String("error", err.Error()))
	}
}
