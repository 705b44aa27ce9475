package emailconn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"
)

func TestConnectionValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		conn emailconn.Connection
		want []string // substrings, one per expected problem; nil = valid
	}{
		{"minimal", emailconn.Connection{MailServer: "smtp.example.com"}, nil},
		{"basic over starttls", emailconn.Connection{MailServer: "smtp.example.com", EnableTLS: true, Username: "u", Password: "p"}, nil},
		{"oauth2", emailconn.Connection{MailServer: "smtp.office365.com", EnableTLS: true, AuthType: "oauth2", Username: "robot@contoso.com", OAuth2Config: "contoso"}, nil},
		{"loopback plaintext auth", emailconn.Connection{MailServer: "127.0.0.1:2525", Username: "u", Password: "p"}, nil},
		{"localhost plaintext auth", emailconn.Connection{MailServer: "localhost:2525", Username: "u", Password: "p"}, nil},
		{"insecure auth allowed", emailconn.Connection{MailServer: "relay.internal", Username: "u", Password: "p", AllowInsecureAuth: true}, nil},
		{"missing server", emailconn.Connection{}, []string{"MailServer: is required"}},
		{"negative timeouts", emailconn.Connection{MailServer: "m.example", ConnectTimeout: -time.Second, SendTimeout: -1}, []string{"ConnectTimeout: must not be negative", "SendTimeout: must not be negative"}},
		{"absurd timeout", emailconn.Connection{MailServer: "m.example", SendTimeout: 48 * time.Hour}, []string{"SendTimeout: must be at most 86400 seconds"}},
		{"tls downgrade", emailconn.Connection{MailServer: "m.example", EnableTLS: true, TLSMode: "none"}, []string{"TLSMode: \"none\" contradicts EnableTLS"}},
		{"opportunistic with EnableTLS", emailconn.Connection{MailServer: "m.example", EnableTLS: true, TLSMode: "opportunistic"}, []string{"TLSMode: \"opportunistic\" contradicts"}},
		{"bad tls mode", emailconn.Connection{MailServer: "m.example", TLSMode: "ssl"}, []string{"TLSMode: \"ssl\" is not a TLS mode"}},
		{"bad auth type", emailconn.Connection{MailServer: "m.example", AuthType: "ntlm"}, []string{"AuthType: \"ntlm\" is not an auth type"}},
		{"oauth2 without config", emailconn.Connection{MailServer: "m.example", EnableTLS: true, AuthType: "oauth2", Username: "u@x.example"}, []string{"OAuth2Config: is required"}},
		{"oauth2 with password", emailconn.Connection{MailServer: "m.example", EnableTLS: true, AuthType: "oauth2", Username: "u@x.example", OAuth2Config: "o", Password: "p"}, []string{"Password: is not used with AuthType"}},
		{"oauth2 without user", emailconn.Connection{MailServer: "m.example", EnableTLS: true, AuthType: "oauth2", OAuth2Config: "o"}, []string{"Username: is required when AuthType"}},
		{"basic with oauth2 config", emailconn.Connection{MailServer: "m.example", OAuth2Config: "o"}, []string{"OAuth2Config: is set but AuthType is \"basic\""}},
		{"password without user", emailconn.Connection{MailServer: "m.example", EnableTLS: true, Password: "p"}, []string{"Password: is set but Username is empty"}},
		{"plaintext credentials", emailconn.Connection{MailServer: "relay.internal", Username: "u", Password: "p"}, []string{"TLSMode: TLS is off but credentials are configured"}},
		{"plaintext oauth2", emailconn.Connection{MailServer: "relay.internal", AuthType: "oauth2", Username: "u@x.example", OAuth2Config: "o"}, []string{"TLS is off but credentials"}},
		{"bad base url", emailconn.Connection{MailServer: "m.example", ActionsBaseURL: "https://approvals.example.com/x?y=1"}, []string{"ActionsBaseURL: "}},
		{"bad from", emailconn.Connection{MailServer: "m.example", From: "not an address"}, []string{"From: \"not an address\" is not an email address"}},
		{"smuggling from", emailconn.Connection{MailServer: "m.example", From: "<a@x.example> RET=FULL"}, []string{"From: "}},
		{"crlf from", emailconn.Connection{MailServer: "m.example", From: "a@x.example\r\nBcc: b@y.example"}, []string{"From: must not contain CR, LF or NUL"}},
		{"bad to", emailconn.Connection{MailServer: "m.example", To: []string{"ok@x.example", "nope"}}, []string{"To[1]: \"nope\" is not an email address"}},
		{"bad local name", emailconn.Connection{MailServer: "m.example", LocalName: "bad name"}, []string{"LocalName: "}},
		{"redaction marker", emailconn.Connection{MailServer: "m.example", EnableTLS: true, Username: "u", Password: "[redacted]"}, []string{"Password: holds the redaction marker"}},
		{"bad name", emailconn.Connection{Name: " x", MailServer: "m.example"}, []string{"Name: must not start or end with spaces"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.conn.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if !errors.Is(err, emailconn.ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
			var fe *emailconn.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" {
				t.Errorf("errors.As(%v, *FieldError) gave %+v", err, fe)
			}
			if !strings.HasPrefix(err.Error(), "emailconn: ") {
				t.Errorf("Validate() = %q, want the emailconn: prefix", err)
			}
		})
	}
}

