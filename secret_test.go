package emailconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue11_01_ReferencesRefusedByDefault checks that, without a
// References rule, no entry point resolves an "env:" or "file:" secret or
// reads a CAFile — so a tenant who enters a connection cannot make the
// engine send its environment or files to the tenant's server — and that
// the refusal reads the same whether the target exists or not.
func TestIssue11_01_ReferencesRefusedByDefault(t *testing.T) {
	t.Setenv("EMAILCONN_TEST_ENGINE_DB_PASSWORD", "canary-db-password-4417")
	srv := smtptest.NewServer(t, smtptest.Options{Users: map[string]string{"u": "x"}})
	existing := filepath.Join(t.TempDir(), "exists")
	if err := os.WriteFile(existing, []byte("canary-file-secret-9931\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(filepath.Dir(existing), "missing")

	// norm replaces the reference's target, so that texts for an existing
	// and a missing target can be compared.
	norm := func(s string, targets ...string) string {
		for _, tg := range targets {
			s = strings.ReplaceAll(s, tg, "TARGET")
		}
		return s
	}
	probes := map[string]func(c emailconn.Connection) error{
		"NewSender": func(c emailconn.Connection) error { _, err := emailconn.NewSender(c, nil); return err },
		"NewRegistry": func(c emailconn.Connection) error {
			c.Name = "tenant"
			_, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{c}}, nil)
			return err
		},
		"TestConnection": func(c emailconn.Connection) error { return c.Test(context.Background(), nil).Err },
	}
	type pair struct{ present, absent emailconn.Connection }
	base := emailconn.Connection{MailServer: srv.Addr(), Username: "u", From: "a@example.com"}
	withPW := func(s string) emailconn.Connection { c := base; c.Password = emailconn.Secret(s); return c }
	withCA := func(p string) emailconn.Connection { c := base; c.CAFile = p; return c }
	cases := map[string]pair{
		"env":       {withPW("env:EMAILCONN_TEST_ENGINE_DB_PASSWORD"), withPW("env:EMAILCONN_TEST_NOT_SET_AT_ALL")},
		"file":      {withPW("file:" + existing), withPW("file:" + missing)},
		"proc":      {withPW("file:/proc/self/environ"), withPW("file:/proc/self/nope")},
		"ca file":   {withCA(existing), withCA(missing)},
		"etc":       {withCA("/etc/passwd"), withCA("/etc/no-such-file")},
		"relative":  {withPW("file:secret_test.go"), withPW("file:no_such_test.go")},
		"dot-dot":   {withPW("file:" + filepath.Dir(existing) + "/../" + filepath.Base(filepath.Dir(existing)) + "/exists"), withPW("file:" + filepath.Dir(existing) + "/../x/missing")},
		"prefixEnv": {withPW("env:EMAILCONN_TEST_ENGINE_DB_PASSWORD"), withPW("env:EMAILCONN_TEST_ENGINE_DB_PASSWORX")},
	}
	for name, tc := range cases {
		for probe, run := range probes {
			t.Run("issue11-1/"+name+"/"+probe, func(t *testing.T) {
				ep, ea := run(tc.present), run(tc.absent)
				for _, err := range []error{ep, ea} {
					if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "is not allowed") {
						t.Fatalf("error = %v, want a refusal matching ErrInvalid", err)
					}
					for _, canary := range []string{"canary-db-password-4417", "canary-file-secret-9931"} {
						if strings.Contains(err.Error(), canary) {
							t.Errorf("error reveals the secret: %v", err)
						}
					}
				}
				tp := string(tc.present.Password) + tc.present.CAFile
				ta := string(tc.absent.Password) + tc.absent.CAFile
				_, tp, _ = strings.Cut(tp, ":")
				_, ta, _ = strings.Cut(ta, ":")
				if tc.present.CAFile != "" {
					tp, ta = tc.present.CAFile, tc.absent.CAFile
				}
				if a, b := norm(ep.Error(), tp), norm(ea.Error(), ta); a != b {
					t.Errorf("the refusal tells whether the target exists:\n%s\n%s", a, b)
				}
			})
		}
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("the server got %d messages", n)
	}

	// Secrets of an OAuth2 configuration follow the same rule.
	oc := emailconn.OAuth2Config{Name: "o", GrantType: "client_credentials", TokenURL: "https://127.0.0.1:1/token", ClientID: "id", ClientSecret: "env:EMAILCONN_TEST_ENGINE_DB_PASSWORD"}
	if rep := oc.Test(context.Background(), nil); !errors.Is(rep.Err, emailconn.ErrInvalid) || !strings.Contains(rep.Error, "ClientSecret: \"env:EMAILCONN_TEST_ENGINE_DB_PASSWORD\" is not allowed") {
		t.Errorf("TestOAuth2 with an env: client secret = %v, want a refusal", rep.Err)
	}
	if _, err := emailconn.NewRegistry(emailconn.Config{OAuth2Configs: []emailconn.OAuth2Config{oc}}, nil); err == nil || !strings.Contains(err.Error(), "oauth2Configurations[0].clientSecret: \"env:EMAILCONN_TEST_ENGINE_DB_PASSWORD\" is not allowed") {
		t.Errorf("NewRegistry with an env: client secret = %v, want a refusal", err)
	}
	// Reveal with the zero rule refuses too; literals pass.
	if _, err := emailconn.Secret("env:EMAILCONN_TEST_ENGINE_DB_PASSWORD").Reveal(emailconn.References{}); !errors.Is(err, emailconn.ErrInvalid) || !strings.HasPrefix(err.Error(), "emailconn: ") {
		t.Errorf("Reveal(zero rule) = %v, want an emailconn: error matching ErrInvalid", err)
	}
	if v, err := emailconn.Secret("literal").Reveal(emailconn.References{}); v != "literal" || err != nil {
		t.Errorf("Reveal(literal) = %q, %v", v, err)
	}
	// Validate does no I/O and accepts the form; the rule applies where
	// references are resolved.
	if c := withPW("file:/etc/shadow"); c.Validate() != nil {
		t.Errorf("Validate() = %v, want nil (no I/O)", c.Validate())
	}
}

