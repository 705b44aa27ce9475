package emailconn_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// sendKey marks the context SendStart returned.
type sendKey struct{}

// seamLog records every hook of a Trace with whether its context is the
// one SendStart returned.
type seamLog struct {
	mu       sync.Mutex
	events   []string
	foreign  []string // hooks of a send called without the send's context
	sessions int      // the sum of SessionsChanged's deltas
	refresh  []emailconn.TokenInfo
}

func (l *seamLog) add(ctx context.Context, inSend bool, format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := fmt.Sprintf(format, a...)
	l.events = append(l.events, ev)
	if inSend && ctx.Value(sendKey{}) == nil {
		l.foreign = append(l.foreign, ev)
	}
}

func (l *seamLog) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, "\n")
}

func (l *seamLog) trace() *emailconn.Trace {
	return &emailconn.Trace{
		SendStart: func(ctx context.Context, conn, server string) context.Context {
			l.add(ctx, false, "start %s %s", conn, server)
			return context.WithValue(ctx, sendKey{}, conn)
		},
		SendDone: func(ctx context.Context, conn string, attempts int, took time.Duration, err error) {
			l.add(ctx, true, "done %s attempts=%d took>0=%v err=%v", conn, attempts, took > 0, err)
		},
		Retrying: func(ctx context.Context, conn string, attempt int, wait time.Duration, err error) {
			l.add(ctx, true, "retry %s attempt=%d wait>0=%v err=%v", conn, attempt, wait > 0, err)
		},
		LimitWaited: func(ctx context.Context, conn, limit string, waited time.Duration) {
			l.add(ctx, true, "wait %s %s %v", conn, limit, waited > 0)
		},
		SessionsChanged: func(ctx context.Context, conn string, delta int) {
			l.mu.Lock()
			l.sessions += delta
			l.mu.Unlock()
			l.add(ctx, delta > 0, "sessions %s %+d", conn, delta)
		},
		StageDone: func(ctx context.Context, r emailconn.StageResult) {
			l.add(ctx, true, "stage %s %s start=%v err=%v", r.Stage, r.Outcome, !r.Start.IsZero(), r.Err)
		},
		Connected:       func(ctx context.Context, a string) { l.add(ctx, true, "connected") },
		Greeting:        func(ctx context.Context, text string) { l.add(ctx, true, "greeting") },
		Capabilities:    func(ctx context.Context, ext []string) { l.add(ctx, true, "capabilities") },
		Authenticated:   func(ctx context.Context, mech string) { l.add(ctx, true, "auth %s", mech) },
		TransactionDone: func(ctx context.Context, t emailconn.TransactionInfo) { l.add(ctx, true, "tx accepted=%d", t.Accepted) },
		TokenFetched: func(ctx context.Context, i emailconn.TokenInfo) {
			l.add(ctx, true, "token %s err=%v", i.OAuth2Config, i.Err)
		},
		TLSHandshakeDone: nil,
		TokenRefreshed: func(ctx context.Context, i emailconn.TokenInfo) {
			l.mu.Lock()
			l.refresh = append(l.refresh, i)
			l.mu.Unlock()
			l.add(ctx, true, "refreshed %s err=%v", i.OAuth2Config, i.Err)
		},
	}
}

// TestIssue18_TraceSendHooks: every hook of a send is given the context
// SendStart returned; SendDone reports the attempts, the duration and the
// send's own error; SessionsChanged counts the sessions the pool holds,
// down to zero after Close; a retry is reported before it waits.
func TestIssue18_TraceSendHooks(t *testing.T) {
	t.Parallel()
	t.Run("issue18/accepted-and-refused", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: smtptest.AfterDot, Reply: "554 5.7.1 no", Session: 1, Times: 1}}})
		l := &seamLog{}
		c := connFor(t, srv, "none")
		c.Name = "alerts"
		s := mustSender(t, c, &emailconn.Options{Trace: l.trace()})
		_, err := s.Send(context.Background(), basicMessage())
		if !errors.Is(err, emailconn.ErrRefused) {
			t.Fatalf("first Send = %v, want ErrRefused", err)
		}
		if _, err := s.Send(context.Background(), basicMessage()); err != nil {
			t.Fatalf("second Send = %v", err)
		}
		if _, err := s.Send(context.Background(), &emailconn.Message{Subject: "no recipient"}); !errors.Is(err, emailconn.ErrInvalid) {
			t.Fatalf("Send without recipients = %v, want ErrInvalid", err)
		}
		s.Close()
		all := l.all()
		for _, want := range []string{
			"start alerts " + srv.Addr(), "sessions alerts +1", "stage connect passed start=true err=<nil>",
			"stage resolve skipped", "stage auth skipped", "done alerts attempts=1 took>0=true err=emailconn: connection \"alerts\"",
			"tx accepted=1", "done alerts attempts=1 took>0=true err=<nil>", "done alerts attempts=0", "sessions alerts -1",
		} {
			if !strings.Contains(all, want) {
				t.Errorf("trace lacks %q:\n%s", want, all)
			}
		}
		if len(l.foreign) > 0 {
			t.Errorf("hooks of a send without its context: %q", l.foreign)
		}
		if l.sessions != 0 {
			t.Errorf("sessions = %d after Close, want 0", l.sessions)
		}
	})
	t.Run("issue18/retry", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{Faults: []smtptest.Fault{{At: "MAIL", Reply: "451 4.3.0 try again", Times: 1}}})
		l := &seamLog{}
		c := connFor(t, srv, "none")
		c.Name = "alerts"
		s := mustSender(t, c, &emailconn.Options{Trace: l.trace(), Retry: emailconn.RetryPolicy{InitialBackoff: time.Millisecond}})
		if _, err := s.Send(context.Background(), basicMessage()); err != nil {
			t.Fatalf("Send = %v", err)
		}
		all := l.all()
		for _, want := range []string{"retry alerts attempt=1 wait>0=true err=emailconn: connection \"alerts\": mail: 451", "done alerts attempts=2 took>0=true err=<nil>"} {
			if !strings.Contains(all, want) {
				t.Errorf("trace lacks %q:\n%s", want, all)
			}
		}
		if len(l.foreign) > 0 {
			t.Errorf("hooks of a send without its context: %q", l.foreign)
		}
	})
}

