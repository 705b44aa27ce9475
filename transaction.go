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
			r.Cancel() // the server never saw this MAIL
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
			// (SES after 10 s idle): give the turn back and redial.
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
			t.accepted = append(t.accepted, rcpt)
			if pr.plan != nil {
				pr.plan.Accept(k)
			}
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
	keep := t.sess.Client.Reset() == nil
	if keep {
		t.sess.dirty = false
	}
	return t.recipientsRefused(pr, keep), false
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
		if sess.Conn.WriteErr() == nil && sess.Conn.Err() == nil {
			err = &readError{err: err}
		}
		res = t.fail(StageData, err, false)
	} else if resp, err := w.CloseWithResponse(); err != nil {
		res = t.closeFailed(pr, err)
	} else {
		res = t.delivered(pr, resp)
	}
	res.bodyStarted = true
	return res
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

// pipelines reports whether transactions on sess are pipelined (RFC 2920)
// and whether their messages go as BDAT chunks (RFC 3030): when the server
// offers the extension and the connection does not switch it off. BDAT is
// used only in a pipelined transaction, where it saves the round trip of
// DATA's 354.
func (s *Sender) pipelines(sess *session.Session) (pipe, chunk bool) {
	pipe = sess.Has("PIPELINING") && !s.conn.DisablePipelining
	return pipe, pipe && sess.Has("CHUNKING") && !s.conn.DisableChunking
}

// What a pipelined transaction writes after its RCPT commands, in the same
// write.
const (
	flightEnvelope = iota // nothing: the message waits for the replies
	flightDATA            // DATA; the message follows its 354
	flightBDAT            // the whole message, as BDAT n LAST
)

// flightBodyCopy is the largest message copied into the flight's buffer;
// a larger one is written right after it.
const flightBodyCopy = 64 << 10

// pipelined runs a transaction with PIPELINING: MAIL FROM, every RCPT TO
// and then DATA, or the whole message as "BDAT n LAST" (chunk), go out in
// one write, and the replies are read in order (RFC 2920 §3.1). A message
// that requires every recipient, and a streamed message with BDAT, waits
// for the replies before anything of it is sent: the first must not reach
// the accepted recipients when one is refused, the second is not uploaded
// when none is accepted.
//
// The delivery rules are those of the lockstep transaction. A refused MAIL
// makes the other replies ones to drain; recipients are reported one by
// one; a 354 after every recipient was refused is answered by a lone ".";
// a connection that fails once "BDAT n LAST" was written whole is
// ErrDeliveryUnknown, unless no recipient had been accepted.
func (t *tx) pipelined(pr *prepared, chunk bool) (txResult, bool) {
	sess := t.sess
	kind := flightDATA
	switch {
	case pr.allOrNot:
		kind = flightEnvelope
	case chunk && pr.body != nil && canonical(pr.body):
		kind = flightBDAT
	case chunk:
		kind = flightEnvelope
	}
	if kind == flightBDAT && sess.reused && !sess.dirty && !sess.Conn.Idle() {
		// The pooled session was closed by the server (or it said
		// something unasked): with the message in the flight, a failure
		// after the write could not be told from a lost reply. (Checked
		// before the message rate's turn is taken, which the flight
		// follows at once.)
		return t.fail(StageMail, io.EOF, false), true
	}
	opts, r, res, stale, ok := t.begin(pr)
	if !ok {
		return res, stale
	}
	rcpts := pr.envelope()
	line, err := mailLine(sess.Session, pr.envFrom, opts)
	if err == nil && slices.ContainsFunc(rcpts, func(rc string) bool { return strings.ContainsAny(rc, "\r\n") }) {
		err = errLineBreak
	}
	if err != nil {
		r.Cancel()
		return t.fail(StageMail, err, true), false
	}
	fl := &flight{t: t, pr: pr, rcpts: rcpts, kind: kind}
	sess.dirty = true
	if err := fl.write(line); err != nil {
		// The flight did not reach the server whole: the server cannot
		// have accepted a message whose last chunk it has not seen.
		if isStale(err) {
			r.Cancel()
		}
		res := t.fail(StageMail, err, false)
		res.bodyStarted = kind == flightBDAT
		return res, isStale(err)
	}
	res, stale = t.flightReplies(fl)
	if stale {
		r.Cancel()
	}
	if res.keep && !sess.Synced() {
		res.keep = false // the server said more than it was asked
	}
	res.bodyStarted = res.bodyStarted || kind == flightBDAT
	return res, stale
}

