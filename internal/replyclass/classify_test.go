package replyclass

import (
	"fmt"
	"testing"
	"time"
)

type want struct {
	action    Action
	rule      string
	wait      time.Duration
	throttled bool
	closing   bool
}

// A case per row, with the providers' exact texts where they publish them.
var cases = []struct {
	name  string
	reply Reply
	want  want
}{
	// Microsoft 365.
	{"issue14/ms-432-concurrent", Reply{Code: 432, Text: "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information. [Hostname=DM4PR18MB4126.namprd18.prod.outlook.com]", Stage: StageMail, Provider: Microsoft365},
		want{Retry, "microsoft365/concurrent-connections", ConcurrencyWait, true, false}},
	{"issue14/ms-432-concurrent-singular", Reply{Code: 432, Text: "4.3.2 concurrent connection limit exceeded", Provider: ""},
		want{Retry, "microsoft365/concurrent-connections", ConcurrencyWait, true, false}},
	{"issue14/ms-sender-thread", Reply{Code: 432, Text: "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded [Hostname=x]", Stage: StageAfterDot, Provider: Microsoft365},
		want{Retry, "microsoft365/sender-thread-limit", ConcurrencyWait, true, false}},
	{"issue14/ms-sender-thread-452", Reply{Code: 452, Text: "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", Stage: StageRcpt, Provider: Microsoft365},
		want{Retry, "microsoft365/sender-thread-limit", ConcurrencyWait, true, false}},
	{"issue14/ms-daily-recipients", Reply{Code: 554, Text: "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message [BeginDiagnosticData]", Stage: StageAfterDot, Provider: Microsoft365},
		want{Pause, "microsoft365/daily-recipient-limit", DailyWindow, true, false}},
	{"issue14/ms-mailbox-full", Reply{Code: 554, Text: "5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded", Stage: StageAfterDot, Provider: Microsoft365},
		want{Fail, "microsoft365/sending-mailbox-full", 0, false, false}},
	{"issue14/ms-cet-251", Reply{Code: 550, Text: "5.2.251 Sender throttled due to continuous mailbox full errors.", Provider: Microsoft365},
		want{Pause, "microsoft365/continuous-error-throttling-251", ContinuousErrorPause, true, false}},
	{"issue14/ms-cet-252", Reply{Code: 550, Text: "5.2.252 Sender throttled due to continuous send as denied errors.", Provider: Microsoft365},
		want{Pause, "microsoft365/continuous-error-throttling-252", ContinuousErrorPause, true, false}},
	{"issue14/ms-cet-253", Reply{Code: 550, Text: "5.2.253 Sender throttled due to continuous invalid license errors.", Provider: Microsoft365},
		want{Pause, "microsoft365/continuous-error-throttling-253", ContinuousErrorPause, true, false}},
	{"issue14/ms-cet-254", Reply{Code: 550, Text: "5.2.254 Sender throttled due to continuous too many recipients errors.", Stage: StageRcpt, Provider: Microsoft365},
		want{Pause, "microsoft365/continuous-error-throttling-254", ContinuousErrorPause, true, false}},
	{"issue14/ms-cet-255", Reply{Code: 550, Text: "5.2.255 Sender throttled due to continuous invalid recipients errors.", Stage: StageMail, Provider: Microsoft365},
		want{Pause, "microsoft365/continuous-error-throttling-255", ContinuousErrorPause, true, false}},
	{"issue14/ms-smtp-auth-disabled-tenant", Reply{Code: 535, Text: "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.", Stage: StageAuth, Provider: Microsoft365},
		want{Fail, "microsoft365/smtp-auth-disabled-tenant", 0, false, false}},
	{"issue14/ms-security-defaults", Reply{Code: 535, Text: "5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator.", Stage: StageAuth, Provider: Microsoft365},
		want{Fail, "microsoft365/security-defaults", 0, false, false}},
	{"issue14/ms-5.7.139-other", Reply{Code: 535, Text: "5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator.", Stage: StageAuth, Provider: Microsoft365, OAuth2: true},
		want{Fail, "microsoft365/smtp-auth-refused", 0, false, false}},
	{"issue14/ms-basic-auth-5.7.30", Reply{Code: 550, Text: "5.7.30 Basic authentication is not supported for Client Submission.", Stage: StageAuth, Provider: Microsoft365},
		want{Fail, "microsoft365/basic-auth-disabled", 0, false, false}},
	{"issue14/ms-basic-auth-text", Reply{Code: 535, Text: "Basic authentication is not supported for Client Submission", Stage: StageAuth, Provider: Microsoft365},
		want{Fail, "microsoft365/basic-auth-disabled", 0, false, false}},
	{"issue14/ms-5.7.3-oauth2", Reply{Code: 535, Text: "5.7.3 Authentication unsuccessful [SN4PR0201CA0047.namprd02.prod.outlook.com]", Stage: StageAuth, Provider: Microsoft365, OAuth2: true},
		want{Reauth, "microsoft365/token-rejected", 0, false, false}},
	{"issue14/ms-5.7.3-password", Reply{Code: 535, Text: "5.7.3 Authentication unsuccessful", Stage: StageAuth, Provider: Microsoft365},
		want{Fail, "microsoft365/auth-unsuccessful", 0, false, false}},
	{"issue14/ms-5.7.57", Reply{Code: 530, Text: "5.7.57 Client not authenticated to send mail. [x]", Stage: StageMail, Provider: Microsoft365},
		want{Fail, "microsoft365/not-authenticated", 0, false, false}},
	{"issue14/ms-5.7.60", Reply{Code: 550, Text: "5.7.60 SMTP; Client does not have permissions to send as this sender", Stage: StageAfterDot, Provider: Microsoft365},
		want{Fail, "microsoft365/send-as-denied", 0, false, false}},

	// Google.
	{"issue14/google-daily-user", Reply{Code: 550, Text: "5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852 - gsmtp", Stage: StageAfterDot, Provider: Google},
		want{Pause, "google/daily-user-limit", DailyWindow, true, false}},
	{"issue14/google-daily-relay-user", Reply{Code: 550, Text: "5.4.5 Daily SMTP relay limit exceeded for user. For more information on SMTP relay sending limits please contact your administrator - gsmtp", Stage: StageMail, Provider: Google},
		want{Pause, "google/daily-relay-limit", DailyWindow, true, false}},
	{"issue14/google-daily-relay-customer", Reply{Code: 550, Text: "5.7.1 Daily SMTP relay limit exceeded for customer.", Provider: Google},
		want{Pause, "google/daily-relay-limit", DailyWindow, true, false}},
	{"issue14/google-peak-relay", Reply{Code: 450, Text: "4.2.1 Peak SMTP relay limit exceeded for customer. This is a temporary error.", Stage: StageRcpt, Provider: Google},
		want{Retry, "google/peak-relay-limit", PeakRelayWait, true, false}},
	{"issue14/google-421-try-again", Reply{Code: 421, Text: "4.7.0 Try again later, closing connection. (EHLO) a1-20020a05 - gsmtp", Stage: StageHello, Provider: Google},
		want{Retry, "google/try-again-later", TryAgainLaterWait, true, true}},
	{"issue14/google-454-login-attempts", Reply{Code: 454, Text: "4.7.0 Too many login attempts, please try again later. a1-20020a05 - gsmtp", Stage: StageAuth, Provider: Google},
		want{Pause, "google/too-many-login-attempts", LoginAttemptsPause, true, false}},
	{"issue14/google-app-password", Reply{Code: 534, Text: "5.7.9 Application-specific password required. Learn more at https://support.google.com/mail/?p=InvalidSecondFactor - gsmtp", Stage: StageAuth, Provider: Google},
		want{Fail, "google/app-password-required", 0, false, false}},
	{"issue14/google-web-login", Reply{Code: 534, Text: "5.7.14 <https://accounts.google.com/signin/continue?x> Please log in via your web browser and then try again. - gsmtp", Stage: StageAuth, Provider: Google},
		want{Fail, "google/web-login-required", 0, false, false}},
	{"issue14/google-5.7.8-oauth2", Reply{Code: 535, Text: "5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials - gsmtp", Stage: StageAuth, Provider: Google, OAuth2: true},
		want{Reauth, "google/token-rejected", 0, false, false}},
	{"issue14/google-5.7.8-password", Reply{Code: 535, Text: "5.7.8 Username and Password not accepted. - gsmtp", Stage: StageAuth, Provider: Google},
		want{Fail, "google/bad-credentials", 0, false, false}},
	{"issue14/google-recipient-rate", Reply{Code: 450, Text: "4.2.1 The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time.", Stage: StageRcpt, Provider: Google},
		want{Retry, "google/recipient-rate", RecipientRateWait, false, false}},
	{"issue14/google-recipient-rate-2", Reply{Code: 450, Text: "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered.", Stage: StageRcpt, Provider: Google},
		want{Retry, "google/recipient-rate", RecipientRateWait, false, false}},
	{"issue14/google-452-too-many", Reply{Code: 452, Text: "4.5.3 Your message has too many recipients. For more information regarding Google's sending limits, visit https://support.google.com/mail/?p=TooManyRecipientsError - gsmtp", Stage: StageRcpt, Provider: Google},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/google-452-domain-policy", Reply{Code: 452, Text: "4.5.3 Domain policy size per transaction exceeded, please try this recipient in a separate transaction.", Provider: Google},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},

	// Amazon SES.
	{"issue14/ses-max-rate", Reply{Code: 454, Text: "Throttling failure: Maximum sending rate exceeded", Stage: StageData, Provider: SES},
		want{Retry, "ses/max-send-rate", SESRateWait, true, false}},
	{"issue14/ses-daily-quota", Reply{Code: 454, Text: "Throttling failure: Daily message quota exceeded", Stage: StageData, Provider: SES},
		want{Pause, "ses/daily-quota", DailyWindow, true, false}},
	{"issue14/ses-idle", Reply{Code: 451, Text: "4.4.2 Timeout waiting for data from client.", Stage: StageMail, Provider: SES},
		want{Retry, "ses/idle-timeout", 0, false, true}},
	{"issue14/ses-recipient-count", Reply{Code: 554, Text: "Transaction failed: Recipient count exceeds 50.", Stage: StageAfterDot, Provider: SES},
		want{Fail, "ses/too-many-recipients", 0, false, false}},
	{"issue14/ses-not-verified", Reply{Code: 554, Text: "Message rejected: Email address is not verified. The following identities failed the check in region US-EAST-1: a@example.com", Stage: StageAfterDot, Provider: SES},
		want{Fail, "ses/address-not-verified", 0, false, false}},

	// RFC 5321 and the generic classes.
	{"issue14/rfc-452-4.5.3-rcpt", Reply{Code: 452, Text: "4.5.3 Too many recipients", Stage: StageRcpt},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/rfc-452-bare-rcpt", Reply{Code: 452, Text: "Too many recipients", Stage: StageRcpt},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/rfc-452-no-text-rcpt", Reply{Code: 452, Stage: StageRcpt},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/rfc-552-5.5.3-rcpt", Reply{Code: 552, Text: "5.5.3 Recipient limit reached", Stage: StageRcpt},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/rfc-552-text-rcpt", Reply{Code: 552, Text: "5.7.1 too many recipients for this message", Stage: StageRcpt},
		want{Split, "rfc5321/too-many-recipients", 0, false, false}},
	{"issue14/rfc-452-4.2.2-rcpt-is-retry", Reply{Code: 452, Text: "4.2.2 The email account that you tried to reach is over quota.", Stage: StageRcpt},
		want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-452-mail-is-retry", Reply{Code: 452, Text: "Insufficient system storage", Stage: StageMail},
		want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-452-unknown-stage-is-retry", Reply{Code: 452, Text: "Insufficient system storage"},
		want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-421", Reply{Code: 421, Text: "4.3.2 Service shutting down", Stage: StageMail},
		want{Retry, "rfc5321/4xx", 0, false, true}},
	{"issue14/rfc-450", Reply{Code: 450, Text: "4.2.0 Mailbox unavailable", Stage: StageRcpt}, want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-451", Reply{Code: 451, Text: "4.3.0 Local error in processing", Stage: StageAfterDot}, want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-454", Reply{Code: 454, Text: "4.7.0 Temporary authentication failure", Stage: StageAuth}, want{Retry, "rfc5321/4xx", 0, false, false}},
	{"issue14/rfc-550", Reply{Code: 550, Text: "5.1.1 User unknown", Stage: StageRcpt}, want{Fail, "rfc5321/5xx", 0, false, false}},
	{"issue14/rfc-250", Reply{Code: 250, Text: "2.0.0 OK queued"}, want{Proceed, "rfc5321/2xx-3xx", 0, false, false}},
	{"issue14/rfc-354", Reply{Code: 354, Text: "Start mail input", Stage: StageData}, want{Proceed, "rfc5321/2xx-3xx", 0, false, false}},
	{"issue14/generic-throttled-421", Reply{Code: 421, Text: "4.7.0 Too many connections from your IP", Stage: StageGreeting},
		want{Retry, "generic/throttled", GenericThrottleWait, true, true}},
	{"issue14/generic-throttled-451", Reply{Code: 451, Text: "Rate limit exceeded, slow down", Stage: StageMail},
		want{Retry, "generic/throttled", GenericThrottleWait, true, false}},
	{"issue14/generic-token-rejected", Reply{Code: 535, Text: "Authentication failed", Stage: StageAuth, OAuth2: true},
		want{Reauth, "generic/token-rejected", 0, false, false}},
	{"issue14/generic-535-password", Reply{Code: 535, Text: "Authentication failed", Stage: StageAuth},
		want{Fail, "rfc5321/5xx", 0, false, false}},
	{"issue14/malformed-0", Reply{Code: 0, Text: "garbage"}, want{Fail, "malformed", 0, false, false}},
	{"issue14/malformed-199", Reply{Code: 199}, want{Fail, "malformed", 0, false, false}},
	{"issue14/malformed-600", Reply{Code: 600}, want{Fail, "malformed", 0, false, false}},
	{"issue14/malformed-negative", Reply{Code: -421}, want{Fail, "malformed", 0, false, false}},

	// Providers and enhanced codes.
	{"issue14/other-provider-skips-google-row", Reply{Code: 550, Text: "5.4.5 Daily user sending limit exceeded", Provider: SES},
		want{Fail, "rfc5321/5xx", 0, false, false}},
	{"issue14/unknown-provider-name-matches-all", Reply{Code: 550, Text: "5.4.5 Daily user sending limit exceeded", Provider: "yahoo"},
		want{Pause, "google/daily-user-limit", DailyWindow, true, false}},
	{"issue14/enhanced-field-wins", Reply{Code: 535, Enhanced: "5.7.139", Text: "Authentication unsuccessful", Provider: Microsoft365},
		want{Fail, "microsoft365/smtp-auth-refused", 0, false, false}},
	{"issue14/invalid-enhanced-field-ignored", Reply{Code: 550, Enhanced: "9.2.251", Text: "denied", Provider: Microsoft365},
		want{Fail, "rfc5321/5xx", 0, false, false}},
	{"issue14/case-insensitive-markers", Reply{Code: 454, Text: "THROTTLING FAILURE: MAXIMUM SENDING RATE EXCEEDED", Provider: SES},
		want{Retry, "ses/max-send-rate", SESRateWait, true, false}},
}

func TestIssue14_30_ClassifyTable(t *testing.T) {
	hit := map[int]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, row := classify(c.reply)
			hit[row] = true
			got := want{d.Action, d.Rule, d.Wait, d.Throttled, d.Closing}
			if got != c.want {
				t.Errorf("Classify(%+v) = %+v, want %+v", c.reply, got, c.want)
			}
			if d.Action != Proceed && d.Action != Reauth && d.Rule != "rfc5321/4xx" && d.Rule != "rfc5321/5xx" &&
				d.Rule != "rfc5321/too-many-recipients" && d.Rule != "generic/throttled" && d.Rule != "google/recipient-rate" && d.Advice == "" {
				t.Errorf("Classify(%+v): a provider row without Advice", c.reply)
			}
		})
	}
	for i, r := range table {
		if !hit[i] {
			t.Errorf("no case exercises row %d (%q)", i, r.name)
		}
	}
}

