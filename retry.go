package emailconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/emailconn/emailconn/internal/rcptbatch"
	"github.com/emailconn/emailconn/internal/throttle"
)

// RetryPolicy says how long and how fast a send is retried after a
// transient failure: the connection was refused or reset, a timeout
// expired, or the server replied 4xx — but only where the server cannot
// have accepted the message. A message whose delivery is unknown
// (ErrDeliveryUnknown), or that the server refused permanently, is never
// retried. Waits grow exponentially with full jitter, are never shorter
// than a throttling reply asks for (Microsoft 365's 432: 2 seconds), and
// end with MaxElapsed, MaxAttempts or the caller's context, whichever is
// first. The defaults outlast a server restart of up to 25 seconds
// (MaxElapsed − MaxBackoff): a session closed with 421 is retried on a new
// one.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first one included. Zero
	// means no limit other than MaxElapsed; 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the longest wait before the second attempt; each
	// further wait doubles it. Zero means 250 milliseconds.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait. Zero means 5 seconds.
	MaxBackoff time.Duration
	// MaxElapsed is how long after the first attempt began a retry may
	// still start. Zero means 30 seconds.
	MaxElapsed time.Duration
}

// tokenAttempts bounds the attempts of a send whose OAuth2 token request
// keeps failing transiently, when MaxAttempts is zero.
const tokenAttempts = 3

// isStage reports whether err is an *Error at stage.
func isStage(err error, stage Stage) bool {
	var e *Error
	return errors.As(err, &e) && e.Stage == stage
}

// schedule is the policy's backoff schedule.
func (p RetryPolicy) schedule() throttle.Backoff {
	return throttle.Backoff{Initial: p.InitialBackoff, Max: p.MaxBackoff, Total: p.MaxElapsed}
}

// more reports whether the policy allows an attempt after n.
func (p RetryPolicy) more(n int) bool { return p.MaxAttempts <= 0 || n < p.MaxAttempts }

// attemptResult is the outcome of one attempt.
type attemptResult struct {
	receipt     *Receipt
	err         error
	retry       bool // the server cannot have accepted the message, and a later attempt may succeed
	bodyStarted bool // the message's readers were read
}

// deliver runs attempts under the retry policy.
func (s *Sender) deliver(ctx context.Context, pr *prepared, start time.Time) (*Receipt, error) {
	if e := s.checkPause(); e != nil {
		return nil, e
	}
	giveBack, qerr := s.takeQuota(len(pr.rcpts))
	if qerr != nil {
		return nil, qerr
	}
	if max := s.lim.l.MaxRecipientsPerMessage; max > 0 && len(pr.rcpts) > max {
		pr.plan = rcptbatch.New(pr.rcpts, max)
	}
	policy := s.opts.Retry
	for n := 1; ; n++ {
		res := s.attempt(ctx, pr)
		pr.attempts = n
		if res.receipt != nil {
			res.receipt.Attempts = n
			res.receipt.Duration = time.Since(start)
			res.receipt.Waited = pr.sessionWait + pr.rateWait
			if res.receipt.Transactions == 0 {
				res.receipt.Transactions = 1
			}
		}
		if res.err == nil {
			s.logWaited(ctx, pr)
			s.logSent(ctx, pr, res.receipt)
			return res.receipt, nil
		}
		canRetry := res.retry && policy.more(n) && ctx.Err() == nil
		if canRetry && policy.MaxAttempts <= 0 && n >= tokenAttempts && isStage(res.err, StageToken) {
			// The token endpoint is not the mail server restarting; its
			// requests keep the attempt count of before the window.
			canRetry = false
		}
		if canRetry && res.bodyStarted {
			canRetry = pr.replay && pr.rewind() == nil
		}
		if !canRetry {
			if res.receipt == nil && !errors.Is(res.err, ErrDeliveryUnknown) {
				giveBack()
			}
			s.logWaited(ctx, pr)
			return s.gaveUp(ctx, pr, res, n, start)
		}
		var e *Error
		var floor time.Duration
		if errors.As(res.err, &e) {
			floor = e.wait // the reply's floor: a jitter draw never undercuts it
		}
		wait, ok := policy.schedule().Next(n, time.Since(start), floor, nil)
		if d, dok := ctx.Deadline(); !ok || dok && time.Until(d) < wait {
			if e != nil && e.retryAt.IsZero() && e.throttled {
				e.retryAt = time.Now().Add(wait)
			}
			return s.gaveUp(ctx, pr, res, n, start)
		}
		s.logFailed(ctx, pr, res.err, n, true)
		s.traceRetry(ctx, n, wait, res.err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, s.ctxError(ctx, "", fmt.Errorf("while waiting to retry after: %w", res.err))
		}
	}
}

