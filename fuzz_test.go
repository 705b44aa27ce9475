package emailconn_test

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// FuzzLoadConfig feeds arbitrary bytes to the configuration loader: it never
// panics; a configuration it accepts is valid, saves, and loads back equal.
func FuzzLoadConfig(f *testing.F) {
	f.Add([]byte(designConfig))
	f.Add([]byte(`{"connections":[{"name":"a","mailServer":"[::1]:25","smtpTimeout":1.5,"enableTSL":true}],"processes":{"P":"b"}}`))
	f.Add([]byte(`{"grid":{"mailServer":"relay.internal","to":"a@example.com"},"oauth2Configurations":[{"name":"o","provider":"google","grantType":"refresh_token","clientID":"x","refreshToken":"r"}]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"connections":null,"grid":null}`))
	f.Add([]byte(`{"grid":{"mailServer":"relay.internal","enableTLS":true,"enableTLS":false}}`))
	f.Add([]byte(`{"connections":[]} {"grid":{"mailServer":"x"}}`))
	f.Add([]byte(`{"connections":[]}garbage`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := emailconn.LoadConfig(bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "emailconn: ") {
				t.Fatalf("error without prefix: %q", err)
			}
			if n := len(err.Error()); n > 10*len(data)+20000 {
				t.Fatalf("a %d-byte input gave a %d-byte error", len(data), n)
			}
			return
		}
		// Issue 11-12: what is accepted is exactly one JSON object, without
		// a key repeated at any level.
		if msg := strictJSON(data); msg != "" {
			t.Fatalf("LoadConfig accepted %s: %q", msg, data)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted an invalid configuration: %v", err)
		}
		var buf bytes.Buffer
		if err := cfg.Save(&buf); err != nil {
			t.Fatal(err)
		}
		saved := buf.String()
		back, err := emailconn.LoadConfig(&buf)
		if err != nil {
			t.Fatalf("LoadConfig(Save(cfg)) = %v\n%s", err, saved)
		}
		var again bytes.Buffer
		back.Save(&again)
		if again.String() != saved {
			t.Fatalf("round trip changed the configuration:\n%s\n%s", saved, again.String())
		}
	})
}

// strictJSON returns why data is not exactly one JSON value without
// repeated keys, or "".
func strictJSON(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			return "invalid JSON"
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return ""
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return "invalid JSON"
				}
				key, _ := k.(string)
				if seen[key] {
					return "a repeated key " + strconv.Quote(key)
				}
				seen[key] = true
				if msg := walk(); msg != "" {
					return msg
				}
			}
		case '[':
			for dec.More() {
				if msg := walk(); msg != "" {
					return msg
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return "invalid JSON"
		}
		return ""
	}
	if msg := walk(); msg != "" {
		return msg
	}
	if _, err := dec.Token(); err != io.EOF {
		return "data after the object"
	}
	return ""
}