// errLineBreak refuses an envelope address with a line break, as go-smtp
// does.
var errLineBreak = errors.New("smtp: a line must not contain CR or LF")

// flightRcpts is the most RCPT commands a flight has written ahead of the
// reply being read. The client reads no reply while it writes: a flight
// far larger than the socket buffers (thousands of recipients) would have
// the server block on writing replies nobody reads, stop reading, and the
// client block on writing. A larger envelope goes in groups,
// each written once the replies have caught up with the one before.
const flightRcpts = 256

// A flight is a pipelined transaction's commands, written in groups.
type flight struct {
	t     *tx
	pr    *prepared
	rcpts []string
	kind  int
	sent  int  // RCPT commands written
	done  bool // the whole flight is written, DATA or the message included
}

// write writes MAIL and the first group of recipients (with the data
// command when they are all).
func (fl *flight) write(mail string) error {
	f := fl.t.sess.Flight()
	f.Command(mail)
	return fl.group(f)
}

// group adds the next group of RCPT commands to f, and the data command
// after the last, and writes it.
func (fl *flight) group(f *session.Flight) error {
	end := min(len(fl.rcpts), fl.sent+flightRcpts)
	for _, rc := range fl.rcpts[fl.sent:end] {
		f.Command("RCPT TO:<", rc, ">")
	}
	fl.sent = end
	var body []byte
	if end == len(fl.rcpts) {
		switch pr := fl.pr; fl.kind {
		case flightDATA:
			f.Command("DATA")
		case flightBDAT:
			f.Command("BDAT ", strconv.Itoa(len(pr.body)), " LAST")
			if body = pr.body; len(body) <= flightBodyCopy {
				f.Bytes(body)
				body = nil
			}
		}
	}
	err := f.Send()
	if err == nil && body != nil {
		err = fl.t.sess.Write(body)
	}
	if err == nil && end == len(fl.rcpts) {
		fl.done = true
	}
	return err
}

// ahead writes the groups due before the reply to the k-th RCPT is read.
func (fl *flight) ahead(k int) error {
	for fl.sent < len(fl.rcpts) && fl.sent-k < flightRcpts {
		if err := fl.group(fl.t.sess.Flight()); err != nil {
			return err
		}
	}
	return nil
}

// unread is the number of replies due to the commands written after MAIL.
func (fl *flight) unread() int {
	if fl.done && fl.kind != flightEnvelope {
		return fl.sent + 1
	}
	return fl.sent
}

// message reports whether the whole message went with the flight: from
// then on, a lost connection may have lost the reply to an accepted one.
func (fl *flight) message() bool { return fl.done && fl.kind == flightBDAT }

