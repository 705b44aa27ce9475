// Package replyclass turns an SMTP reply into a decision: go on, retry
// after a delay, send the refused recipients in a further transaction,
// re-authorize, pause the whole connection until a time, or fail. It knows
// the throttling and quota replies of Microsoft 365, Google and Amazon SES
// (issue 14) and falls back on RFC 5321's reply classes for the rest.
//
// Classify is a pure function: the same Reply always gives the same
// Decision, whatever the time; Decision.Until turns a wait into an instant
// given when the reply arrived. It never panics and always returns a
// decision, on any input.
//
// # Time windows
//
// The daily quotas of all three providers are rolling 24-hour windows, not
// a reset at a fixed hour: Google says "limits per day are applied over a
// rolling 24-hour period, not a set time of day"
// (https://support.google.com/a/answer/166852), SES counts "the maximum
// amount of email you can send in a 24-hour period"
// (https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas-errors.html),
// and Microsoft's recipient rate limit is per 24 hours. The client cannot
// see the server's count (other clients of the mailbox add to it), so it
// cannot know when the oldest counted message leaves the window; the one
// end that is certain is 24 hours after the refusal. A daily-quota decision
// therefore pauses for DailyWindow. The sender's own count of what it sent
// (throttle.Quota) keeps it from reaching the cap in the first place; it
// cannot end a pause early, since the provider's count may hold more.
//
// Microsoft does not publish how long continuous-error throttling lasts
// ("for a period of time",
// https://learn.microsoft.com/en-us/Exchange/mail-flow-best-practices/continuous-error-throttling-smtp-auth-submissions);
// ContinuousErrorPause is our choice, long enough not to feed the
// throttle, short enough to notice a fixed mailbox the same hour.
package replyclass
