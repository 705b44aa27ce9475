package emailconn

import (
	"bytes"
	"testing"

	"github.com/emailconn/emailconn/internal/compose"
)

// FuzzCanonical checks the promise BDAT's size rests on: a message
// canonical says goes on the wire as it is is exactly what the
// canonicalising writer (the DATA path) makes of it, without an error.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"", "a\r\n", "a\n", "a\r", "\r\n.\r\n", "x\x00y\r\n", string(bytes.Repeat([]byte("x"), 999)) + "\r\n",
		string(bytes.Repeat([]byte("x"), 998)) + "\r\n", "a\r\r\n", "no final line end"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if !canonical(p) {
			return
		}
		var out bytes.Buffer
		w := compose.NewCanonicalWriter(&out)
		_, err := w.Write(p)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil || !bytes.Equal(out.Bytes(), p) {
			t.Fatalf("canonical(%q) = true, but the canonical writer gives %q, %v", p, out.Bytes(), err)
		}
	})
}

func TestIssue17_Canonical(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"": true, "a\r\nb\r\n": true, "no line end": true, "a\nb": false, "a\rb": false, "a\x00": false, "a\r": false,
		string(bytes.Repeat([]byte("x"), 998)) + "\r\n": true, string(bytes.Repeat([]byte("x"), 999)) + "\r\n": false,
	} {
		if got := canonical([]byte(s)); got != want {
			t.Errorf("canonical(%.20q…) = %v, want %v", s, got, want)
		}
	}
}