// TestReferencesResolve checks that references the rule allows are read,
// and that one that does not resolve is reported by every entry point that
// resolves it (these cases were checked by Validate before issue 11-1).
func TestReferencesResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(badPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	refs := emailconn.References{Env: []string{"EMAILCONN_TEST_*"}, Dirs: []string{dir}}
	tests := []struct {
		name string
		conn emailconn.Connection
		want []string
	}{
		{"missing ca file", emailconn.Connection{MailServer: "m.example", CAFile: filepath.Join(dir, "nope.pem")}, []string{"CAFile: CA file", "does not exist"}},
		{"bad ca file", emailconn.Connection{MailServer: "m.example", CAFile: badPEM}, []string{"CAFile: CA file", "holds no PEM certificate"}},
		{"missing env secret", emailconn.Connection{MailServer: "m.example", EnableTLS: true, Username: "u", Password: "env:EMAILCONN_TEST_UNSET_VARIABLE"}, []string{"Password: environment variable EMAILCONN_TEST_UNSET_VARIABLE is not set"}},
		{"missing file secret", emailconn.Connection{MailServer: "m.example", EnableTLS: true, Username: "u", Password: emailconn.Secret("file:" + filepath.Join(dir, "nope"))}, []string{"Password: file", "does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.conn.Validate(); err != nil {
				t.Errorf("Validate() = %v, want nil: Validate does no I/O", err)
			}
			_, err := emailconn.NewSender(tt.conn, &emailconn.Options{References: refs})
			rep := tt.conn.Test(context.Background(), &emailconn.TestOptions{Options: &emailconn.Options{References: refs}})
			for _, e := range []error{err, rep.Err} {
				if !errors.Is(e, emailconn.ErrInvalid) {
					t.Errorf("error %v does not match ErrInvalid", e)
				}
				for _, w := range tt.want {
					if e == nil || !strings.Contains(e.Error(), w) {
						t.Errorf("error = %v, want it to contain %q", e, w)
					}
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	c := emailconn.Connection{
		MailServer: "smtp://x", ConnectTimeout: -1, SendTimeout: -1, AuthType: "x",
		From: "nope", LocalName: "a b",
	}
	err := c.Validate()
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) {
		t.Fatalf("Validate() = %v, want a joined error", err)
	}
	if n := len(multi.Unwrap()); n != 6 {
		t.Errorf("Validate() reported %d problems, want 6:\n%v", n, err)
	}
}

func TestSecretReveal(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EMAILCONN_TEST_SECRET", "from-env")
	tests := []struct {
		s    emailconn.Secret
		want string
	}{
		{"literal", "literal"},
		{"env:EMAILCONN_TEST_SECRET", "from-env"},
		{emailconn.Secret("file:" + file), "from-file"},
	}
	refs := emailconn.References{Env: []string{"EMAILCONN_TEST_SECRET", "EMAILCONN_TEST_NOPE"}, Dirs: []string{dir}}
	for _, tt := range tests {
		got, err := tt.s.Reveal(refs)
		if err != nil || got != tt.want {
			t.Errorf("Secret(%q).Reveal() = %q, %v; want %q", string(tt.s), got, err, tt.want)
		}
	}
	if _, err := emailconn.Secret("env:EMAILCONN_TEST_NOPE").Reveal(refs); err == nil || !strings.Contains(err.Error(), "EMAILCONN_TEST_NOPE is not set") {
		t.Errorf("Reveal of an unset variable = %v", err)
	}
}

// TestSecretsNeverPrinted checks every way a configuration value is printed
// for the canary secrets.
func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	const pw, cs, rt = "canary-password-Zq81", "canary-client-secret-Xw42", "canary-refresh-token-Pk77"
	conn := emailconn.Connection{Name: "c", MailServer: "m.example", EnableTLS: true, Username: "u", Password: pw}
	oc := emailconn.OAuth2Config{Name: "o", GrantType: "refresh_token", TokenURL: "https://login.example/token", ClientID: "id", ClientSecret: cs, RefreshToken: rt}
	cfg := emailconn.Config{Connections: []emailconn.Connection{conn}, OAuth2Configs: []emailconn.OAuth2Config{oc}, Grid: &emailconn.Connection{MailServer: "g.example", EnableTLS: true, Username: "g", Password: pw}}

	var out bytes.Buffer
	for _, v := range []any{conn, &conn, oc, &oc, cfg, &cfg, conn.Password, oc.ClientSecret, oc.RefreshToken} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%T): %v", v, err)
		}
		out.Write(b)
	}
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	logger.Info("x", "conn", conn, "oauth", oc, "pw", conn.Password, "cfg", cfg)
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "conn", conn, "oauth", oc, "pw", conn.Password)
	fmt.Fprintln(&out, conn.String(), oc.String())
	for _, canary := range []string{pw, cs, rt} {
		if strings.Contains(out.String(), canary) {
			t.Errorf("output contains secret %q:\n%s", canary, out.String())
		}
	}
	if !strings.Contains(out.String(), "[redacted]") {
		t.Errorf("output does not show [redacted]:\n%s", out.String())
	}
	// References hold no secret and are shown as they are.
	ref := emailconn.Secret("env:SMTP_PASSWORD")
	if got := fmt.Sprint(ref); got != "env:SMTP_PASSWORD" {
		t.Errorf("fmt.Sprint(%q) = %q, want the reference", string(ref), got)
	}
}

