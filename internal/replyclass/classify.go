package replyclass

import (
	"fmt"
	"strings"
	"time"

	"github.com/emailconn/emailconn/internal/provider"
)

// The provider names: those of internal/provider, one vocabulary with the
// OAuth2 presets of the root package ("microsoft365", "google").
const (
	Microsoft365 = provider.Microsoft365
	Google       = provider.Google
	SES          = provider.SES
)

// Stage is the point of the SMTP dialogue a reply answers. The zero value,
// StageUnknown, matches every stage-specific rule that does not need the
// stage to be sure.
type Stage uint8

// The stages of a submission.
const (
	StageUnknown  Stage = iota
	StageGreeting       // the server's 220 (or refusal) on connect
	StageHello          // EHLO, HELO or STARTTLS
	StageAuth           // AUTH and its continuation lines
	StageMail           // MAIL FROM
	StageRcpt           // RCPT TO
	StageData           // the DATA command (354 expected)
	StageAfterDot       // the end of the message data ("."); 2xx here means accepted
	StageQuit           // QUIT or RSET
)

var stageNames = [...]string{"unknown", "greeting", "hello", "auth", "mail", "rcpt", "data", "after-dot", "quit"}

// String returns the stage's name, as used in logs and Rule names.
func (s Stage) String() string {
	if int(s) < len(stageNames) {
		return stageNames[s]
	}
	return fmt.Sprintf("stage(%d)", uint8(s))
}

// Action is what to do about a reply.
type Action uint8

// The actions, from the mildest to the hardest.
const (
	// Proceed: the reply is a success (2xx) or an intermediate (3xx).
	Proceed Action = iota
	// Retry: a transient refusal. Retry what was refused (at RCPT, that
	// recipient; elsewhere, the message, on a new session when Closing)
	// after at least Wait, and only if the server cannot have accepted
	// the message. When Wait is longer than the caller's context allows,
	// fail now with the time a retry may succeed.
	Retry
	// Split: the server limits recipients per transaction (RFC 5321
	// §4.5.3.1.10). Send the recipients refused with this reply, and
	// those not yet tried, in a following transaction of the same message.
	Split
	// Reauth: the server rejected an OAuth2 token. Fetch a fresh token
	// and try once more; a second rejection is a Fail.
	Reauth
	// Pause: the server will refuse everything from this connection until
	// a time (a daily quota, continuous-error throttling). Fail this send
	// and every send until Until, without opening a session.
	Pause
	// Fail: a permanent refusal. Do not retry the same message unchanged.
	Fail
)

var actionNames = [...]string{"proceed", "retry", "split", "reauth", "pause", "fail"}

// String returns the action's name.
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Reply is one SMTP reply and where it came.
type Reply struct {
	// Code is the three-digit reply code. A code outside 200–599 gives
	// Fail with Rule "malformed".
	Code int
	// Enhanced is the RFC 3463 status code ("4.3.2"). Empty means: read it
	// from the start of Text, if Text has one.
	Enhanced string
	// Text is the reply's text without the code, its lines joined.
	Text string
	// Stage is the command the reply answers. Zero means unknown.
	Stage Stage
	// Provider is "microsoft365", "google", "ses", or empty for none.
	// A known provider matches only its own rules and the generic ones;
	// empty (or any other name) lets every provider's rule match, since
	// their text markers are distinctive.
	Provider string
	// OAuth2 says the session authenticates with an OAuth2 token
	// (XOAUTH2, OAUTHBEARER): an authentication refusal then means the
	// token was rejected (Reauth), not a wrong password (Fail).
	OAuth2 bool
}

// Decision is what to do about a reply. The zero value is Proceed.
type Decision struct {
	Action Action
	// Wait is, for Retry, the least wait before the retry (zero: the
	// retry policy's backoff alone decides); for Pause, how long the
	// connection pauses, from the moment the reply arrived.
	Wait time.Duration
	// Throttled says the reply is a provider's rate, concurrency or quota
	// limit: the error the sender returns satisfies ErrThrottled, and the
	// connection should hold new sends until Until.
	Throttled bool
	// Closing says the server closes the session after this reply (421):
	// do not send QUIT or reuse the session; retry on a new one.
	Closing bool
	// Rule names the table row that matched ("microsoft365/concurrent-
	// connections", "rfc5321/4xx"), for logs and tests.
	Rule string
	// Advice says in plain words what the reply means for the user, for
	// Test Connection and error texts. Empty for generic replies.
	Advice string
}

// Until returns when the decision's wait ends for a reply that arrived at
// replyAt: the end of a Pause, or the earliest Retry. It returns replyAt
// when there is no wait.
func (d Decision) Until(replyAt time.Time) time.Time { return replyAt.Add(d.Wait) }

// Classify decides what to do about r. It never panics and always returns
// a decision: the first matching row of the provider table, then of the
// RFC 5321 rules, then the reply class (2xx/3xx Proceed, 4xx Retry, 5xx
// Fail).
func Classify(r Reply) Decision {
	d, _ := classify(r)
	return d
}

// classify is Classify, also returning the index of the table row that
// matched, or -1.
func classify(r Reply) (Decision, int) {
	if r.Code < 200 || r.Code > 599 {
		return Decision{Action: Fail, Rule: "malformed", Advice: "the server's reply has no valid code"}, -1
	}
	if r.Code < 400 {
		return Decision{Action: Proceed, Rule: "rfc5321/2xx-3xx"}, -1
	}
	enh, text := r.Enhanced, r.Text
	if enh == "" {
		enh, text = ParseEnhanced(r.Text)
	} else if !validEnhanced(enh) {
		enh = ""
	}
	m := match{code: r.Code, enh: enh, text: strings.ToLower(text), stage: r.Stage, provider: r.Provider, oauth2: r.OAuth2}
	for i := range table {
		if table[i].matches(&m) {
			return table[i].decide(&m), i
		}
	}
	if r.Code >= 500 {
		return Decision{Action: Fail, Rule: "rfc5321/5xx"}, -1
	}
	return Decision{Action: Retry, Closing: r.Code == 421, Rule: "rfc5321/4xx"}, -1
}

// ParseEnhanced splits an RFC 3463 status code ("5.7.139") from the start
// of text and returns it and the rest of the text. When text does not
// start with one, it returns "" and text unchanged.
func ParseEnhanced(text string) (enhanced, rest string) {
	t := strings.TrimLeft(text, " \t")
	end := strings.IndexAny(t, " \t\r\n")
	if end < 0 {
		end = len(t)
	}
	if validEnhanced(t[:end]) {
		return t[:end], strings.TrimLeft(t[end:], " \t\r\n")
	}
	return "", text
}

// validEnhanced reports whether s is class.subject.detail: class 2, 4 or 5,
// subject and detail one to three digits.
func validEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.ContainsAny(parts[0], "245") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}