func TestIssue14_31_Until(t *testing.T) {
	at := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC)
	d := Classify(Reply{Code: 550, Text: "5.4.5 Daily user sending limit exceeded", Provider: Google})
	if got, want := d.Until(at), at.Add(24*time.Hour); !got.Equal(want) {
		t.Errorf("Until = %v, want %v", got, want)
	}
	if got := (Decision{}).Until(at); !got.Equal(at) {
		t.Errorf("zero Decision Until = %v, want %v", got, at)
	}
}

func TestIssue14_32_ParseEnhanced(t *testing.T) {
	for _, c := range []struct{ in, enh, rest string }{
		{"4.3.2 Concurrent", "4.3.2", "Concurrent"},
		{"  5.7.139 Authentication", "5.7.139", "Authentication"},
		{"5.2.0", "5.2.0", ""},
		{"2.0.0\tOK", "2.0.0", "OK"},
		{"Throttling failure", "", "Throttling failure"},
		{"3.1.1 no", "", "3.1.1 no"},
		{"5.1234.1 x", "", "5.1234.1 x"},
		{"5..1 x", "", "5..1 x"},
		{"5.1.a x", "", "5.1.a x"},
		{"45.1.1 x", "", "45.1.1 x"},
		{"", "", ""},
	} {
		enh, rest := ParseEnhanced(c.in)
		if enh != c.enh || rest != c.rest {
			t.Errorf("ParseEnhanced(%q) = %q, %q; want %q, %q", c.in, enh, rest, c.enh, c.rest)
		}
	}
}

func TestIssue14_33_Names(t *testing.T) {
	for s := StageUnknown; s <= StageQuit; s++ {
		if n := s.String(); n != stageNames[s] {
			t.Errorf("Stage(%d).String() = %q", s, n)
		}
	}
	if got := Stage(200).String(); got != "stage(200)" {
		t.Errorf("Stage(200) = %q", got)
	}
	for a := Proceed; a <= Fail; a++ {
		if a.String() == fmt.Sprintf("action(%d)", a) {
			t.Errorf("Action(%d) has no name", a)
		}
	}
	if got := Action(9).String(); got != "action(9)" {
		t.Errorf("Action(9) = %q", got)
	}
}
