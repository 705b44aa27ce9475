package emailconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emailconn/emailconn/internal/provider"
	"github.com/emailconn/emailconn/internal/replyclass"
	"github.com/emailconn/emailconn/internal/throttle"
)

// The limits a Sender keeps for its connection (issue 14; the plan is
// internal/throttle/DESIGN-limits.md): the resolved provider limits, the
// message rate, the pause after a quota or throttling reply, and the daily
// caps. With no limit configured, rate, msgDay and rcpDay are nil and the
// send path only loads the paused flag.
type sendLimits struct {
	l      provider.Limits
	rate   throttle.Rate // nil: no message rate; a *throttle.Window, or with Options.Store a *storeRate
	window time.Duration // the rate's window: the provider's minute and a 2 % margin
	pause  *throttle.Pause
	paused atomic.Bool     // set once the pause was ever extended: until then no send takes its mutex
	msgDay *throttle.Quota // nil: no daily message cap
	rcpDay *throttle.Quota // nil: no daily recipient cap
	clock  throttle.Clock
}

// throttleLongRetry is the wait of a throttling Retry beyond which the
// whole connection pauses for it, so that other sends do not hammer the
// server meanwhile (Google's 421 "try again later", the peak relay limit);
// shorter ones (432 concurrency, SES rate) are retried by the one caller.
const throttleLongRetry = 10 * time.Second

// newSendLimits resolves c's limits and builds their state. The message
// rate's window is 2 % longer than the provider's minute, so that network
// jitter between client and server never lets the server see more than
// the limit in its own minute (DESIGN-limits.md §3).
func newSendLimits(c *Connection, o *Options) *sendLimits {
	l := c.limits()
	minute, day := time.Minute, 24*time.Hour
	if o.limitMinute > 0 {
		minute = o.limitMinute
	}
	if o.limitDay > 0 {
		day = o.limitDay
	}
	sl := &sendLimits{l: l, pause: throttle.NewPause(o.clock), clock: o.clock}
	if l.MessagesPerMinute > 0 {
		sl.window = minute + minute/50
		sl.rate = throttle.NewWindow(l.MessagesPerMinute, sl.window, o.clock)
	}
	if l.MessagesPerDay > 0 {
		sl.msgDay = throttle.NewQuota(l.MessagesPerDay, day, o.clock)
	}
	if l.RecipientsPerDay > 0 {
		sl.rcpDay = throttle.NewQuota(l.RecipientsPerDay, day, o.clock)
	}
	return sl
}

func (sl *sendLimits) now() time.Time {
	if sl.clock != nil {
		return sl.clock.Now()
	}
	return time.Now()
}

// A pausedError is the cause of a send refused without dialling because
// the connection is paused.
type pausedError struct {
	until time.Time
	cause error
}

func (e *pausedError) Error() string {
	msg := "sending is paused until " + e.until.UTC().Format(time.RFC3339)
	if e.cause != nil {
		var ce *Error
		if errors.As(e.cause, &ce) {
			msg += " after " + ce.detail()
		} else {
			msg += " after " + strings.TrimPrefix(e.cause.Error(), "emailconn: ")
		}
	}
	return msg
}

// A quotaError is the cause of a send refused without dialling because a
// daily cap of the connection is reached.
type quotaError struct {
	what   string // "messagesPerDay"
	limit  int
	freeAt time.Time
}

func (e *quotaError) Error() string {
	if e.freeAt.IsZero() {
		return fmt.Sprintf("the message has more recipients than %s (%d) allows", e.what, e.limit)
	}
	return fmt.Sprintf("%s (%d) reached; room frees at %s", e.what, e.limit, e.freeAt.UTC().Format(time.RFC3339))
}

// checkPause fails a send at once when the connection is paused.
func (s *Sender) checkPause() *Error {
	if !s.lim.paused.Load() {
		return nil
	}
	st, on := s.lim.pause.Active()
	if !on {
		return nil
	}
	return &Error{Connection: s.conn.Name, Server: s.ep.addr(), kind: ErrThrottled,
		Err: &pausedError{until: st.Until, cause: st.Cause}, retryAt: st.Until}
}

// takeQuota takes the daily caps for one message to n recipients, or
// fails at once; giveBack returns what was taken.
func (s *Sender) takeQuota(n int) (giveBack func(), err *Error) {
	sl := s.lim
	giveBack = func() {}
	for _, q := range [...]struct {
		q    *throttle.Quota
		n    int
		what string
	}{{sl.msgDay, 1, "messagesPerDay"}, {sl.rcpDay, n, "recipientsPerDay"}} {
		if q.q == nil {
			continue
		}
		back, freeAt, ok := q.q.Take(q.n)
		if !ok {
			giveBack()
			e := &Error{Connection: s.conn.Name, Server: s.ep.addr(), Err: &quotaError{what: q.what, limit: q.q.Limit(), freeAt: freeAt}}
			if freeAt.IsZero() {
				e.kind = ErrInvalid
			} else {
				e.kind, e.retryAt = ErrThrottled, freeAt
			}
			return func() {}, e
		}
		prev := giveBack
		giveBack = func() { prev(); back() }
	}
	return giveBack, nil
}

// stageOf maps a Stage to the reply classifier's.
func stageOf(s Stage) replyclass.Stage {
	switch s {
	case StageGreeting:
		return replyclass.StageGreeting
	case StageEHLO, StageSTARTTLS:
		return replyclass.StageHello
	case StageAuth:
		return replyclass.StageAuth
	case StageMail:
		return replyclass.StageMail
	case StageRcpt:
		return replyclass.StageRcpt
	case StageReset, StageQuit:
		return replyclass.StageQuit
	}
	return replyclass.StageUnknown
}

