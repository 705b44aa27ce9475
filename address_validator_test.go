package emailconn_test

import (
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestIssue10_06_OneHostnameValidator checks that the mail server, the EHLO
// name and the Email Actions Base URL use the shared host name rules.
func TestIssue10_06_OneHostnameValidator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		conn emailconn.Connection
		want string // "" means valid
	}{
		{emailconn.Connection{MailServer: "smtp_relay.internal"}, ""},
		{emailconn.Connection{MailServer: "relay.internal."}, ""},
		{emailconn.Connection{MailServer: "example.123"}, `MailServer: "example.123": host ends in a numeric label, which reads as an IP address`},
		{emailconn.Connection{MailServer: "-x.example.com"}, `MailServer: "-x.example.com": host has a label that starts or ends with "-"`},
		{emailconn.Connection{MailServer: "m.example", LocalName: "engine.example.com"}, ""},
		{emailconn.Connection{MailServer: "m.example", LocalName: "engine_1.example.com"}, `LocalName: contains "_", which is not allowed in a host name`},
		{emailconn.Connection{MailServer: "m.example", LocalName: "engine.123"}, "LocalName: ends in a numeric label, which reads as an IP address"},
		{emailconn.Connection{MailServer: "m.example", ActionsBaseURL: "https://-x.example.com"}, `ActionsBaseURL: host "-x.example.com" has a label that starts or ends with "-"`},
		{emailconn.Connection{MailServer: "m.example", ActionsBaseURL: "https://approvals.example.123"}, `ActionsBaseURL: host "approvals.example.123" is not a valid ipv4 address`},
	}
	for _, tt := range tests {
		err := tt.conn.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("Validate(%v) = %v, want nil", tt.conn, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%v) = %v, want %q", tt.conn, err, tt.want)
		}
	}
}