// TestIssue11_01_ReferencesAllowed checks that what a rule lists is read,
// and that a symbolic link out of a listed directory is refused with the
// text of any other path outside it.
func TestIssue11_01_ReferencesAllowed(t *testing.T) {
	t.Setenv("EMAILCONN_TEST_SMTP_PW", "from-env")
	allowed, outside := t.TempDir(), t.TempDir()
	inside := filepath.Join(allowed, "pw")
	os.WriteFile(inside, []byte("from-file\n"), 0o600)
	secretOutside := filepath.Join(outside, "secret")
	os.WriteFile(secretOutside, []byte("outside-canary\n"), 0o600)
	link := filepath.Join(allowed, "link")
	if err := os.Symlink(secretOutside, link); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(allowed, "up")
	if err := os.Symlink(outside, dirLink); err != nil {
		t.Fatal(err)
	}
	refs := emailconn.References{Env: []string{"EMAILCONN_TEST_SMTP_*"}, Dirs: []string{allowed}}
	for s, want := range map[emailconn.Secret]string{"env:EMAILCONN_TEST_SMTP_PW": "from-env", emailconn.Secret("file:" + inside): "from-file"} {
		if got, err := s.Reveal(refs); got != want || err != nil {
			t.Errorf("Reveal(%s) = %q, %v; want %q", s, got, err, want)
		}
	}
	for _, p := range []string{link, filepath.Join(dirLink, "secret")} {
		_, err := emailconn.Secret("file:" + p).Reveal(refs)
		if err == nil || !strings.Contains(err.Error(), "is not allowed: it is not under a directory that Options.References.Dirs lists") || strings.Contains(err.Error(), "outside-canary") {
			t.Errorf("Reveal(file:%s through a link out of the rule) = %v, want the refusal", p, err)
		}
	}
	if _, err := emailconn.Secret("env:EMAILCONN_TEST_OTHER").Reveal(refs); err == nil || !strings.Contains(err.Error(), "Options.References.Env does not list EMAILCONN_TEST_OTHER") {
		t.Errorf("Reveal of an unlisted variable = %v", err)
	}
	// A tenant's connection added to a registry whose rule the engine set is
	// held to the same rule.
	r, err := emailconn.NewRegistry(emailconn.Config{}, &emailconn.Options{References: refs})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Update(func(cfg *emailconn.Config) error {
		cfg.Connections = append(cfg.Connections, emailconn.Connection{Name: "tenant", MailServer: "127.0.0.1:1", Username: "u", Password: "file:/etc/passwd"})
		return nil
	})
	if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), `connections[0].password: file "/etc/passwd" is not allowed`) {
		t.Errorf("Update with a tenant's file: reference = %v, want a refusal", err)
	}
}