func TestConnectionJSON(t *testing.T) {
	t.Parallel()
	in := `{"name":"a","mailServer":"smtp.example.com:587","enableTLS":true,"smtpConnectionTimeout":10,"smtpTimeout":60,
	"authType":"basic","userName":"alerts@example.com","password":"env:PW","from":"alerts@example.com","to":["ops@example.com"],
	"emailActionsBaseURL":"https://approvals.example.com","tlsMode":"starttls","localName":"engine.example.com","allowInsecureAuth":false}`
	var c emailconn.Connection
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := emailconn.Connection{Name: "a", MailServer: "smtp.example.com:587", EnableTLS: true, ConnectTimeout: 10 * time.Second,
		SendTimeout: time.Minute, AuthType: "basic", Username: "alerts@example.com", Password: "env:PW",
		From: "alerts@example.com", To: []string{"ops@example.com"}, ActionsBaseURL: "https://approvals.example.com",
		TLSMode: "starttls", LocalName: "engine.example.com"}
	if c.String() != want.String() || c.Password != want.Password {
		t.Errorf("Unmarshal = %v, want %v", c, want)
	}
	b, _ := json.Marshal(c)
	var back emailconn.Connection
	if err := json.Unmarshal(b, &back); err != nil || back.String() != c.String() {
		t.Errorf("round trip = %v, %v; want %v", back, err, c)
	}

	bad := []struct{ in, want string }{
		{`{"mailServer":"x","smtpTimeout":-1}`, "smtpTimeout: must not be negative"},
		{`{"mailServer":"x","smtpTimeout":1.5}`, "smtpTimeout: must be a whole number of seconds"},
		{`{"mailServer":"x","smtpTimeout":-1.5}`, "smtpTimeout: must not be negative"},
		{`{"mailServer":"x","smtpTimeout":9999999999}`, "smtpTimeout: must be at most 86400 seconds"},
		{`{"mailServer":"x","smtpTimeout":1e400}`, "smtpTimeout: must"},
		{`{"mailServer":"x","smtpTimeout":"30"}`, "smtpTimeout: must be a number of seconds"},
		{`{"mailServer":"x","smtpTimeout":" 30 "}`, "smtpTimeout: must be a number of seconds"},
		{`{"mailServer":"x","enableTLS":"yes"}`, "enableTLS: must be true or false"},
		{`{"mailServer":"x","enableTSL":true}`, "enableTSL: unknown field"},
		{`{"mailServer":5}`, "mailServer: must be a string"},
		{`[]`, "must be a JSON object"},
	}
	for _, tt := range bad {
		var c emailconn.Connection
		err := json.Unmarshal([]byte(tt.in), &c)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want %q", tt.in, err, tt.want)
		}
	}
	// Absent, null and 0 all mean no timeout.
	for _, in := range []string{`{"mailServer":"x"}`, `{"mailServer":"x","smtpTimeout":null}`, `{"mailServer":"x","smtpTimeout":0}`} {
		var c emailconn.Connection
		if err := json.Unmarshal([]byte(in), &c); err != nil || c.SendTimeout != 0 {
			t.Errorf("Unmarshal(%s) = %v, SendTimeout %v; want no timeout", in, err, c.SendTimeout)
		}
	}
}

func TestSecretFileRefusesDevices(t *testing.T) {
	t.Parallel()
	all := emailconn.References{Dirs: []string{"/"}}
	for _, path := range []string{"/dev/zero", "/dev/stdin", "/dev/null", os.TempDir()} {
		if _, err := emailconn.Secret("file:" + path).Reveal(all); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Reveal(file:%s) = %v, want a refusal", path, err)
		}
		c := emailconn.Connection{MailServer: "m.example", CAFile: path}
		if _, err := emailconn.NewSender(c, &emailconn.Options{References: all}); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("CAFile %s: NewSender() = %v", path, err)
		}
	}
	big := filepath.Join(t.TempDir(), "big")
	os.WriteFile(big, make([]byte, 100<<10), 0o600)
	if _, err := emailconn.Secret("file:" + big).Reveal(all); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Reveal of a 100 KiB file = %v", err)
	}
}
