package emailconn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/compose"
	"github.com/emailconn/emailconn/internal/rcptbatch"
	"github.com/emailconn/emailconn/internal/replyclass"
	"github.com/emailconn/emailconn/internal/session"
	"github.com/emailconn/emailconn/internal/throttle"
)

// txResult is an attempt's result plus whether the session may be kept.
type txResult struct {
	attemptResult
	keep bool // the session is in a known, idle state despite the error
}

// A tx is one mail transaction on a session, run as its steps: MAIL, RCPT,
// DATA, and the outcome. The message is passed to each step rather than
// kept here, so that escape analysis can leave it on the caller's stack.
type tx struct {
	s        *Sender
	ctx      context.Context
	sess     *pconn
	accepted []string
	rejected []RecipientError
}

// transact runs one mail transaction. stale reports a reused session that
// failed before MAIL was accepted, which a new session may fix.
func (s *Sender) transact(ctx context.Context, sess *pconn, pr *prepared) (res txResult, stale bool) {
	t := tx{s: s, ctx: ctx, sess: sess}
	start := time.Now()
	if pr.plan != nil && !pr.plan.Open() {
		pr.batch = pr.plan.Next()
	}
	res, stale = t.run(pr)
	if pr.plan != nil && pr.plan.Open() {
		switch {
		case res.receipt != nil:
			pr.plan.Commit()
		case errors.Is(res.err, ErrDeliveryUnknown):
			pr.plan.Lost()
		default:
			pr.plan.Abort(res.retry || stale)
		}
	}
	if tr := s.opts.Trace; tr != nil && tr.TransactionDone != nil {
		info := TransactionInfo{Server: sess.Remote, MessageID: pr.messageID(), Accepted: len(t.accepted),
			Rejected: len(t.rejected), Duration: time.Since(start), Err: res.err}
		if res.receipt != nil {
			info.Reply = res.receipt.Reply
		}
		tr.TransactionDone(ctx, info)
	}
	return res, stale
}

func (t *tx) run(pr *prepared) (txResult, bool) {
	if pipe, chunk := t.s.pipelines(t.sess.Session); pipe {
		return t.pipelined(pr, chunk)
	}
	if res, stale, ok := t.mail(pr); !ok {
		return res, stale
	}
	if res, ok := t.rcpts(pr); !ok {
		return res, false
	}
	return t.data(pr), false
}

// fail ends the transaction with err at stage; keep says whether the
// session may be used again.
func (t *tx) fail(stage Stage, err error, keep bool) txResult {
	e := t.s.classify(t.ctx, t.sess.Fail(string(stage), err))
	return txResult{attemptResult: attemptResult{err: e, retry: isRetryable(e)}, keep: keep}
}

// mail resets a session left in a transaction, checks what the server
// announced, and says MAIL FROM.
func (t *tx) mail(pr *prepared) (res txResult, stale, ok bool) {
	opts, r, res, stale, ok := t.begin(pr)
	if !ok {
		return res, stale, false
	}
	t.sess.dirty = true
	if err := t.sess.Client.Mail(pr.envFrom, opts); err != nil {
		if isStale(err) {
			r.Cancel() // a no-op once started: the unused turn stays counted, the safe side
		}
		return t.fail(StageMail, err, session.KeepAfterReply(err)), isStale(err), false
	}
	return txResult{}, false, true
}

// begin readies a transaction: it resets a session left in a transaction,
// checks what the server announced, and waits for the message rate's turn.
func (t *tx) begin(pr *prepared) (opts *smtp.MailOptions, r *throttle.Reservation, res txResult, stale, ok bool) {
	sess := t.sess
	if sess.dirty {
		if err := sess.Client.Reset(); err != nil {
			return nil, nil, t.fail(StageReset, err, false), true, false
		}
		sess.dirty = false
	}
	if pr.utf8 && !sess.Has("SMTPUTF8") {
		return nil, nil, t.fail(StageMail, errNeedsSMTPUTF8, true), false, false
	}
	if limit := maxSize(sess.Session); limit > 0 && pr.size > limit {
		return nil, nil, t.fail(StageMail, &sizeError{size: pr.size, limit: limit}, true), false, false
	}
	opts = &smtp.MailOptions{UTF8: pr.utf8}
	if pr.size > 0 && sess.Has("SIZE") {
		opts.Size = pr.size
	}
	if rate := t.s.lim.rate; rate != nil {
		var err error
		if r, err = t.reserve(rate, pr); err != nil {
			return nil, nil, txResult{attemptResult: attemptResult{err: err, retry: errors.Is(err, ErrStore)}}, false, false
		}
		if r.Waited > time.Second && !sess.Conn.Idle() {
			// The server closed the session while it waited for its turn
			// (SES after 10 s idle): redial. The turn stays counted
			// (reserve started it; Cancel after Start does nothing), which
			// errs on the side of the provider's limit.
			r.Cancel()
			sess.reused = true
			return nil, nil, t.fail(StageMail, io.EOF, false), true, false
		}
	}
	return opts, r, txResult{}, false, true
}