// decide classifies a server's reply se at e's stage and acts on the
// decision: a throttling reply marks e (ErrThrottled, RetryAt, the least
// wait before a retry), a Pause decision — a daily quota, continuous-error
// throttling — pauses the connection and ends the send, and a long
// throttling Retry pauses the connection for its wait.
func (s *Sender) decide(e *Error, se *SMTPError, oauth2 bool) replyclass.Decision {
	d := replyclass.Classify(replyclass.Reply{Code: se.Code, Enhanced: se.Enhanced(), Text: se.Message,
		Stage: stageOf(e.Stage), Provider: string(s.conn.Provider), OAuth2: oauth2})
	if d.Advice != "" && e.advice == "" {
		e.advice = d.Advice
	}
	if s.lim == nil {
		return d
	}
	until := d.Until(s.lim.now())
	switch {
	case d.Action == replyclass.Pause:
		e.throttled, e.retryAt, e.paused = true, until, true
		s.lim.pause.Extend(until, e)
		s.lim.paused.Store(true)
	case d.Throttled && d.Action == replyclass.Retry:
		e.throttled, e.retryAt = true, until
		e.wait = max(e.wait, d.Wait)
		if d.Wait >= throttleLongRetry {
			s.lim.pause.Extend(until, e)
			s.lim.paused.Store(true)
		}
	}
	return d
}

// logWaited logs, at Debug, how long a send waited for a session and for
// the message rate.
func (s *Sender) logWaited(ctx context.Context, pr *prepared) {
	l := s.opts.Logger
	if l == nil || pr.sessionWait+pr.rateWait == 0 {
		return
	}
	l.LogAttrs(ctx, slog.LevelDebug, "waited for limits",
		slog.String("connection", s.conn.Name), slog.String("messageID", pr.messageID()),
		slog.Duration("session_wait", pr.sessionWait), slog.Duration("rate_wait", pr.rateWait))
}

// LimitsInfo is, in a TestReport, the sending limits in force for a
// connection: its provider's documented defaults, with every limit field
// of the connection that is set instead. A zero limit means none.
type LimitsInfo struct {
	// Provider is the connection's provider, or "" for none.
	Provider string `json:"provider,omitempty"`
	// MaxSessions is the cap on concurrent sessions; zero means the
	// Options' MaxSessions (4 by default).
	MaxSessions int `json:"maxSessions,omitempty"`
	// MessagesPerMinute caps the transactions started in any minute; zero
	// means no cap.
	MessagesPerMinute int `json:"messagesPerMinute,omitempty"`
	// MaxRecipientsPerMessage caps the recipients of one transaction; zero
	// means no cap.
	MaxRecipientsPerMessage int `json:"maxRecipientsPerMessage,omitempty"`
	// MessagesPerDay caps the messages in any 24 hours; zero means no cap.
	MessagesPerDay int `json:"messagesPerDay,omitempty"`
	// RecipientsPerDay caps the recipients in any 24 hours; zero means no
	// cap.
	RecipientsPerDay int `json:"recipientsPerDay,omitempty"`
	// FromProvider lists, by JSON name, the limits that come from the
	// provider's defaults rather than from the connection.
	FromProvider []string `json:"fromProvider,omitempty"`
}

// limitsInfo reports the limits in force, or nil when there are none.
func (s *Sender) limitsInfo() *LimitsInfo {
	if s.lim == nil {
		return nil
	}
	l, c := s.lim.l, &s.conn
	info := &LimitsInfo{Provider: c.Provider, MaxSessions: l.MaxSessions, MessagesPerMinute: l.MessagesPerMinute,
		MaxRecipientsPerMessage: l.MaxRecipientsPerMessage, MessagesPerDay: l.MessagesPerDay, RecipientsPerDay: l.RecipientsPerDay}
	if c.Provider == "" && l == (provider.Limits{}) {
		return nil
	}
	for _, f := range [...]struct {
		name      string
		own, used int
	}{{"maxSessions", c.MaxSessions, l.MaxSessions}, {"messagesPerMinute", c.MessagesPerMinute, l.MessagesPerMinute},
		{"maxRecipientsPerMessage", c.MaxRecipientsPerMessage, l.MaxRecipientsPerMessage},
		{"messagesPerDay", c.MessagesPerDay, l.MessagesPerDay}, {"recipientsPerDay", c.RecipientsPerDay, l.RecipientsPerDay}} {
		if f.own == 0 && f.used != 0 {
			info.FromProvider = append(info.FromProvider, f.name)
		}
	}
	return info
}

// limitHint says in plain words what a provider's reply means — a
// throttling or quota limit, SMTP AUTH or basic authentication disabled —
// when the reply classifier knows it; "" otherwise.
func limitHint(err error) string {
	var e *Error
	if !errors.As(err, &e) || e.advice == "" {
		return ""
	}
	hint := strings.ToUpper(e.advice[:1]) + e.advice[1:]
	if !strings.HasSuffix(hint, ".") {
		hint += "."
	}
	if !e.retryAt.IsZero() && e.throttled {
		hint += " Sending through this connection may succeed again after " + e.retryAt.UTC().Format(time.RFC3339) + "."
	}
	return hint
}
