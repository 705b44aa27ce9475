package emailconn_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn"

	"github.com/emailconn/emailconn/internal/smtptest"
)

// TestIssue13_3_RootCAs: trust can come from an *x509.CertPool in code, so
// no CA file is written; it never disables verification.
func TestIssue13_3_RootCAs(t *testing.T) {
	t.Parallel()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: smtptest.StartTLS, Users: map[string]string{"alice": "s3cret"}, RequireAuth: true})
	base := emailconn.Connection{
		Name: "pool", MailServer: srv.Addr(), EnableTLS: true, From: "engine@example.com",
		Username: "alice", Password: "s3cret", ConnectTimeout: 5 * time.Second, SendTimeout: 5 * time.Second,
	}
	send := func(t *testing.T, c emailconn.Connection) error {
		t.Helper()
		s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		_, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		return err
	}

	t.Run("issue13-3/trusted-pool", func(t *testing.T) {
		c := base
		c.RootCAs = smtptest.SharedCA().Pool()
		if err := send(t, c); err != nil {
			t.Fatalf("Send with RootCAs: %v", err)
		}
	})
	t.Run("issue13-3/other-ca-fails", func(t *testing.T) {
		c := base
		c.RootCAs = smtptest.NewCA().Pool()
		if err := send(t, c); !errors.Is(err, emailconn.ErrTLSUnavailable) {
			t.Fatalf("Send with a pool of another CA = %v, want ErrTLSUnavailable", err)
		}
	})
	t.Run("issue13-3/empty-pool-trusts-nothing", func(t *testing.T) {
		c := base
		c.RootCAs = x509.NewCertPool()
		if err := send(t, c); !errors.Is(err, emailconn.ErrTLSUnavailable) {
			t.Fatalf("Send = %v, want ErrTLSUnavailable", err)
		}
	})
	t.Run("issue13-3/nil-means-system-roots", func(t *testing.T) {
		if err := send(t, base); !errors.Is(err, emailconn.ErrTLSUnavailable) {
			t.Fatalf("Send without RootCAs = %v, want ErrTLSUnavailable (system roots do not know the test CA)", err)
		}
	})
	t.Run("issue13-3/pool-changed-after-NewSender", func(t *testing.T) {
		// The Sender copies the pool: adding the CA afterwards changes
		// nothing, so a pool cannot be widened under a running Sender.
		c := base
		c.RootCAs = smtptest.NewCA().Pool()
		s := mustSender(t, c, &emailconn.Options{Retry: emailconn.RetryPolicy{MaxAttempts: 1}})
		c.RootCAs.AddCert(smtptest.SharedCA().Certificate())
		_, err := s.Send(context.Background(), &emailconn.Message{To: []string{"ops@example.com"}, Text: "x"})
		if !errors.Is(err, emailconn.ErrTLSUnavailable) {
			t.Fatalf("Send = %v, want ErrTLSUnavailable", err)
		}
	})
	t.Run("issue13-3/with-cafile-is-invalid", func(t *testing.T) {
		c := base
		c.RootCAs = smtptest.SharedCA().Pool()
		c.CAFile = caFile(t)
		err := c.Validate()
		if !errors.Is(err, emailconn.ErrInvalid) || !strings.Contains(err.Error(), "CAFile: cannot be combined with RootCAs") {
			t.Fatalf("Validate() = %v, want a CAFile error naming RootCAs", err)
		}
	})
}

// TestIssue13_3_RootCAsCodeOnly: RootCAs is left out of the JSON form and
// printed as a mark, never as the pool's internals.
func TestIssue13_3_RootCAsCodeOnly(t *testing.T) {
	t.Parallel()
	c := emailconn.Connection{Name: "pool", MailServer: "smtp.example.com", EnableTLS: true, RootCAs: smtptest.SharedCA().Pool()}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(string(b)), "rootca") {
		t.Errorf("json.Marshal = %s, want no RootCAs", b)
	}
	var back emailconn.Connection
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal(%s): %v", b, err)
	}
	if back.RootCAs != nil {
		t.Errorf("round trip kept RootCAs")
	}
	back.RootCAs = c.RootCAs
	if !emailconn.SameConnection(&back, &c) {
		t.Errorf("round trip changed another field: %v != %v", back, c)
	}
	if err := json.Unmarshal([]byte(`{"mailServer": "x", "rootCAs": "a"}`), &back); err == nil {
		t.Errorf("Unmarshal accepted a rootCAs field")
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, c); !strings.Contains(got, "RootCAs: (set in code)") || strings.Contains(got, "lazyCert") {
			t.Errorf("Sprintf(%q) = %s, want RootCAs: (set in code)", verb, got)
		}
	}
}

// TestIssue13_3_SameConnectionRootCAs: a Registry keeps a connection's Sender
// across Replace when its pool holds the same certificates, and replaces
// it when they differ.
func TestIssue13_3_SameConnectionRootCAs(t *testing.T) {
	t.Parallel()
	a := emailconn.Connection{Name: "x", MailServer: "smtp.example.com", RootCAs: smtptest.SharedCA().Pool()}
	b := a
	b.RootCAs = smtptest.SharedCA().Pool() // another pointer, same certificates
	other := a
	other.RootCAs = smtptest.NewCA().Pool()
	none := a
	none.RootCAs = nil
	for _, tt := range []struct {
		name string
		x, y emailconn.Connection
		want bool
	}{
		{"equal pools", a, b, true},
		{"same pool", a, a, true},
		{"other CA", a, other, false},
		{"pool and none", a, none, false},
		{"none and none", none, none, true},
	} {
		if got := emailconn.SameConnection(&tt.x, &tt.y); got != tt.want {
			t.Errorf("%s: sameConnection = %v, want %v", tt.name, got, tt.want)
		}
	}

	reg, err := emailconn.NewRegistry(emailconn.Config{Connections: []emailconn.Connection{a}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	s1, _ := reg.Sender("x")
	if err := reg.Replace(emailconn.Config{Connections: []emailconn.Connection{b}}); err != nil {
		t.Fatal(err)
	}
	s2, _ := reg.Sender("x")
	if err := reg.Replace(emailconn.Config{Connections: []emailconn.Connection{other}}); err != nil {
		t.Fatal(err)
	}
	s3, _ := reg.Sender("x")
	if s1 != s2 || s2 == s3 {
		t.Errorf("senders across Replace: equal pools kept %v, other CA replaced %v; want true, true", s1 == s2, s2 != s3)
	}
}
