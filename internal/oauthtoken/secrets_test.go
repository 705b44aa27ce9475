package oauthtoken

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestSecretsNeverLeak runs success and failure paths with canary secrets
// and looks for them, raw and base64-encoded, in every printed form.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		secret  = "CANARY-SECRET-c0ffee"
		stored  = "CANARY-RT-STORED-beef"
		rotated = "CANARY-RT-ROTATED-f00d"
		access  = "CANARY-AT-dead"
	)
	canaries := []string{secret, stored, rotated, access}
	var mode atomic.Value
	mode.Store("ok")
	s := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch mode.Load() {
		case "ok":
			writeToken(w, access, 3600, rotated)
		case "echo":
			// A server that echoes what it got, in the description and
			// in the body.
			writeError(w, http.StatusBadRequest, "invalid_request", "got "+r.PostForm.Encode())
		case "html":
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, r.PostForm.Encode())
		}
	})
	clock := newClock()
	cfg := Config{
		Name:         "contoso",
		GrantType:    GrantRefreshToken,
		TokenURL:     s.tokenURL(),
		ClientID:     "client-id",
		ClientSecret: secretFunc(secret),
		RefreshToken: secretFunc(stored),
		AuthStyle:    oauth2.AuthStyleInParams,
		OnRotate: func(_ context.Context, rt string) error {
			return fmt.Errorf("cannot save %q", rt)
		},
		Now: clock.Now,
	}
	c := New(cfg)

	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, nil))
	print := func(v any) {
		for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			fmt.Fprintf(&out, f+"\n", v)
		}
		logger.Info("value", "v", v)
	}

	tok, err := c.Token(context.Background())
	if tok == nil || tok.AccessToken != access {
		t.Fatalf("Token = %v, %v", tok, err)
	}
	print(err) // OnRotate's failure, which quotes the rotated token
	print(cfg)
	print(&cfg)
	print(c)
	print(*c)
	print(Inspect(tok))

	clock.Advance(2 * time.Hour)
	for _, m := range []string{"echo", "html"} {
		mode.Store(m)
		_, err := c.Token(context.Background())
		if err == nil {
			t.Fatalf("mode %s: Token err = nil", m)
		}
		print(err)
		if e, ok := err.(*Error); ok {
			print(*e)
		}
	}

	for _, canary := range canaries {
		for _, form := range []string{canary, base64.StdEncoding.EncodeToString([]byte(canary)),
			base64.RawURLEncoding.EncodeToString([]byte(canary))} {
			if strings.Contains(out.String(), form) {
				t.Errorf("output contains %q (a form of %q):\n%s", form, canary, out.String())
			}
		}
	}
	if !strings.Contains(out.String(), `oauth2 configuration \"contoso\"`) && !strings.Contains(out.String(), `oauth2 configuration "contoso"`) {
		t.Errorf("output does not name the configuration:\n%s", out.String())
	}
}