// reserve waits for the message rate's turn and starts it, right before
// MAIL FROM: the rate counts transactions as the server does.
func (t *tx) reserve(rate throttle.Rate, pr *prepared) (*throttle.Reservation, error) {
	for {
		r, err := rate.Reserve(t.ctx)
		if err != nil {
			if errors.Is(err, ErrStore) {
				return nil, err // Options.Store failed
			}
			return nil, t.s.ctxError(t.ctx, StageMail, errors.New("waiting for the message rate"))
		}
		pr.rateWait += r.Waited
		t.s.traceWait(t.ctx, "messagesPerMinute", r.Waited)
		if r.Start() {
			return r, nil
		}
		// The grant is older than the window: its slot may be another
		// start's by now. Reserve again.
	}
}

// rcpts says RCPT TO for every recipient. It goes on unless every
// recipient was refused, or one was and the message requires them all.
func (t *tx) rcpts(pr *prepared) (txResult, bool) {
	rcpts := pr.envelope()
	for k, rcpt := range rcpts {
		err := t.sess.Client.Rcpt(rcpt, nil)
		if err == nil {
			t.accept(pr, k, rcpt)
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code == 421 {
			return t.fail(StageRcpt, err, false), false
		}
		reply := newSMTPError(se)
		if len(t.accepted) > 0 && t.splits(reply) && t.split(pr, tail(k, len(rcpts))) {
			// The server limits recipients per transaction: this one
			// and the rest go into the next transaction of the message.
			break
		}
		t.reject(pr, k, rcpt, reply)
	}
	if !t.refused(pr) {
		return txResult{}, true
	}
	return t.recipientsRefused(pr, t.reset()), false
}

// reset ends the transaction with RSET and reports whether the session is
// idle again.
func (t *tx) reset() bool {
	if t.sess.Client.Reset() != nil {
		return false
	}
	t.sess.dirty = false
	return true
}

// accept records the acceptance of the k-th recipient.
func (t *tx) accept(pr *prepared, k int, rcpt string) {
	t.accepted = append(t.accepted, rcpt)
	if pr.plan != nil {
		pr.plan.Accept(k)
	}
}

// reject records the refusal of the k-th recipient.
func (t *tx) reject(pr *prepared, k int, rcpt string, reply *SMTPError) {
	t.rejected = append(t.rejected, RecipientError{Address: rcpt, Err: reply})
	if pr.plan != nil {
		if rcptTemporary(reply) {
			pr.plan.Retry(k)
		} else {
			pr.plan.Refuse(k)
		}
	}
}

// refused reports whether the recipients' replies end the transaction
// before the message: every recipient was refused, or one was and the
// message requires them all.
func (t *tx) refused(pr *prepared) bool {
	return len(t.rejected) > 0 && (len(t.accepted) == 0 || pr.allOrNot)
}

// recipientsRefused is the result of a transaction that refused
// recipients was ended with.
func (t *tx) recipientsRefused(pr *prepared, keep bool) txResult {
	rerr := &RecipientsError{Rejected: t.rejected}
	if pr.allOrNot {
		rerr.Accepted = len(t.accepted)
	}
	res := t.fail(StageRcpt, rerr, keep)
	res.retry = rerr.Temporary() && len(t.accepted) == 0
	return res
}

// tail returns the indices k … n-1.
func tail(k, n int) []int {
	ks := make([]int, 0, n-k)
	for i := k; i < n; i++ {
		ks = append(ks, i)
	}
	return ks
}

// splits reports whether a refusal of RCPT is a limit on recipients per
// transaction (RFC 5321 §4.5.3.1.10).
func (t *tx) splits(reply *SMTPError) bool {
	d := replyclass.Classify(replyclass.Reply{Code: reply.Code, Enhanced: reply.Enhanced(), Text: reply.Message,
		Stage: replyclass.StageRcpt, Provider: string(t.s.conn.Provider)})
	return d.Action == replyclass.Split
}

// split handles a refusal of a recipient that is a limit on recipients
// per transaction (splits): the recipients ks (the refused one, and those
// after it that were not sent or were refused with the same limit)
// are deferred to the next transaction of the same message, and split
// reports true. A send without a plan gets one here, which records what
// the other recipients' replies were.
func (t *tx) split(pr *prepared, ks []int) bool {
	if pr.plan == nil {
		plan := rcptbatch.New(pr.rcpts, 0)
		batch := plan.Next()
		if len(batch) != len(pr.rcpts) {
			return false // duplicates (SendRaw): the indices would not match; no split
		}
		for i, a := range batch {
			switch {
			case slices.Contains(ks, i):
			case slices.Contains(t.accepted, a):
				plan.Accept(i)
			case t.rejectedTemporarily(a):
				plan.Retry(i)
			case t.wasRejected(a):
				plan.Refuse(i)
			}
		}
		pr.plan, pr.batch = plan, batch
	}
	return pr.plan.Defer(ks...)
}

// wasRejected reports whether rcpt was refused in this transaction.
func (t *tx) wasRejected(rcpt string) bool {
	for _, r := range t.rejected {
		if r.Address == rcpt {
			return true
		}
	}
	return false
}

// rejectedTemporarily reports whether rcpt was refused with a transient
// reply in this transaction.
func (t *tx) rejectedTemporarily(rcpt string) bool {
	for _, r := range t.rejected {
		if r.Address == rcpt {
			return rcptTemporary(r.Err)
		}
	}
	return false
}

// data uploads the message and reads the server's verdict.
func (t *tx) data(pr *prepared) txResult {
	sess := t.sess
	w, err := sess.Client.Data()
	if err != nil {
		return t.fail(StageData, err, session.KeepAfterReply(err))
	}
	var res txResult
	if err := writeMessage(w, pr); err != nil {
		// The terminating dot was not sent: the server cannot accept a
		// partial message. The session is closed.
		res = t.uploadFailed(err)
	} else if resp, err := w.CloseWithResponse(); err != nil {
		res = t.closeFailed(pr, err)
	} else {
		res = t.delivered(pr, resp)
	}
	res.bodyStarted = true
	return res
}

// uploadFailed is the result of a message upload that failed before its
// terminating dot: the failure of the message's reader when the
// connection is still sound. The session is closed.
func (t *tx) uploadFailed(err error) txResult {
	if t.sess.Conn.WriteErr() == nil && t.sess.Conn.Err() == nil {
		err = &readError{err: err}
	}
	return t.fail(StageData, err, false)
}

// closeFailed classifies a failure after the whole message was written.
func (t *tx) closeFailed(pr *prepared, err error) txResult {
	var se *smtp.SMTPError
	switch {
	case errors.As(err, &se):
		// The server refused the message. The session stays usable, but
		// some servers keep the transaction open after such a refusal
		// (RFC 5321 §4.1.1.4 says they must not): RSET before the next.
		return t.fail(StageData, err, session.KeepAfterReply(err))
	case t.sess.Conn.WriteErr() != nil:
		// The final dot did not reach the server.
		return t.fail(StageData, err, false)
	}
	return t.fail(StageData, &unknownError{messageID: pr.messageID(), err: err}, false)
}

// delivered makes the receipt of a message the server accepted.
func (t *tx) delivered(pr *prepared, resp *smtp.DataResponse) txResult {
	sess := t.sess
	sess.dirty = false
	sess.msgs++
	rc := &Receipt{
		MessageID: pr.messageID(), Reply: resp.StatusText, QueueID: queueID(resp.StatusText),
		Accepted: t.accepted, Rejected: t.rejected, Server: sess.Remote,
		TLSVersion: tlsVersion(sess.TLS), Mechanism: sess.Mechanism,
	}
	res := txResult{attemptResult: attemptResult{receipt: rc}, keep: true}
	if len(t.rejected) > 0 {
		res.err = t.s.classify(t.ctx, sess.Fail(string(StageRcpt), &RecipientsError{Rejected: t.rejected, Accepted: len(t.accepted)}))
	}
	return res
}

// writeMessage writes the message through the canonicalising writer.
func writeMessage(w io.Writer, pr *prepared) error {
	cw := compose.NewCanonicalWriter(w)
	var err error
	switch {
	case pr.body != nil:
		_, err = cw.Write(pr.body)
	case pr.msg != nil:
		_, err = pr.msg.WriteTo(cw)
	default:
		_, err = io.Copy(cw, pr.raw)
	}
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}

// queueID finds a queue identifier in a final reply ("queued as X").
func queueID(reply string) string {
	i := strings.Index(strings.ToLower(reply), "queued as ")
	if i < 0 {
		return ""
	}
	id := reply[i+len("queued as "):]
	if j := strings.IndexAny(id, " \t\r\n;,"); j >= 0 {
		id = id[:j]
	}
	return strings.Trim(id, "<>[]()")
}

// maxSize is the SIZE the server announced; zero when none.
func maxSize(sess *session.Session) int64 {
	v, ok := sess.Extension("SIZE")
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// tlsVersion is "TLS 1.2" or "TLS 1.3", or "" without TLS.
func tlsVersion(st *tls.ConnectionState) string {
	if st == nil {
		return ""
	}
	return tls.VersionName(st.Version)
}
