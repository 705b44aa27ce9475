package replyclass

import (
	"strings"
	"time"
)

// How long the decisions wait. Each is a choice where the providers
// publish none, or a figure from their documentation where they do; the
// comments say which.
const (
	// DailyWindow is the pause after a daily-quota reply: the providers'
	// windows roll over 24 hours (see the package doc).
	DailyWindow = 24 * time.Hour
	// ContinuousErrorPause is the pause after Microsoft 365's
	// continuous-error throttling (550 5.2.251–5.2.255). Microsoft says
	// only "for a period of time"; our choice.
	ContinuousErrorPause = time.Hour
	// LoginAttemptsPause is the pause after Google's "454 4.7.0 Too many
	// login attempts": every further login deepens the block. Our choice.
	LoginAttemptsPause = 10 * time.Minute
	// ConcurrencyWait is the least wait after Microsoft 365's "432 4.3.2
	// Concurrent connections limit exceeded": another session of the
	// mailbox must end first. Our choice, about one message's submission.
	ConcurrencyWait = 2 * time.Second
	// SESRateWait is the least wait after SES's "454 Throttling failure:
	// Maximum sending rate exceeded": the rate is per second
	// (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html).
	SESRateWait = time.Second
	// PeakRelayWait is the least wait after Google's "450 4.2.1 Peak SMTP
	// relay limit exceeded for customer", a temporary deferral. Our choice.
	PeakRelayWait = time.Minute
	// TryAgainLaterWait is the least wait after Google's "421 4.7.0 Try
	// again later, closing connection". Our choice.
	TryAgainLaterWait = 30 * time.Second
	// RecipientRateWait is the least wait for a recipient "receiving mail
	// too quickly" (450 4.2.1). Our choice.
	RecipientRateWait = time.Minute
	// GenericThrottleWait is the least wait after an unrecognised 4xx
	// whose text speaks of a rate or too many connections. Our choice.
	GenericThrottleWait = 5 * time.Second
)

// stages is a set of Stage values; zero means any stage.
type stages uint16

func on(s ...Stage) stages {
	var m stages
	for _, x := range s {
		m |= 1 << x
	}
	return m
}

// rule is one row of the table. Every condition set must hold: provider,
// stage, reply class or codes, one of the enhanced codes, one of the text
// markers (lower case), and the OAuth2 flag when oauth2 is set.
type rule struct {
	name     string
	provider string
	class    int   // 4 or 5; 0 means either
	codes    []int // nil means any code of the class
	stages   stages
	enhanced []string
	markers  []string
	oauth2   int8 // 1: only with OAuth2; -1: only without; 0: either
	d        Decision
	// needsStage makes a stage-specific rule refuse StageUnknown (the
	// recipient-limit rules must not split a refusal of MAIL).
	needsStage bool
}

// match is the normalised reply the rules look at.
type match struct {
	code     int
	enh      string
	text     string // lower case
	stage    Stage
	provider string
	oauth2   bool
}

func known(p string) bool { return p == Microsoft365 || p == Google || p == SES }

func (r *rule) matches(m *match) bool {
	if r.provider != "" && known(m.provider) && m.provider != r.provider {
		return false
	}
	if r.class != 0 && m.code/100 != r.class {
		return false
	}
	if r.codes != nil && !contains(r.codes, m.code) {
		return false
	}
	if r.stages != 0 {
		if m.stage == StageUnknown {
			if r.needsStage {
				return false
			}
		} else if r.stages&(1<<m.stage) == 0 {
			return false
		}
	}
	if r.oauth2 == 1 && !m.oauth2 || r.oauth2 == -1 && m.oauth2 {
		return false
	}
	if r.enhanced != nil && !contains(r.enhanced, m.enh) {
		return false
	}
	if r.markers != nil && !hasAny(m.text, r.markers) {
		return false
	}
	return true
}

