package interop

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

// TestChaosClassification makes Mailpit answer MAIL FROM, RCPT TO or AUTH
// with an injected error (its chaos triggers, at 100%) and checks, with
// retries disabled, that each reply reaches the caller classified as the
// reply code says: 4xx temporary, 5xx permanent, both on the *SMTPError
// and on the *Error, with the right sentinel and stage — and that nothing
// is stored.
func TestChaosClassification(t *testing.T) {
	s := setup(t)
	cases := []struct {
		name      string
		chaos     func(trigger) chaos
		code      int
		sentinel  error
		stage     emailconn.Stage
		recipient bool // the reply is a recipient's (in a *RecipientsError)
	}{
		{"MAIL 451", func(tr trigger) chaos { return chaos{Sender: &tr} }, 451, emailconn.ErrRefused, emailconn.StageMail, false},
		{"MAIL 550", func(tr trigger) chaos { return chaos{Sender: &tr} }, 550, emailconn.ErrRefused, emailconn.StageMail, false},
		{"RCPT 452", func(tr trigger) chaos { return chaos{Recipient: &tr} }, 452, emailconn.ErrRecipientRejected, emailconn.StageRcpt, true},
		{"RCPT 550", func(tr trigger) chaos { return chaos{Recipient: &tr} }, 550, emailconn.ErrRecipientRejected, emailconn.StageRcpt, true},
		{"AUTH 454", func(tr trigger) chaos { return chaos{Authentication: &tr} }, 454, emailconn.ErrAuthFailed, emailconn.StageAuth, false},
		{"AUTH 535", func(tr trigger) chaos { return chaos{Authentication: &tr} }, 535, emailconn.ErrAuthFailed, emailconn.StageAuth, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mp := mailpitOf(instChaos).reset(t)
			mp.setChaos(t, tc.chaos(trigger{ErrorCode: tc.code, Probability: 100}))
			snd := newSender(t, s.conn(instChaos, "none"), &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
			_, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"})
			if err == nil {
				t.Fatalf("Send succeeded despite a %d chaos trigger", tc.code)
			}
			wantTemp := tc.code < 500
			if !errors.Is(err, tc.sentinel) {
				t.Errorf("Send error = %v, want %v", err, tc.sentinel)
			}
			var ee *emailconn.Error
			if !errors.As(err, &ee) {
				t.Fatalf("Send error %v is no *Error", err)
			}
			if ee.Stage != tc.stage {
				t.Errorf("Error.Stage = %q, want %q", ee.Stage, tc.stage)
			}
			if ee.Temporary() != wantTemp {
				t.Errorf("Error.Temporary() = %v for reply %d, want %v (error: %v)", ee.Temporary(), tc.code, wantTemp, err)
			}
			if tc.recipient {
				var re *emailconn.RecipientsError
				if !errors.As(err, &re) || len(re.Rejected) != 1 {
					t.Fatalf("Send error %v: want a *RecipientsError with one refused recipient", err)
				}
				if se := re.Rejected[0].Err; se.Code != tc.code || se.Temporary() != wantTemp {
					t.Errorf("RecipientsError.Rejected[0].Err = %v, Temporary %v; want %d, %v", se, se.Temporary(), tc.code, wantTemp)
				}
				if re.Temporary() != wantTemp {
					t.Errorf("RecipientsError.Temporary() = %v, want %v", re.Temporary(), wantTemp)
				}
			}
			var se *emailconn.SMTPError
			if !errors.As(err, &se) {
				t.Errorf("errors.As(%v, *SMTPError) = false: the server's %d reply cannot be reached", err, tc.code)
			} else if se.Code != tc.code || se.Temporary() != wantTemp {
				t.Errorf("SMTPError = %v, Temporary %v; want %d, %v", se, se.Temporary(), tc.code, wantTemp)
			}
			mp.mustBeEmpty(t)
		})
	}
}

// TestChaosRetries checks the retry policy against Mailpit's injected
// errors: a temporary reply is retried until MaxAttempts, a permanent one
// is not retried, and with a 4xx at MAIL FROM on 30% of the attempts every
// message is still delivered exactly once.
func TestChaosRetries(t *testing.T) {
	s := setup(t)
	retry := emailconn.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	for _, tc := range []struct {
		code, attempts int
	}{{451, 3}, {550, 1}} {
		t.Run(fmt.Sprintf("MAIL %d always", tc.code), func(t *testing.T) {
			mp := mailpitOf(instChaos).reset(t)
			mp.setChaos(t, chaos{Sender: &trigger{ErrorCode: tc.code, Probability: 100}})
			logs := &logRecorder{}
			snd := newSender(t, s.conn(instChaos, "none"), &emailconn.Options{Logger: newLogger(logs), Retry: retry})
			if _, err := snd.Send(t.Context(), &emailconn.Message{Subject: "must not arrive", Text: "x"}); err == nil {
				t.Fatalf("Send succeeded despite a %d chaos trigger", tc.code)
			}
			if n := logs.attempts(); n != tc.attempts {
				t.Errorf("%d attempts logged for a %d reply, want %d", n, tc.code, tc.attempts)
			}
			mp.mustBeEmpty(t)
		})
	}

	t.Run("MAIL 451 at 30%", func(t *testing.T) {
		const messages = 30
		mp := mailpitOf(instChaos).reset(t)
		mp.setChaos(t, chaos{Sender: &trigger{ErrorCode: 451, Probability: 30}})
		r := retry
		r.MaxAttempts = 12 // a message fails only if 12 attempts in a row do: 0.3^12 ≈ 5e-7
		snd := newSender(t, s.conn(instChaos, "none"), &emailconn.Options{Retry: r})
		ids := map[string]bool{}
		attempts := 0
		for n := range messages {
			rc, err := snd.Send(t.Context(), &emailconn.Message{Subject: fmt.Sprintf("chaos %02d", n), Text: "x"})
			if err != nil {
				t.Fatalf("Send %d: %v", n, err)
			}
			ids[rc.MessageID] = true
			attempts += rc.Attempts
		}
		t.Logf("%d messages took %d attempts", messages, attempts)
		list := mp.list(t)
		if len(list) != messages {
			t.Errorf("Mailpit stored %d messages, want %d", len(list), messages)
		}
		for _, m := range list {
			if !ids[m.MessageID] {
				t.Errorf("Mailpit stored Message-ID %q, which no receipt names", m.MessageID)
			}
			delete(ids, m.MessageID)
		}
		for id := range ids {
			t.Errorf("Message-ID %s was accepted but not stored", id)
		}
	})
}
