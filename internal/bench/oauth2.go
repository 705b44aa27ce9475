package bench

import (
	"context"
	"testing"

	"github.com/emailconn/emailconn"
)

// oauthRegistry returns a Registry with two STARTTLS connections to the
// TLS sink, one with Basic auth (process "basic") and one with OAuth2
// client credentials against the bench token endpoint (process "oauth2").
func oauthRegistry(e *Env, opts *emailconn.Options) (*emailconn.Registry, error) {
	base := emailconn.Connection{MailServer: e.TLS.Addr, EnableTLS: true, CAFile: e.CAFile, From: From, Username: User}
	basic, oauth := base, base
	basic.Name, basic.Password = "basic", emailconn.Secret(Password)
	oauth.Name, oauth.AuthType, oauth.OAuth2Config = "oauth2", "oauth2", "bench"
	return emailconn.NewRegistry(emailconn.Config{
		Connections: []emailconn.Connection{basic, oauth},
		OAuth2Configs: []emailconn.OAuth2Config{{Name: "bench", GrantType: "client_credentials",
			TokenURL: e.TokenURL, ClientID: "bench-client", ClientSecret: "bench-secret"}},
		Processes: map[string]string{"basic": "basic", "oauth2": "oauth2"},
	}, withRefs(e, opts))
}

// OAuth2Bench returns the benchmark of case 6: Route.Send of the 2 KB
// notification through the "basic" or "oauth2" process of a Registry,
// sequentially. With perSession, every send opens its own session
// (Options.IdleTimeout < 0), so that every send authenticates. It reports
// msg/s, token-requests (to the token endpoint, per send) and auths (AUTH
// exchanges per send).
func OAuth2Bench(process string, perSession bool) func(b *testing.B) {
	return func(b *testing.B) {
		e, err := Setup()
		if err != nil {
			b.Fatal(err)
		}
		opts := &emailconn.Options{}
		if perSession {
			opts.IdleTimeout = -1
		}
		r, err := oauthRegistry(e, opts)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		ctx := context.Background()
		send := func() error {
			rt, err := r.Resolve(process, To)
			if err != nil {
				return err
			}
			_, err = rt.Send(ctx, &emailconn.Message{Subject: notificationSubject, Text: notificationText})
			return err
		}
		// The first send fetches the token and opens the session.
		if err := send(); err != nil {
			b.Fatalf("%s: %v", process, err)
		}
		tokens, auths := e.TokenRequests.Load(), e.TLS.Auths.Load()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := send(); err != nil {
				b.Fatalf("%s: %v", process, err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		b.ReportMetric(float64(e.TokenRequests.Load()-tokens)/float64(b.N), "token-requests/op")
		b.ReportMetric(float64(e.TLS.Auths.Load()-auths)/float64(b.N), "auths/op")
	}
}

// withRefs returns a copy of opts with the environment's References.
func withRefs(e *Env, opts *emailconn.Options) *emailconn.Options {
	var o emailconn.Options
	if opts != nil {
		o = *opts
	}
	o.References = e.References()
	return &o
}

// References allows the environment's own files (its CA file), as an
// engine lists the directories of its own configuration.
func (e *Env) References() emailconn.References {
	return emailconn.References{Dirs: []string{e.dir}}
}