func (r *rule) decide(m *match) Decision {
	d := r.d
	d.Rule = r.name
	if m.code == 421 {
		d.Closing = true // RFC 5321 §3.8: 421 closes the channel, whatever the row says
	}
	return d
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func hasAny(text string, markers []string) bool {
	for _, m := range markers {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

// Sources of the rows:
//
//	[ms-sub]  https://learn.microsoft.com/en-us/exchange/troubleshoot/send-emails/smtp-submission-improvements
//	[ms-blog] https://techcommunity.microsoft.com/t5/exchange-team-blog/changes-coming-to-the-smtp-authenticated-submission-client/ba-p/607825
//	[ms-cet]  https://learn.microsoft.com/en-us/Exchange/mail-flow-best-practices/continuous-error-throttling-smtp-auth-submissions
//	[g-lim]   https://support.google.com/a/answer/166852
//	[g-err]   https://support.google.com/a/answer/3726730
//	[g-relay] https://support.google.com/a/answer/2956491 (relay limits; its texts quoted in [g-err])
//	[ses-q]   https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html
//	[ses-b]   https://aws.amazon.com/blogs/ses/how-to-handle-a-throttling-maximum-sending-rate-exceeded-error
//	[rfc]     RFC 5321 §4.5.3.1.10 (recipients per transaction), §3.8 (421)
var table = func() []rule {
	t := []rule{
		// Microsoft 365 [ms-sub], [ms-blog].
		{name: "microsoft365/concurrent-connections", provider: Microsoft365, class: 4,
			markers: []string{"concurrent connections limit exceeded", "concurrent connection limit exceeded"},
			d: Decision{Action: Retry, Wait: ConcurrencyWait, Throttled: true,
				Advice: "Microsoft 365 allows 3 concurrent SMTP sessions per mailbox; another client uses this mailbox, or maxSessions is above 3"}},
		{name: "microsoft365/sender-thread-limit", provider: Microsoft365, class: 4,
			markers: []string{"sender thread limit exceeded"},
			d: Decision{Action: Retry, Wait: ConcurrencyWait, Throttled: true,
				Advice: "Microsoft 365 allows 3 concurrent SMTP sessions per mailbox; another client uses this mailbox, or maxSessions is above 3"}},
		{name: "microsoft365/daily-recipient-limit", provider: Microsoft365,
			markers: []string{"submissionquotaexceededexception"},
			d: Decision{Action: Pause, Wait: DailyWindow, Throttled: true,
				Advice: "Microsoft 365's limit of 10,000 recipients a day for this mailbox is reached; sending is paused for 24 hours"}},
		{name: "microsoft365/sending-mailbox-full", provider: Microsoft365, class: 5,
			markers: []string{"storedrv.submission.exception:quotaexceededexception"},
			d: Decision{Action: Fail,
				Advice: "the sending mailbox is full (Microsoft 365 keeps a copy of each message in Sent Items); empty it or set a retention policy"}},
		{name: "microsoft365/smtp-auth-disabled-tenant", provider: Microsoft365, class: 5,
			markers: []string{"smtpclientauthentication is disabled"},
			d: Decision{Action: Fail,
				Advice: "SMTP AUTH is turned off for the Microsoft 365 tenant; an administrator must allow it (SmtpClientAuthenticationDisabled)"}},
		{name: "microsoft365/security-defaults", provider: Microsoft365, class: 5,
			markers: []string{"security defaults policy"},
			d: Decision{Action: Fail,
				Advice: "Microsoft Entra security defaults block SMTP AUTH for this user; use OAuth2, or exclude the user"}},
		{name: "microsoft365/smtp-auth-refused", provider: Microsoft365, class: 5,
			enhanced: []string{"5.7.139"},
			d: Decision{Action: Fail,
				Advice: "Microsoft 365 refused SMTP AUTH (5.7.139): it may be turned off for this mailbox, or a sign-in policy blocks it"}},
		{name: "microsoft365/basic-auth-disabled", provider: Microsoft365, class: 5,
			enhanced: []string{"5.7.30"},
			d: Decision{Action: Fail,
				Advice: "Microsoft 365 no longer accepts a password for SMTP AUTH on this tenant; use OAuth2"}},
		{name: "microsoft365/basic-auth-disabled", provider: Microsoft365, class: 5,
			markers: []string{"basic authentication is not supported"},
			d: Decision{Action: Fail,
				Advice: "Microsoft 365 no longer accepts a password for SMTP AUTH on this tenant; use OAuth2"}},
		{name: "microsoft365/token-rejected", provider: Microsoft365, class: 5, oauth2: 1,
			enhanced: []string{"5.7.3"},
			d:        Decision{Action: Reauth}},
		{name: "microsoft365/auth-unsuccessful", provider: Microsoft365, class: 5, oauth2: -1,
			enhanced: []string{"5.7.3"},
			d: Decision{Action: Fail,
				Advice: "Microsoft 365 refused the password; it may be wrong, or SMTP AUTH or basic authentication may be turned off for this mailbox"}},
		{name: "microsoft365/not-authenticated", provider: Microsoft365, class: 5,
			enhanced: []string{"5.7.57"},
			d: Decision{Action: Fail,
				Advice: "Microsoft 365 requires authentication before MAIL FROM (port 587, STARTTLS, then AUTH)"}},
		{name: "microsoft365/send-as-denied", provider: Microsoft365, class: 5,
			enhanced: []string{"5.7.60"},
			d: Decision{Action: Fail,
				Advice: "the mailbox has no permission to send as this From address"}},
	}
	// Microsoft 365 continuous-error throttling [ms-cet].
	for _, c := range []struct{ enh, why string }{
		{"5.2.251", "mailbox full"},
		{"5.2.252", "send as denied"},
		{"5.2.253", "invalid license"},
		{"5.2.254", "too many recipients"},
		{"5.2.255", "invalid recipients"},
	} {
		t = append(t, rule{
			name: "microsoft365/continuous-error-throttling-" + c.enh[len("5.2."):], provider: Microsoft365, class: 5,
			enhanced: []string{c.enh},
			d: Decision{Action: Pause, Wait: ContinuousErrorPause, Throttled: true,
				Advice: "Microsoft 365 throttles this mailbox after continuous " + c.why + " errors; fix the cause; sending is paused for an hour"},
		})
	}
	t = append(t, []rule{
		// Google [g-lim], [g-err], [g-relay].
		{name: "google/daily-user-limit", provider: Google,
			markers: []string{"daily user sending limit exceeded"},
			d: Decision{Action: Pause, Wait: DailyWindow, Throttled: true,
				Advice: "Google's daily sending limit for this user is reached (2,000 messages, 500 on a trial, 10,000 recipients); sending is paused for 24 hours"}},
		{name: "google/daily-relay-limit", provider: Google,
			markers: []string{"daily smtp relay limit exceeded"},
			d: Decision{Action: Pause, Wait: DailyWindow, Throttled: true,
				Advice: "Google's daily SMTP relay limit is reached; sending is paused for 24 hours"}},
		{name: "google/peak-relay-limit", provider: Google, class: 4,
			markers: []string{"peak smtp relay limit exceeded"},
			d: Decision{Action: Retry, Wait: PeakRelayWait, Throttled: true,
				Advice: "Google's SMTP relay is deferring mail for this customer for a while (peak relay limit)"}},
		{name: "google/try-again-later", provider: Google, codes: []int{421},
			markers: []string{"try again later, closing connection"},
			d: Decision{Action: Retry, Wait: TryAgainLaterWait, Throttled: true, Closing: true,
				Advice: "Google refused the session for now (421 4.7.0 try again later)"}},
		{name: "google/too-many-login-attempts", provider: Google, class: 4,
			markers: []string{"too many login attempts"},
			d: Decision{Action: Pause, Wait: LoginAttemptsPause, Throttled: true,
				Advice: "Google blocks logins for this account after too many attempts; sending is paused for 10 minutes"}},
		{name: "google/app-password-required", provider: Google, class: 5,
			markers: []string{"application-specific password required"},
			d: Decision{Action: Fail,
				Advice: "Google requires an app password (or OAuth2) for this account, which has 2-Step Verification"}},
		{name: "google/web-login-required", provider: Google, class: 5,
			enhanced: []string{"5.7.14"},
			d: Decision{Action: Fail,
				Advice: "Google wants this account to sign in through a web browser first"}},
		{name: "google/token-rejected", provider: Google, class: 5, oauth2: 1,
			enhanced: []string{"5.7.8"},
			d:        Decision{Action: Reauth}},
		{name: "google/bad-credentials", provider: Google, class: 5, oauth2: -1,
			enhanced: []string{"5.7.8"},
			d: Decision{Action: Fail,
				Advice: "Google did not accept the username and password"}},
		{name: "google/recipient-rate", provider: Google, class: 4,
			markers: []string{"receiving mail too quickly", "receiving mail at a rate"},
			d:       Decision{Action: Retry, Wait: RecipientRateWait}},

		// Amazon SES [ses-q], [ses-b].
		{name: "ses/max-send-rate", provider: SES, class: 4,
			markers: []string{"maximum sending rate exceeded"},
			d: Decision{Action: Retry, Wait: SESRateWait, Throttled: true,
				Advice: "Amazon SES's maximum sending rate for the account is exceeded; lower messagesPerMinute to the account's rate"}},
		{name: "ses/daily-quota", provider: SES,
			markers: []string{"daily message quota exceeded"},
			d: Decision{Action: Pause, Wait: DailyWindow, Throttled: true,
				Advice: "Amazon SES's daily sending quota for the account is reached; sending is paused for 24 hours"}},
		{name: "ses/idle-timeout", provider: SES, class: 4,
			markers: []string{"timeout waiting for data from client"},
			d: Decision{Action: Retry, Closing: true,
				Advice: "Amazon SES closed a session left idle; keep pooled sessions idle for less than 10 seconds"}},
		{name: "ses/too-many-recipients", provider: SES, class: 5,
			markers: []string{"recipient count exceeds"},
			d: Decision{Action: Fail,
				Advice: "Amazon SES accepts at most 50 recipients per message; set maxRecipientsPerMessage to 50"}},
		{name: "ses/address-not-verified", provider: SES, class: 5,
			markers: []string{"email address is not verified", "address not verified"},
			d: Decision{Action: Fail,
				Advice: "Amazon SES sends only from verified addresses or domains (and, in the sandbox, only to verified ones)"}},

		// RFC 5321 §4.5.3.1.10: a limit on recipients per transaction is
		// 452 (4.5.3), and the client should also be prepared for 552.
		{name: "rfc5321/too-many-recipients", codes: []int{452}, stages: on(StageRcpt), needsStage: true,
			enhanced: []string{"", "4.5.3"},
			d:        Decision{Action: Split}},
		{name: "rfc5321/too-many-recipients", codes: []int{452, 552}, stages: on(StageRcpt), needsStage: true,
			markers: []string{"too many recipients"},
			d:       Decision{Action: Split}},
		{name: "rfc5321/too-many-recipients", codes: []int{552}, stages: on(StageRcpt), needsStage: true,
			enhanced: []string{"5.5.3"},
			d:        Decision{Action: Split}},
		{name: "rfc5321/too-many-recipients", codes: []int{452}, enhanced: []string{"4.5.3"},
			markers: []string{"too many recipients", "separate transaction"},
			d:       Decision{Action: Split}},

		// Unrecognised 4xx that speak of a limit.
		{name: "generic/throttled", class: 4,
			markers: []string{"throttl", "rate limit", "too many connections", "too many concurrent", "too fast", "too quickly", "too many messages"},
			d:       Decision{Action: Retry, Wait: GenericThrottleWait, Throttled: true}},
		// A rejected OAuth2 token on a server we do not know.
		{name: "generic/token-rejected", codes: []int{535}, oauth2: 1, stages: on(StageAuth),
			d: Decision{Action: Reauth}},
	}...)
	return t
}()
