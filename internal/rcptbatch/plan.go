// Package rcptbatch plans the transactions of one message whose
// recipients do not all fit in one (issue 14): at most a configured number
// per transaction, and the recipients a server defers with "452 4.5.3 too
// many recipients" (RFC 5321 §4.5.3.1.10) first in the next one — while
// never putting a recipient whose transaction the server accepted, or
// whose outcome is unknown, into another transaction.
//
// The sender drives a Plan: Next gives a transaction's recipients; for each
// RCPT reply it calls Accept, Refuse, Retry or Defer; for the end of the
// transaction Commit (250 after "."), Abort (a refusal of DATA or after
// ".") or Lost (no reply after "."). All transactions carry the same
// message bytes, hence the same Message-ID; one Receipt reports
// Recipients(Done) as accepted.
package rcptbatch

// State is where one recipient stands.
type State uint8

// The states. Done, Refused and Unknown are final.
const (
	// Pending: not yet in a transaction, or to go in a later one.
	Pending State = iota
	// InFlight: in the current transaction, RCPT not yet answered.
	InFlight
	// Accepted: RCPT accepted in the current transaction, which has not
	// ended yet.
	Accepted
	// Done: its transaction was accepted after "."; delivered.
	Done
	// Refused: refused for good (5xx to RCPT, or its transaction refused
	// for good).
	Refused
	// Deferred: refused transiently at RCPT (4xx other than a recipient
	// limit); not retried within this message unless Requeue is called.
	Deferred
	// Unknown: the connection failed after "." before the reply; it may
	// have been delivered, so it is never sent again.
	Unknown
)

var stateNames = [...]string{"pending", "in-flight", "accepted", "done", "refused", "deferred", "unknown"}

// String returns the state's name.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state?"
}

// Plan is the transaction plan of one message. The zero value has no
// recipients. A Plan is not safe for concurrent use: one Send drives it.
type Plan struct {
	max   int
	rcpts []string
	state []State
	queue []int // pending recipients in the order they go out
	cur   []int // the current transaction's recipients
	txs   int
}

// New returns a Plan for rcpts, at most max per transaction (max ≤ 0 means
// all in one). Exact duplicates are dropped; the order is kept.
func New(rcpts []string, max int) *Plan {
	p := &Plan{max: max}
	seen := make(map[string]bool, len(rcpts))
	for _, r := range rcpts {
		if seen[r] {
			continue
		}
		seen[r] = true
		p.queue = append(p.queue, len(p.rcpts))
		p.rcpts = append(p.rcpts, r)
		p.state = append(p.state, Pending)
	}
	return p
}

// Next starts the next transaction: it returns up to max
// pending recipients, those deferred by a recipient limit first. It
// returns nil when none is pending, or while a transaction is open (one
// that has not been committed, aborted or lost).
func (p *Plan) Next() []string {
	if p.cur != nil || len(p.queue) == 0 {
		return nil
	}
	n := len(p.queue)
	if p.max > 0 && n > p.max {
		n = p.max
	}
	p.cur = append([]int(nil), p.queue[:n]...)
	p.queue = append([]int(nil), p.queue[n:]...)
	out := make([]string, n)
	for k, i := range p.cur {
		p.state[i] = InFlight
		out[k] = p.rcpts[i]
	}
	p.txs++
	return out
}

// inFlight returns the recipient index of the current transaction's k-th
// recipient, if it is in flight.
func (p *Plan) inFlight(k int) (int, bool) {
	if k < 0 || k >= len(p.cur) || p.state[p.cur[k]] != InFlight {
		return 0, false
	}
	return p.cur[k], true
}

// Accept records that the server accepted RCPT for the k-th recipient of
// the current transaction. Calls for a recipient not in flight do nothing.
func (p *Plan) Accept(k int) {
	if i, ok := p.inFlight(k); ok {
		p.state[i] = Accepted
	}
}

// Refuse records a permanent refusal of RCPT for the k-th recipient.
func (p *Plan) Refuse(k int) {
	if i, ok := p.inFlight(k); ok {
		p.state[i] = Refused
	}
}

// Retry records a transient refusal of RCPT (not a recipient limit) for
// the k-th recipient: it is set aside as Deferred.
func (p *Plan) Retry(k int) {
	if i, ok := p.inFlight(k); ok {
		p.state[i] = Deferred
	}
}

// Defer records that the server limits recipients per transaction: the
// given recipients of the current transaction (the one refused with the
// limit and those whose RCPT was not sent) go first into the next
// transaction, in their order. It reports whether the current transaction
// has an accepted recipient; when it has none, the refusal was not a
// recipient limit and the caller treats it as a transient failure.
func (p *Plan) Defer(ks ...int) (progress bool) {
	var back []int
	for _, k := range ks {
		if i, ok := p.inFlight(k); ok {
			p.state[i] = Pending
			back = append(back, i)
		}
	}
	p.queue = append(back, p.queue...)
	return p.progress()
}

func (p *Plan) progress() bool {
	for _, i := range p.cur {
		if p.state[i] == Accepted {
			return true
		}
	}
	return false
}

// Commit ends the current transaction as accepted after ".": its accepted
// recipients are Done. Recipients still in flight (a caller that skipped
// their RCPT) go back to Pending.
func (p *Plan) Commit() { p.end(Done) }

// Abort ends the current transaction as refused (DATA or "." got a 4xx or
// 5xx): its accepted recipients were not delivered and go back to Pending
// when retry is true, else they are Refused.
func (p *Plan) Abort(retry bool) {
	if retry {
		p.end(Pending)
	} else {
		p.end(Refused)
	}
}

// Lost ends the current transaction whose outcome is unknown (the
// connection failed after the data was sent): its accepted recipients are
// Unknown and never sent again.
func (p *Plan) Lost() { p.end(Unknown) }

func (p *Plan) end(accepted State) {
	if p.cur == nil {
		return
	}
	var back []int
	for _, i := range p.cur {
		switch p.state[i] {
		case Accepted:
			p.state[i] = accepted
			if accepted == Pending {
				back = append(back, i)
			}
		case InFlight:
			p.state[i] = Pending
			back = append(back, i)
		}
	}
	p.queue = append(back, p.queue...)
	p.cur = nil
}

// Requeue puts the Deferred recipients back to Pending, last in line, for
// a caller that retries transient refusals within the same message. It
// returns how many it requeued.
func (p *Plan) Requeue() int {
	n := 0
	for i, s := range p.state {
		if s == Deferred {
			p.state[i] = Pending
			p.queue = append(p.queue, i)
			n++
		}
	}
	return n
}

// Recipients returns the recipients in state s, in their original order.
func (p *Plan) Recipients(s State) []string {
	var out []string
	for i, st := range p.state {
		if st == s {
			out = append(out, p.rcpts[i])
		}
	}
	return out
}

// Transactions returns how many transactions Next has started.
func (p *Plan) Transactions() int { return p.txs }

// Open reports whether a transaction is open.
func (p *Plan) Open() bool { return p.cur != nil }