// TestIssue18_TraceTokenRefreshed: a Registry's token cache reports each
// token request once, with the configuration's name and the new token's
// expiry, in the context of the send that started it; a failed request
// with its classified error. No hook is given the token or a secret.
func TestIssue18_TraceTokenRefreshed(t *testing.T) {
	t.Parallel()
	te := newTokenEndpoint(t)
	srv := xoauth2Server(t)
	l := &seamLog{}
	r := oauthRegistry(t, srv, te, "client_credentials", &emailconn.Options{Trace: l.trace()})
	before := time.Now()
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("send = %v", err)
	}
	if _, err := sendVia(t, r); err != nil {
		t.Fatalf("second send = %v", err)
	}
	l.mu.Lock()
	refresh := append([]emailconn.TokenInfo(nil), l.refresh...)
	l.mu.Unlock()
	if len(refresh) != 1 {
		t.Fatalf("TokenRefreshed called %d times for two sends, want 1: %+v", len(refresh), refresh)
	}
	if i := refresh[0]; i.OAuth2Config != "contoso" || i.Err != nil || i.Duration <= 0 ||
		i.Expiry.Before(before.Add(59*time.Minute)) || i.Expiry.After(time.Now().Add(61*time.Minute)) {
		t.Errorf("TokenRefreshed %+v, want contoso, no error, an expiry in an hour", i)
	}
	if len(l.foreign) > 0 {
		t.Errorf("hooks of a send without its context: %q", l.foreign)
	}
	all := l.all()
	for _, secret := range []string{"tok-1", te.secret} {
		if strings.Contains(all, secret) {
			t.Errorf("a hook was given %q:\n%s", secret, all)
		}
	}

	te2 := newTokenEndpoint(t)
	te2.set(func(te *tokenEndpoint) { te.fail = "invalid_client" })
	l2 := &seamLog{}
	r2 := oauthRegistry(t, srv, te2, "client_credentials", &emailconn.Options{Trace: l2.trace()})
	if _, err := sendVia(t, r2); !errors.Is(err, emailconn.ErrAuthFailed) {
		t.Fatalf("send with a refused client = %v, want ErrAuthFailed", err)
	}
	l2.mu.Lock()
	defer l2.mu.Unlock()
	if len(l2.refresh) != 1 || !errors.Is(l2.refresh[0].Err, emailconn.ErrAuthFailed) || !l2.refresh[0].Expiry.IsZero() {
		t.Errorf("TokenRefreshed %+v, want one ErrAuthFailed without expiry", l2.refresh)
	}
	var e *emailconn.Error
	if len(l2.refresh) == 1 && !errors.As(l2.refresh[0].Err, &e) {
		t.Errorf("TokenRefreshed error %T is not an *Error", l2.refresh[0].Err)
	}
}

// TestIssue18_StageResultErr: Test Connection's stages carry when they
// began and, when one failed, its error (the report's own at the stage
// that ended the test); a restricted report keeps the error to itself.
func TestIssue18_StageResultErr(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	c := emailconn.Connection{Name: "x", MailServer: addr, From: "a@example.com"}
	for _, restricted := range []bool{false, true} {
		rep := runTest(c, &emailconn.TestOptions{Restricted: restricted})
		var connect *emailconn.StageResult
		for i := range rep.Stages {
			if rep.Stages[i].Stage == emailconn.StageConnect {
				connect = &rep.Stages[i]
			}
		}
		switch {
		case connect == nil || connect.Outcome != emailconn.OutcomeFailed || connect.Start.IsZero():
			t.Errorf("restricted=%v: connect stage %+v, want failed with its start", restricted, connect)
		case !restricted && (!errors.Is(connect.Err, emailconn.ErrConnect) || connect.Err != rep.Err):
			t.Errorf("connect stage error %v, want the report's ErrConnect %v", connect.Err, rep.Err)
		case restricted && connect.Err != nil:
			t.Errorf("restricted report's connect stage error %v, want nil", connect.Err)
		}
	}
}
