package replyclass

import (
	"strings"
	"testing"
	"time"
)

// FuzzClassify: on any input Classify returns a decision it can stand by:
// a known action, a rule name, a wait that is not negative, Closing only
// for a 421 or a row that says so, and Proceed exactly for 2xx/3xx.
func FuzzClassify(f *testing.F) {
	for _, c := range cases {
		f.Add(c.reply.Code, c.reply.Enhanced, c.reply.Text, uint8(c.reply.Stage), c.reply.Provider, c.reply.OAuth2)
	}
	f.Add(452, "", "\x00\xff 4.5.3", uint8(255), "google", true)
	f.Fuzz(func(t *testing.T, code int, enh, text string, stage uint8, provider string, oauth2 bool) {
		r := Reply{Code: code, Enhanced: enh, Text: text, Stage: Stage(stage), Provider: provider, OAuth2: oauth2}
		d := Classify(r)
		if d.Action > Fail {
			t.Fatalf("Classify(%+v): action %d", r, d.Action)
		}
		if d.Rule == "" {
			t.Fatalf("Classify(%+v): no rule", r)
		}
		if d.Wait < 0 {
			t.Fatalf("Classify(%+v): wait %v", r, d.Wait)
		}
		if (d.Action == Proceed) != (code >= 200 && code < 400) {
			t.Fatalf("Classify(%+v) = %v", r, d.Action)
		}
		if code == 421 && !d.Closing {
			t.Fatalf("Classify(%+v): a 421 not Closing", r)
		}
		if d.Action == Pause && (!d.Throttled || d.Wait <= 0) {
			t.Fatalf("Classify(%+v): a pause of %v, throttled %v", r, d.Wait, d.Throttled)
		}
		if again := Classify(r); again != d {
			t.Fatalf("Classify(%+v) is not deterministic: %+v then %+v", r, d, again)
		}
		_ = d.Until(time.Time{})
		_ = Stage(stage).String()
		e, rest := ParseEnhanced(text)
		if e != "" && (!validEnhanced(e) || !strings.Contains(text, e) || len(rest) > len(text)) {
			t.Fatalf("ParseEnhanced(%q) = %q, %q", text, e, rest)
		}
	})
}
