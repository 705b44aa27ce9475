// Package provider holds the documented sending limits of the providers
// an Email Connection can name (issue 14): Microsoft 365, Google and
// Amazon SES. The names are one vocabulary with the OAuth2 presets of the
// root package. Each figure carries its source; where a provider
// publishes none, the field is zero and the comment says why.
//
// The limits are defaults: every field of a connection's configuration
// that is set wins over the provider's (Limits.Override).
package provider

import "time"

// The provider names.
const (
	Microsoft365 = "microsoft365"
	Google       = "google"
	SES          = "ses"
)

// Limits are the sending limits of one connection. The zero value of each
// field means no limit (and, for IdleTimeout, that the server's idle
// timeout is unknown).
type Limits struct {
	// MaxSessions is the number of SMTP sessions open at once.
	MaxSessions int
	// MessagesPerMinute is the number of messages started (MAIL FROM) in
	// any 60 seconds.
	MessagesPerMinute int
	// MaxRecipientsPerMessage is the number of recipients per message;
	// the sender sends the rest in following transactions.
	MaxRecipientsPerMessage int
	// MessagesPerDay is the number of messages in any 24 hours.
	MessagesPerDay int
	// RecipientsPerDay is the number of recipients, counted once per
	// message, in any 24 hours.
	RecipientsPerDay int
	// IdleTimeout is how long the server lets a session idle before it
	// closes it; pooled sessions must idle for less.
	IdleTimeout time.Duration
}

// Sources of the figures, verified on 1 December 2026 unless said otherwise.
const (
	// SourceMicrosoftSubmission: 3 concurrent connections, 30 messages a
	// minute, 10,000 recipients a day for SMTP AUTH submission.
	SourceMicrosoftSubmission = "https://learn.microsoft.com/en-us/exchange/troubleshoot/send-emails/smtp-submission-improvements"
	// SourceMicrosoftLimits: 500 recipients per message (the Exchange
	// Online default, which a tenant can set from 1 to 1,000). Not
	// reached directly; several institutions' pages quote this table.
	SourceMicrosoftLimits = "https://learn.microsoft.com/en-us/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits"
	// SourceGoogle: 2,000 messages a day (500 on a trial), 10,000
	// recipients a day, 100 recipients per message through smtp.gmail.com
	// or smtp-relay.gmail.com; the limits roll over 24 hours.
	SourceGoogle = "https://support.google.com/a/answer/166852"
	// SourceSESQuotas: sending quotas count recipients, not messages; a
	// sandbox account sends 200 a day at 1 a second; out of the sandbox
	// both vary per account.
	SourceSESQuotas = "https://docs.aws.amazon.com/ses/latest/dg/quotas.html"
	// SourceSESRecipients: at most 50 recipients per message (To, Cc and
	// Bcc together), stated in the SendEmail/SendRawEmail API reference;
	// through SMTP a larger message draws "554 Transaction failed:
	// Recipient count exceeds 50" (github.com/thewca/worldcubeassociation.org
	// issue 9467 quotes the reply).
	SourceSESRecipients = "https://docs.aws.amazon.com/sdkfornet/v3/apidocs/items/SimpleEmail/MISimpleEmailServiceSendEmailSendEmailRequest.html"
	// SourceSESSMTP: the SMTP endpoint closes a session idle for 10
	// seconds ("451 4.4.2 Timeout waiting for data from client"). Not
	// verified: the page was not reachable through our search; the figure
	// comes from the issue and production.md §2.
	SourceSESSMTP = "https://docs.aws.amazon.com/ses/latest/dg/troubleshoot-smtp.html"
)

// GoogleTrialMessagesPerDay is Google's daily message limit for a
// Workspace trial account (SourceGoogle); set MessagesPerDay to it for a
// trial.
const GoogleTrialMessagesPerDay = 500

var defaults = map[string]Limits{
	Microsoft365: {
		MaxSessions:             3,      // SourceMicrosoftSubmission
		MessagesPerMinute:       30,     // SourceMicrosoftSubmission: excess is delayed, not refused
		RecipientsPerDay:        10_000, // SourceMicrosoftSubmission: then 554 5.2.0 ...SubmissionQuotaExceededException
		MaxRecipientsPerMessage: 500,    // SourceMicrosoftLimits (tenant-adjustable)
		// MessagesPerDay: none published for SMTP AUTH; the recipient
		// limit binds first.
		// IdleTimeout: not published.
	},
	Google: {
		MaxRecipientsPerMessage: 100,    // SourceGoogle: per message sent via SMTP
		MessagesPerDay:          2_000,  // SourceGoogle (GoogleTrialMessagesPerDay on a trial)
		RecipientsPerDay:        10_000, // SourceGoogle: total recipients per day
		// MaxSessions, MessagesPerMinute: not published.
	},
	SES: {
		MaxRecipientsPerMessage: 50,               // SourceSESRecipients
		IdleTimeout:             10 * time.Second, // SourceSESSMTP (unverified)
		// MessagesPerMinute, MessagesPerDay: per account and per region,
		// with no fixed default out of the sandbox (SourceSESQuotas). We
		// set none: a sandbox figure (60 a minute, 200 a day) would cut
		// a production account to a fraction of its rate, while sending
		// too fast only draws "454 Throttling failure: Maximum sending
		// rate exceeded", which is retried after a second. Set
		// MessagesPerMinute to 60 × the account's MaxSendRate (SES
		// GetSendQuota); SES counts recipients, so divide by the usual
		// recipients per message.
	},
}

// Known reports whether name is a provider with defaults. The empty name
// (no provider) is not known.
func Known(name string) bool {
	_, ok := defaults[name]
	return ok
}

// Defaults returns the documented limits of the named provider, and false
// (with zero Limits) for the empty name or an unknown one.
func Defaults(name string) (Limits, bool) {
	l, ok := defaults[name]
	return l, ok
}

// Override returns l with every non-zero field of o in place of l's.
// A configuration sets o; l is the provider's defaults.
func (l Limits) Override(o Limits) Limits {
	if o.MaxSessions != 0 {
		l.MaxSessions = o.MaxSessions
	}
	if o.MessagesPerMinute != 0 {
		l.MessagesPerMinute = o.MessagesPerMinute
	}
	if o.MaxRecipientsPerMessage != 0 {
		l.MaxRecipientsPerMessage = o.MaxRecipientsPerMessage
	}
	if o.MessagesPerDay != 0 {
		l.MessagesPerDay = o.MessagesPerDay
	}
	if o.RecipientsPerDay != 0 {
		l.RecipientsPerDay = o.RecipientsPerDay
	}
	if o.IdleTimeout != 0 {
		l.IdleTimeout = o.IdleTimeout
	}
	return l
}