// flightReplies reads the replies to a pipelined transaction's commands, in
// order, and finishes the transaction.
func (t *tx) flightReplies(fl *flight) (txResult, bool) {
	sess, pr, rcpts, kind := t.sess, fl.pr, fl.rcpts, fl.kind
	lost := func(err error) txResult {
		return t.fail(StageData, &unknownError{messageID: pr.messageID(), err: err}, false)
	}
	if _, _, err := sess.Reply(); err != nil {
		var se *smtp.SMTPError
		switch {
		case !errors.As(err, &se) && fl.message():
			return lost(err), false
		case !errors.As(err, &se) || se.Code == 421:
			return t.fail(StageMail, err, false), isStale(err)
		}
		// The server refused MAIL: the other replies say nothing more,
		// and the rest of the flight is not sent.
		keep := t.drain(fl)
		return t.fail(StageMail, err, keep), false
	}
	var deferred []int // recipients refused with a recipient limit
	var limits []*SMTPError
	for k, rcpt := range rcpts {
		if err := fl.ahead(k); err != nil {
			// The rest of the flight did not reach the server: the
			// message was not sent.
			return t.fail(StageRcpt, err, false), false
		}
		_, _, err := sess.Reply()
		if err == nil {
			t.accepted = append(t.accepted, rcpt)
			if pr.plan != nil {
				pr.plan.Accept(k)
			}
			continue
		}
		var se *smtp.SMTPError
		if !errors.As(err, &se) && fl.message() {
			// The message went with the flight: this recipient and the
			// ones after it may have it. They count as accepted, so that
			// the plan's Lost makes them Unknown, never sent again.
			for i := k; pr.plan != nil && i < len(rcpts); i++ {
				pr.plan.Accept(i)
			}
			return lost(err), false
		}
		if se == nil || se.Code == 421 {
			return t.fail(StageRcpt, err, false), false
		}
		reply := newSMTPError(se)
		if t.splits(reply) && (len(deferred) > 0 || len(t.accepted) > 0) {
			// The server limits recipients per transaction: the refused
			// ones go into the next transaction; the others' replies
			// stand.
			deferred, limits = append(deferred, k), append(limits, reply)
			continue
		}
		t.reject(pr, k, rcpt, reply)
	}
	if len(deferred) > 0 && !t.split(pr, deferred) {
		for i, k := range deferred {
			t.reject(pr, k, rcpts[k], limits[i])
		}
	}
	switch kind {
	case flightDATA:
		return t.dataReply(pr), false
	case flightBDAT:
		_, text, err := sess.Reply()
		var se *smtp.SMTPError
		switch {
		case len(t.accepted) == 0:
			// No recipient, no delivery, whatever became of the chunk.
			return t.recipientsRefused(pr, err == nil || bdatKeep(err)), false
		case errors.As(err, &se) && !bdatKeep(err):
			return t.fail(StageData, err, false), false
		case err != nil:
			return t.closeFailed(pr, err), false
		}
		return t.delivered(pr, &smtp.DataResponse{StatusText: text}), false
	}
	if t.refused(pr) {
		keep := sess.Synced() && sess.Client.Reset() == nil
		if keep {
			sess.dirty = false
		}
		return t.recipientsRefused(pr, keep), false
	}
	if !sess.Synced() {
		return t.fail(StageData, session.ErrDesync, false), false
	}
	if _, chunk := t.s.pipelines(sess.Session); chunk {
		return t.bdat(pr), false
	}
	return t.data(pr), false
}

// dataReply reads the reply to a pipelined DATA and goes on: the message
// after a 354 when a recipient was accepted, else a lone "." (RFC 2920
// §3.1) and the recipients' refusal.
func (t *tx) dataReply(pr *prepared) txResult {
	sess := t.sess
	code, _, err := sess.Reply()
	var se *smtp.SMTPError
	switch {
	case err != nil && !errors.As(err, &se):
		// Nothing of the message was sent.
		if len(t.accepted) == 0 {
			return t.recipientsRefused(pr, false)
		}
		return t.fail(StageData, err, false)
	case err != nil && len(t.accepted) == 0:
		return t.recipientsRefused(pr, se.Code != 421)
	case err != nil:
		return t.fail(StageData, err, session.KeepAfterReply(err))
	case code != 354:
		return t.fail(StageData, &smtp.SMTPError{Code: code, Message: "unexpected reply to DATA"}, false)
	case len(t.accepted) == 0:
		// The server took DATA after refusing every recipient: the lone
		// dot ends the transaction without a message.
		keep := sess.Write([]byte(".\r\n")) == nil
		if keep {
			_, _, err = sess.Reply()
			var se *smtp.SMTPError
			keep = err == nil || errors.As(err, &se) && se.Code != 421
		}
		return t.recipientsRefused(pr, keep)
	}
	res := t.dotBody(pr)
	res.bodyStarted = true
	return res
}