// gaveUp ends a send that failed after n attempts: the error says how
// many attempts were made and how long they took in all.
func (s *Sender) gaveUp(ctx context.Context, pr *prepared, res attemptResult, n int, start time.Time) (*Receipt, error) {
	var e *Error
	if n > 1 && errors.As(res.err, &e) {
		e.attempts, e.elapsed = n, time.Since(start)
	}
	s.logFailed(ctx, pr, res.err, n, false)
	return res.receipt, res.err
}

// attempt makes one attempt on a pooled or new session. A pooled session
// that turns out dead before MAIL is replaced by a new one, once, without
// counting an attempt.
//
// A message whose recipients are split (MaxRecipientsPerMessage, or a
// server's 452 "too many recipients") takes one transaction per batch of
// its plan, the same message each time; the attempt ends when no
// recipient is pending, or when a transaction fails without delivering.
func (s *Sender) attempt(ctx context.Context, pr *prepared) attemptResult {
	if pr.plan != nil && pr.acc == nil && len(pr.plan.Recipients(rcptbatch.Pending)) == 0 {
		// A retry of a message nothing was delivered of: the recipients
		// refused transiently are tried again, as without batching.
		pr.plan.Requeue()
	}
	for {
		res := s.attemptOne(ctx, pr)
		if pr.plan == nil {
			return res
		}
		pr.accumulate(res.receipt)
		var re *RecipientsError
		switch {
		case res.receipt == nil && pr.acc != nil && errors.As(res.err, &re):
			// A later transaction whose every recipient was refused: they
			// are final; the message goes on with the others.
			pr.acc.Rejected = append(pr.acc.Rejected, re.Rejected...)
		case res.receipt == nil:
			res.receipt = pr.acc // what earlier transactions delivered, or nil
			return res
		}
		if len(pr.plan.Recipients(rcptbatch.Pending)) == 0 {
			return s.batchResult(pr, res)
		}
		if !pr.replay || pr.rewind() != nil {
			res.receipt = pr.acc
			res.err = s.classify(ctx, &readError{err: errors.New("the message cannot be read again for the transaction of its further recipients")})
			res.retry = false
			return res
		}
	}
}

// accumulate adds a transaction's receipt to the message's.
func (p *prepared) accumulate(rc *Receipt) {
	if rc == nil {
		return
	}
	if p.acc == nil {
		acc := *rc
		acc.Accepted = slices.Clone(rc.Accepted)
		acc.Rejected = slices.Clone(rc.Rejected)
		acc.Transactions = 1
		p.acc = &acc
		return
	}
	a := p.acc
	a.Accepted = append(a.Accepted, rc.Accepted...)
	a.Rejected = append(a.Rejected, rc.Rejected...)
	a.Reply, a.QueueID, a.Server, a.TLSVersion, a.Mechanism = rc.Reply, rc.QueueID, rc.Server, rc.TLSVersion, rc.Mechanism
	a.Transactions++
}

// batchResult is the result of a message whose every batch was sent: one
// receipt, and the refused recipients of every transaction in one error.
func (s *Sender) batchResult(pr *prepared, last attemptResult) attemptResult {
	res := attemptResult{receipt: pr.acc, bodyStarted: last.bodyStarted}
	if len(pr.acc.Rejected) > 0 {
		res.err = &Error{Connection: s.conn.Name, Server: pr.acc.Server, Stage: StageRcpt,
			Err: &RecipientsError{Rejected: pr.acc.Rejected, Accepted: len(pr.acc.Accepted)}}
	}
	return res
}

// attemptOne runs one transaction on a pooled or new session.
func (s *Sender) attemptOne(ctx context.Context, pr *prepared) attemptResult {
	for redial := true; ; redial = false {
		sess, err := s.acquire(ctx, &pr.sessionWait)
		if err != nil {
			return attemptResult{err: err, retry: isRetryable(err)}
		}
		res, stale := s.transactOn(ctx, sess, pr)
		if stale && sess.reused && redial {
			continue
		}
		return res.attemptResult
	}
}

// isStale reports whether an error on a reused session means the server
// had closed it: EOF, reset, broken pipe, or 421.
func isStale(err error) bool {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code == 421
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && !ne.Timeout()) || isConnReset(err)
}

// isRetryable reports whether a failed attempt may succeed later without a
// change of configuration and the server cannot have accepted the message.
func isRetryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case e.Stage == StageToken && errors.Is(err, ErrTimeout):
		// The token request already waited its own timeout (30 s by
		// default); a send does not wait it again and again.
		return false
	case e.paused:
		// The reply paused the connection: every retry would be refused.
		return false
	case errors.Is(err, ErrDeliveryUnknown), errors.Is(err, ErrInvalid), errors.Is(err, ErrInsecureAuth),
		errors.Is(err, ErrAuthUnsupported), errors.Is(err, ErrBlocked), errors.Is(err, ErrClosed),
		errors.Is(err, ErrMessageTooLarge), errors.Is(err, ErrReauthorize),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return e.Temporary()
}

// isConnReset reports a connection reset or a write to a closed one.
func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
