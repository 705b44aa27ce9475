package emailconn_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/emailconn/emailconn"
)

// TestIssue12_01_JSONFormUnchanged pins the JSON form that the field table
// writes (json.Marshal, MarshalJSON, Config.Save, a Secret alone, in a
// struct and as a map key) to the bytes the hand-written JSON structs wrote
// before issue 12: testdata/issue12_jsonform.golden was made by that code.
// The inputs reach every kind of field, every omitempty rule, HTML
// characters (escaped by json.Marshal, not by Save), U+2028, invalid UTF-8,
// empty but non-nil slices and maps, a negative and a fractional timeout,
// and fields set in code (RootCAs, TokenSource) that the form leaves out.
func TestIssue12_01_JSONFormUnchanged(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/issue12_jsonform.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := jsonForms(); !bytes.Equal(got, want) {
		t.Errorf("the JSON form changed:\n got: %s\nwant: %s", got, want)
	}
}

func jsonForms() []byte {
	conns := []emailconn.Connection{
		{},
		{MailServer: "m.example"},
		{Name: "full", MailServer: "smtp.example.com:587", EnableTLS: true, TLSMode: "starttls", ConnectTimeout: 1500 * time.Millisecond, SendTimeout: time.Minute,
			AuthType: "basic", Username: "u<&>\u2028", Password: "lit<pw>", OAuth2Config: "o", ActionsBaseURL: "https://a.example/?x=<1>&y",
			From: "Alerts <alerts@example.com>", To: []string{"a@example.com", "b <b@example.com>"}, LocalName: "engine.example.com",
			CAFile: "/etc/ca&.pem", RootCAs: x509.NewCertPool(), AllowInsecureAuth: true},
		{MailServer: "x\xff", To: []string{}, ConnectTimeout: -time.Second, SendTimeout: 1, Password: "env:PW", AuthType: "oauth2"},
		{MailServer: "y", Password: "file:/run/pw"},
	}
	ocs := []emailconn.OAuth2Config{
		{},
		{Name: "o", Provider: "microsoft365", Tenant: "contoso.onmicrosoft.com", GrantType: "client_credentials", ClientID: "id", ClientSecret: "cs<lit>"},
		{Name: "g", Provider: "google", GrantType: "refresh_token", ClientID: "id", RefreshToken: "env:RT", Scopes: []string{"a", "b&"},
			EndpointParams: map[string]string{"z": "1", "a": "<2>"}, ClientAuth: "body", TokenURL: "https://t.example/token"},
		{Name: "ts", TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), ClientID: "id"},
		{Name: "e", Scopes: []string{}, EndpointParams: map[string]string{}},
	}
	cfgs := []emailconn.Config{
		{},
		{Connections: conns, OAuth2Configs: ocs, Grid: &conns[1], Processes: map[string]string{"P<": "full", "A": "x"}},
		{Grid: &emailconn.Connection{}, Processes: map[string]string{}},
	}
	var out bytes.Buffer
	for _, c := range conns {
		b, err := json.Marshal(c)
		fmt.Fprintf(&out, "conn json: %s %v\n", b, err)
		b, err = c.MarshalJSON()
		fmt.Fprintf(&out, "conn MarshalJSON: %s %v\n", b, err)
	}
	for _, o := range ocs {
		b, err := json.Marshal(o)
		fmt.Fprintf(&out, "oauth json: %s %v\n", b, err)
		b, err = o.MarshalJSON()
		fmt.Fprintf(&out, "oauth MarshalJSON: %s %v\n", b, err)
	}
	for _, s := range []emailconn.Secret{"", "lit", "env:X", "file:/y", "[redacted]"} {
		b, err := json.Marshal(s)
		fmt.Fprintf(&out, "secret json: %s %v\n", b, err)
		b, err = json.Marshal(struct{ S emailconn.Secret }{s})
		fmt.Fprintf(&out, "secret in struct: %s %v\n", b, err)
		b, err = json.Marshal(map[emailconn.Secret]int{s: 1})
		fmt.Fprintf(&out, "secret key: %s %v\n", b, err)
	}
	for _, c := range cfgs {
		b, err := json.Marshal(c)
		fmt.Fprintf(&out, "cfg json: %s %v\n", b, err)
		b, err = c.MarshalJSON()
		fmt.Fprintf(&out, "cfg MarshalJSON: %s %v\n", b, err)
		var buf bytes.Buffer
		err = c.Save(&buf)
		fmt.Fprintf(&out, "cfg Save: %s %v\n", buf.Bytes(), err)
	}
	return out.Bytes()
}