// drain reads the replies that follow a refused MAIL in a flight: one per
// RCPT written and one to DATA or BDAT, when written; a 354 is answered by
// a lone ".". It reports whether the session is still in step.
func (t *tx) drain(fl *flight) bool {
	sess := t.sess
	for i := range fl.unread() {
		code, _, err := sess.Reply()
		var se *smtp.SMTPError
		if err != nil && (!errors.As(err, &se) || se.Code == 421) {
			return false
		}
		if i == fl.sent && fl.kind == flightDATA && code == 354 {
			if sess.Write([]byte(".\r\n")) != nil {
				return false
			}
			if _, _, err := sess.Reply(); err != nil && (!errors.As(err, &se) || se.Code == 421) {
				return false
			}
		}
	}
	return sess.Synced()
}

// dotBody uploads the message after a pipelined DATA's 354 and reads the
// server's verdict.
func (t *tx) dotBody(pr *prepared) txResult {
	sess := t.sess
	w := sess.DotWriter()
	err := writeMessage(w, pr)
	if err != nil {
		// The terminating dot was not sent: the session is closed.
		if sess.Conn.WriteErr() == nil && sess.Conn.Err() == nil {
			err = &readError{err: err}
		}
		return t.fail(StageData, err, false)
	}
	if err := w.Close(); err != nil {
		return t.fail(StageData, err, false) // the final dot was not written
	}
	_, text, err := sess.Reply()
	if err != nil {
		return t.closeFailed(pr, err)
	}
	return t.delivered(pr, &smtp.DataResponse{StatusText: text})
}

// bdat uploads a streamed message as BDAT chunks, once its recipients were
// accepted, and reads the server's verdict. Until the last chunk is
// written whole, a failure means the server has not seen the message.
func (t *tx) bdat(pr *prepared) txResult {
	sess := t.sess
	w := sess.Chunks()
	err := writeMessage(w, pr)
	if err == nil {
		err = w.Close()
	}
	var res txResult
	switch {
	case err != nil && w.Err() == nil:
		// The message's reader failed: the last chunk was not sent.
		res = t.fail(StageData, &readError{err: err}, false)
	case err != nil:
		// The server refused a chunk, or the connection failed before
		// the last chunk was written.
		res = t.fail(StageData, err, bdatKeep(err))
	default:
		_, text, rerr := sess.Reply()
		if rerr != nil {
			res = t.closeFailed(pr, rerr)
		} else {
			res = t.delivered(pr, &smtp.DataResponse{StatusText: text})
		}
	}
	res.bodyStarted = true
	return res
}

// bdatKeep reports whether a session may go on after err, a failure of
// BDAT: a reply other than 421, and other than 500 or 502, the replies of
// a server that does not know BDAT and so read the chunk as commands,
// whose replies would be taken for the next transaction's.
func bdatKeep(err error) bool {
	var se *smtp.SMTPError
	return session.KeepAfterReply(err) && errors.As(err, &se) && se.Code != 500 && se.Code != 502
}

// mailLine is the MAIL FROM command as go-smtp's client writes it for
// opts.
func mailLine(sess *session.Session, from string, opts *smtp.MailOptions) (string, error) {
	if strings.ContainsAny(from, "\r\n") {
		return "", errLineBreak
	}
	var b strings.Builder
	b.Grow(len(from) + 64)
	b.WriteString("MAIL FROM:<")
	b.WriteString(from)
	b.WriteByte('>')
	if sess.Has("8BITMIME") {
		b.WriteString(" BODY=8BITMIME")
	}
	if opts.Size > 0 && sess.Has("SIZE") {
		b.WriteString(" SIZE=")
		b.WriteString(strconv.FormatInt(opts.Size, 10))
	}
	if opts.UTF8 {
		b.WriteString(" SMTPUTF8")
	}
	return b.String(), nil
}

// canonical reports whether a composed message goes on the wire as it is:
// every line ends in CRLF, none is longer than 998 octets, and there is no
// NUL. Such a message's size is its length, which BDAT announces before
// the message; any other goes through the canonicalising writer.
func canonical(p []byte) bool {
	line := 0 // octets of the current line, its CRLF left out
	for i, c := range p {
		switch c {
		case 0:
			return false
		case '\r':
			if i+1 >= len(p) || p[i+1] != '\n' {
				return false
			}
		case '\n':
			if i == 0 || p[i-1] != '\r' {
				return false
			}
			line = 0
		default:
			if line++; line > compose.MaxLineLength {
				return false
			}
		}
	}
	return true
}
