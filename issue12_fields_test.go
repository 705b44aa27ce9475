package emailconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestIssue12_01_FieldTable checks the field tables read from the structs:
// the Go and JSON names are the ones the hand-written name lists held
// before issue 12, in the same order, and every name the validation code
// asks the table for (n.of("X")) is a field, so a misspelt name cannot
// silently name no field.
func TestIssue12_01_FieldTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		table []field
		want  string // Go=json pairs in declaration order; "-" for no JSON name
	}{
		{"Connection", connectionFields.fields, "Name=name MailServer=mailServer EnableTLS=enableTLS TLSMode=tlsMode " +
			"ConnectTimeout=smtpConnectionTimeout SendTimeout=smtpTimeout AuthType=authType Username=userName " +
			"Password=password OAuth2Config=oauth2Configuration ActionsBaseURL=emailActionsBaseURL From=from To=to " +
			"LocalName=localName CAFile=caFile RootCAs=- AllowInsecureAuth=allowInsecureAuth Provider=provider " +
			"MaxSessions=maxSessions MessagesPerMinute=messagesPerMinute MaxRecipientsPerMessage=maxRecipientsPerMessage " +
			"MessagesPerDay=messagesPerDay RecipientsPerDay=recipientsPerDay " +
			"DisablePipelining=disablePipelining DisableChunking=disableChunking"},
		{"OAuth2Config", oauth2Fields.fields, "Name=name Provider=provider Tenant=tenant GrantType=grantType " +
			"TokenURL=tokenURL ClientID=clientID ClientSecret=clientSecret RefreshToken=refreshToken Scopes=scopes " +
			"EndpointParams=endpointParams ClientAuth=clientAuth TokenSource=-"},
	}
	for _, tt := range tests {
		var pairs []string
		for _, f := range tt.table {
			j := f.jsonName
			if j == "" {
				j = "-"
			}
			pairs = append(pairs, f.goName+"="+j)
		}
		if got := strings.Join(pairs, " "); got != tt.want {
			t.Errorf("%s field table = %s\nwant %s", tt.name, got, tt.want)
		}
	}

	known := map[string]bool{}
	for _, f := range append(append([]field(nil), connectionFields.fields...), oauth2Fields.fields...) {
		known[f.goName] = true
	}
	uses := regexp.MustCompile(`\.of\("([^"]*)"\)`)
	for _, file := range []string{"connection.go", "oauth2config.go", "fields.go", "config.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range uses.FindAllStringSubmatch(string(src), -1) {
			if !known[m[1]] {
				t.Errorf("%s asks the field table for %q, which is no field", file, m[1])
			}
		}
	}
}

// TestIssue12_01_StringFromTable checks that String and LogValue come from
// the table: every field that is set is shown, by Go name in String and by
// JSON name in LogValue, with no secret.
func TestIssue12_01_StringFromTable(t *testing.T) {
	t.Parallel()
	c := Connection{Name: "n", MailServer: "m.example", TLSMode: tlsStartTLS, SendTimeout: 1500e6, AuthType: authBasic, Username: "u",
		Password: "canary-pw-81", From: "a@example.com", To: []string{"b@example.com"}, AllowInsecureAuth: true}
	want := `emailconn.Connection{Name: "n", MailServer: "m.example", EnableTLS: false, TLSMode: "starttls", SendTimeout: 1.5s, ` +
		`AuthType: "basic", Username: "u", Password: [redacted], From: "a@example.com", To: ["b@example.com"], AllowInsecureAuth: true}`
	if got := c.String(); got != want {
		t.Errorf("String() = %s\nwant %s", got, want)
	}
	o := OAuth2Config{Name: "o", GrantType: grantRefreshToken, ClientID: "id", RefreshToken: "canary-rt-82",
		EndpointParams: map[string]string{"client_assertion": "canary-assertion-83"}, ClientAuth: clientAuthBody}
	want = `emailconn.OAuth2Config{Name: "o", GrantType: "refresh_token", ClientID: "id", RefreshToken: [redacted], EndpointParams: (1 set), ClientAuth: "body"}`
	if got := o.String(); got != want {
		t.Errorf("String() = %s\nwant %s", got, want)
	}
	var attrs []string
	for _, a := range c.LogValue().Group() {
		attrs = append(attrs, a.String())
	}
	wantAttrs := "name=n mailServer=m.example enableTLS=false tlsMode=starttls smtpTimeout=1.5s authType=basic userName=u " +
		"password=[redacted] from=a@example.com to=[b@example.com] allowInsecureAuth=true"
	if got := strings.Join(attrs, " "); got != wantAttrs {
		t.Errorf("LogValue() = %s\nwant %s", got, wantAttrs)
	}
	if got := o.LogValue().String(); strings.Contains(got, "canary") {
		t.Errorf("LogValue() = %s, shows a secret", got)
	}
}

