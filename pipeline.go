package emailconn

import (
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/session"
)

// pipelines reports whether transactions on sess are pipelined (RFC 2920)
// and whether their messages go as BDAT chunks (RFC 3030): when the server
// offers the extension and the connection does not switch it off. BDAT is
// used only in a pipelined transaction, where it saves the round trip of
// DATA's 354.
func (s *Sender) pipelines(sess *session.Session) (pipe, chunk bool) {
	pipe = sess.Has("PIPELINING") && !s.conn.DisablePipelining
	return pipe, pipe && sess.Has("CHUNKING") && !s.conn.DisableChunking
}

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

// flightReplies reads the replies to a pipelined transaction's commands, in
// order, and finishes the transaction.
func (t *tx) flightReplies(fl *flight) (txResult, bool) {
	if res, stale, ok := t.flightMail(fl); !ok {
		return res, stale
	}
	if res, ok := t.flightRcpts(fl); !ok {
		return res, false
	}
	return t.flightEnd(fl), false
}

// lost is the result of a transaction whose connection failed once the
// message may have reached the server: its delivery is unknown.
func (t *tx) lost(pr *prepared, err error) txResult {
	return t.fail(StageData, &unknownError{messageID: pr.messageID(), err: err}, false)
}

// flightMail reads the reply to a flight's MAIL. A refused MAIL makes the
// other replies ones to drain, and the rest of the flight is not sent.
func (t *tx) flightMail(fl *flight) (res txResult, stale, ok bool) {
	_, _, err := t.sess.Reply()
	if err == nil {
		return txResult{}, false, true
	}
	var se *smtp.SMTPError
	switch {
	case !errors.As(err, &se) && fl.message():
		return t.lost(fl.pr, err), false, false
	case !errors.As(err, &se) || se.Code == 421:
		return t.fail(StageMail, err, false), isStale(err), false
	}
	// The server refused MAIL: the other replies say nothing more,
	// and the rest of the flight is not sent.
	keep := t.drain(fl)
	return t.fail(StageMail, err, keep), false, false
}

// flightRcpts reads the replies to a flight's RCPT commands, writing the
// groups due before each, and records each recipient's outcome. It goes on
// unless the connection failed or the server ended the session.
func (t *tx) flightRcpts(fl *flight) (txResult, bool) {
	pr, rcpts := fl.pr, fl.rcpts
	var deferred []int // recipients refused with a recipient limit
	var limits []*SMTPError
	for k, rcpt := range rcpts {
		if err := fl.ahead(k); err != nil {
			// The rest of the flight did not reach the server: the
			// message was not sent.
			return t.fail(StageRcpt, err, false), false
		}
		_, _, err := t.sess.Reply()
		if err == nil {
			t.accept(pr, k, rcpt)
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
			return t.lost(pr, err), false
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
	return txResult{}, true
}

// flightEnd finishes a pipelined transaction once its recipients' replies
// were read: the reply to DATA or to the message's BDAT when the flight
// held them, else the message, when a recipient was accepted.
func (t *tx) flightEnd(fl *flight) txResult {
	sess, pr := t.sess, fl.pr
	switch fl.kind {
	case flightDATA:
		return t.dataReply(pr)
	case flightBDAT:
		return t.bdatReply(pr)
	}
	if t.refused(pr) {
		return t.recipientsRefused(pr, sess.Synced() && t.reset())
	}
	if !sess.Synced() {
		return t.fail(StageData, session.ErrDesync, false)
	}
	if _, chunk := t.s.pipelines(sess.Session); chunk {
		return t.bdat(pr)
	}
	return t.data(pr)
}

// bdatReply reads the reply to the "BDAT n LAST" that carried the whole
// message in the flight.
func (t *tx) bdatReply(pr *prepared) txResult {
	_, text, err := t.sess.Reply()
	var se *smtp.SMTPError
	switch {
	case len(t.accepted) == 0:
		// No recipient, no delivery, whatever became of the chunk.
		return t.recipientsRefused(pr, err == nil || bdatKeep(err))
	case errors.As(err, &se) && !bdatKeep(err):
		return t.fail(StageData, err, false)
	case err != nil:
		return t.closeFailed(pr, err)
	}
	return t.delivered(pr, &smtp.DataResponse{StatusText: text})
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
		return t.recipientsRefused(pr, t.loneDot())
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
		if err != nil && !session.KeepAfterReply(err) {
			return false
		}
		if i == fl.sent && fl.kind == flightDATA && code == 354 && !t.loneDot() {
			return false
		}
	}
	return sess.Synced()
}

// loneDot answers a 354 with a lone "." (RFC 2920 §3.1), which ends the
// transaction without a message, and reports whether the session is still
// in a known state.
func (t *tx) loneDot() bool {
	if t.sess.Write([]byte(".\r\n")) != nil {
		return false
	}
	_, _, err := t.sess.Reply()
	return err == nil || session.KeepAfterReply(err)
}

// dotBody uploads the message after a pipelined DATA's 354 and reads the
// server's verdict.
func (t *tx) dotBody(pr *prepared) txResult {
	sess := t.sess
	w := sess.DotWriter()
	if err := writeMessage(w, pr); err != nil {
		return t.uploadFailed(err) // the terminating dot was not sent
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
