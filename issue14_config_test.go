package emailconn_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// TestIssue14_Config_RoundTrip checks the provider and limit fields of a
// Connection: the JSON names, a round trip, zero values left out (so a
// connection without them writes what it wrote before), and validation of
// an unknown provider and of negative limits by Go and JSON name.
func TestIssue14_Config_RoundTrip(t *testing.T) {
	in := `{"mailServer":"smtp.office365.com:587","enableTLS":false,"provider":"microsoft365","maxSessions":2,` +
		`"messagesPerMinute":20,"maxRecipientsPerMessage":100,"messagesPerDay":1000,"recipientsPerDay":5000}`
	var c emailconn.Connection
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if c.Provider != "microsoft365" || c.MaxSessions != 2 || c.MessagesPerMinute != 20 ||
		c.MaxRecipientsPerMessage != 100 || c.MessagesPerDay != 1000 || c.RecipientsPerDay != 5000 {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("round trip:\n got %s\nwant %s", out, in)
	}
	for _, s := range []string{"MaxSessions: 2", "MessagesPerMinute: 20", `Provider: "microsoft365"`} {
		if !strings.Contains(c.String(), s) {
			t.Errorf("String() = %s, lacks %s", c.String(), s)
		}
	}

	zero, _ := json.Marshal(emailconn.Connection{MailServer: "m.example"})
	if string(zero) != `{"mailServer":"m.example","enableTLS":false}` {
		t.Errorf("zero limits changed the JSON form: %s", zero)
	}

	bad := emailconn.Connection{MailServer: "m.example", Provider: "yahoo", MaxSessions: -1, MessagesPerMinute: -1,
		MaxRecipientsPerMessage: -1, MessagesPerDay: -1, RecipientsPerDay: -1}
	err = bad.Validate()
	for _, f := range []string{"Provider", "MaxSessions", "MessagesPerMinute", "MaxRecipientsPerMessage", "MessagesPerDay", "RecipientsPerDay"} {
		var found bool
		for _, e := range unjoin(err) {
			var fe *emailconn.FieldError
			if errors.As(e, &fe) && fe.Field == f {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem for %s in %v", f, err)
		}
	}
	if !errors.Is(err, emailconn.ErrInvalid) {
		t.Errorf("err = %v, want ErrInvalid", err)
	}

	for _, tc := range []struct{ in, want string }{
		{`{"mailServer":"m","maxSessions":-1}`, "maxSessions"},
		{`{"mailServer":"m","messagesPerMinute":"30"}`, "messagesPerMinute"},
		{`{"mailServer":"m","maxRecipientsPerMessage":1.5}`, "maxRecipientsPerMessage"},
		{`{"mailServer":"m","recipientsPerDay":99999999999}`, "recipientsPerDay"},
	} {
		var c emailconn.Connection
		err := json.Unmarshal([]byte(tc.in), &c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.in, err, tc.want)
		}
	}
	var s emailconn.Connection
	if err := json.Unmarshal([]byte(`{"mailServer":"m","provider":"ses"}`), &s); err != nil || s.Validate() != nil {
		t.Errorf("ses: %v %v", err, s.Validate())
	}
}

// unjoin flattens an errors.Join tree.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}