// TestIssue12_02_SmallerSurface checks the public-surface items of issue
// 12 for the configuration model: Connection, OAuth2Config and Secret have
// no GoString (fmt prefers Format, so it was never reached) and still
// print redacted for %#v; Secret has no MarshalJSON (MarshalText writes the
// same JSON); Route has no FromSource or ActionsBaseURLSource (they always
// equalled Via). The configuration values (TLS mode, auth type, grant
// type, client authentication, provider) are the configuration file's
// strings, with no exported constants or types of their own (issue 12's
// name budget): Connection.Provider and OAuth2Config.Provider are both
// strings, and a value that is none of the documented ones is refused
// naming the field.
func TestIssue12_02_SmallerSurface(t *testing.T) {
	t.Parallel()
	const pw = "canary-pw-Q7"
	for _, v := range []any{Connection{MailServer: "m.example", Password: pw}, &Connection{Password: pw},
		OAuth2Config{Name: "o", ClientSecret: pw}, &OAuth2Config{RefreshToken: pw}, Secret(pw), new(Secret)} {
		if _, ok := v.(fmt.GoStringer); ok {
			t.Errorf("%T has a GoString method", v)
		}
		if got := fmt.Sprintf("%#v", v); strings.Contains(got, pw) || got != fmt.Sprint(v) {
			t.Errorf("%%#v of %T = %s, want String without the secret", v, got)
		}
	}
	if _, ok := any(Secret("")).(json.Marshaler); ok {
		t.Errorf("Secret has a MarshalJSON method")
	}
	if b, err := json.Marshal(map[string]Secret{"a": pw, "b": "env:X"}); err != nil || string(b) != `{"a":"[redacted]","b":"env:X"}` {
		t.Errorf("json.Marshal of secrets = %s, %v", b, err)
	}
	rt := reflect.TypeFor[Route]()
	for _, name := range []string{"FromSource", "ActionsBaseURLSource"} {
		if _, ok := rt.FieldByName(name); ok {
			t.Errorf("Route has a field %s", name)
		}
	}
	if ct, ot := reflect.TypeFor[Connection](), reflect.TypeFor[OAuth2Config](); ot.Field(1).Name != "Provider" ||
		ot.Field(1).Type != reflect.TypeFor[string]() {
		t.Errorf("OAuth2Config.Provider is %v %v, want a string", ot.Field(1).Name, ot.Field(1).Type)
	} else if f, ok := ct.FieldByName("Provider"); !ok || f.Type != ot.Field(1).Type {
		t.Errorf("Connection.Provider has type %v, OAuth2Config.Provider %v: want the same", f.Type, ot.Field(1).Type)
	}
	for field, v := range map[string]interface{ Validate() error }{
		"TLSMode":    &Connection{MailServer: "m.example", TLSMode: "tls"},
		"AuthType":   &Connection{MailServer: "m.example", AuthType: "ntlm"},
		"Provider":   &Connection{MailServer: "m.example", Provider: "yahoo"},
		"GrantType":  &OAuth2Config{Name: "o", GrantType: "password", ClientID: "c", ClientSecret: "x", TokenURL: "https://t.example/token"},
		"ClientAuth": &OAuth2Config{Name: "o", GrantType: grantClientCredentials, ClientID: "c", ClientSecret: "x", TokenURL: "https://t.example/token", ClientAuth: "jwt"},
		"Provider ":  &OAuth2Config{Name: "o", GrantType: grantClientCredentials, ClientID: "c", ClientSecret: "x", TokenURL: "https://t.example/token", Provider: "ses"},
	} {
		err := v.Validate()
		var fe *FieldError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != strings.TrimSpace(field) {
			t.Errorf("%v: Validate = %v, want a *FieldError for %s matching ErrInvalid", v, err, field)
		}
	}
}
