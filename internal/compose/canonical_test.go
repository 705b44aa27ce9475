package compose

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// refCanonical is the reference for NewCanonicalWriter: the whole input
// with every line ending made CRLF. strings.Replacer tries the old strings
// in argument order at each position, so "\r\n" is kept whole.
var refCanonical = strings.NewReplacer("\r\n", "\r\n", "\r", "\r\n", "\n", "\r\n")

var canonicalTests = []struct {
	in, want string
}{
	{"", ""},
	{"abc", "abc"},
	{"a\r\nb\r\n", "a\r\nb\r\n"},
	{"a\nb\n", "a\r\nb\r\n"},
	{"a\rb\r", "a\r\nb\r\n"},
	{"\r\r\n", "\r\n\r\n"},
	{"\n\r", "\r\n\r\n"},
	{"\r\n\r\n", "\r\n\r\n"},
	{"\n\n", "\r\n\r\n"},
	{"\r\r", "\r\n\r\n"},
	// The smuggling sequences of the research notes, §1.2.
	{"x\r.\rSMUGGLED\r", "x\r\n.\r\nSMUGGLED\r\n"},
	{"x\r.\r\nSMUGGLED\r\n", "x\r\n.\r\nSMUGGLED\r\n"},
	{"x\n.\r\nSMUGGLED\r\n", "x\r\n.\r\nSMUGGLED\r\n"},
	{"x\r\n.\nSMUGGLED\r\n", "x\r\n.\r\nSMUGGLED\r\n"},
	{"x\n.\nSMUGGLED\n", "x\r\n.\r\nSMUGGLED\r\n"},
	{"a\n.\r\n", "a\r\n.\r\n"},
	{"trailing\r", "trailing\r\n"},
	{"ünïcödé\rok", "ünïcödé\r\nok"},
}

// writeSplit writes in to a canonical writer in the chunks that the cut
// points give, closes it and returns the output.
func writeSplit(t *testing.T, in string, cuts ...int) string {
	t.Helper()
	var out bytes.Buffer
	cw := NewCanonicalWriter(&out)
	prev := 0
	for _, c := range append(cuts, len(in)) {
		n, err := cw.Write([]byte(in[prev:c]))
		if err != nil || n != c-prev {
			t.Fatalf("Write(%q) = %d, %v, want %d, nil", in[prev:c], n, err, c-prev)
		}
		prev = c
	}
	if err := cw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return out.String()
}

func TestCanonicalWriter(t *testing.T) {
	for _, tt := range canonicalTests {
		t.Run(tt.in, func(t *testing.T) {
			if ref := refCanonical.Replace(tt.in); ref != tt.want {
				t.Fatalf("reference(%q) = %q, want %q", tt.in, ref, tt.want)
			}
			if got := writeSplit(t, tt.in); got != tt.want {
				t.Errorf("canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// Every split into two writes, and one byte per write.
			for i := 0; i <= len(tt.in); i++ {
				if got := writeSplit(t, tt.in, i); got != tt.want {
					t.Errorf("canonical(%q split at %d) = %q, want %q", tt.in, i, got, tt.want)
				}
			}
			var cuts []int
			for i := 1; i < len(tt.in); i++ {
				cuts = append(cuts, i)
			}
			if got := writeSplit(t, tt.in, cuts...); got != tt.want {
				t.Errorf("canonical(%q one byte at a time) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestCanonicalWriterLarge converts inputs larger than the internal buffer,
// with long runs and many conversions.
func TestCanonicalWriterLarge(t *testing.T) {
	line := strings.Repeat("x", 900)
	ins := []string{
		strings.Repeat(line+"\n", 200),
		strings.Repeat(line+"\r", 200),
		strings.Repeat(line+"\r\n", 200),
		strings.Repeat("\n", 100000),
		strings.Repeat("a\r", 50000),
		strings.Repeat(line+"\r\n", 100) + strings.Repeat("b\n", 30000) + strings.Repeat(line+"\r\n", 100),
	}
	for i, in := range ins {
		want := refCanonical.Replace(in)
		for _, cut := range []int{0, 1, 4095, 32 << 10, len(in) / 2, len(in) - 1} {
			if got := writeSplit(t, in, cut); got != want {
				t.Errorf("input %d split at %d: output differs from the reference (len %d, want %d)", i, cut, len(got), len(want))
			}
		}
	}
}

func TestCanonicalWriterNUL(t *testing.T) {
	var out bytes.Buffer
	cw := NewCanonicalWriter(&out)
	n, err := cw.Write([]byte("ab\ncd\x00ef"))
	if n != 5 || !errors.Is(err, ErrNUL) {
		t.Fatalf("Write(%q) = %d, %v, want 5, ErrNUL", "ab\ncd\x00ef", n, err)
	}
	if got, want := out.String(), "ab\r\ncd"; got != want {
		t.Errorf("output before NUL = %q, want %q", got, want)
	}
	if n, err := cw.Write([]byte("more")); n != 0 || !errors.Is(err, ErrNUL) {
		t.Errorf("Write after NUL = %d, %v, want 0, ErrNUL", n, err)
	}
	if err := cw.Close(); !errors.Is(err, ErrNUL) {
		t.Errorf("Close after NUL = %v, want ErrNUL", err)
	}
}

func TestCanonicalWriterLineLength(t *testing.T) {
	max := strings.Repeat("x", MaxLineLength)
	tests := []struct {
		name string
		in   []string // one Write each
		ok   bool
	}{
		{"998 then CRLF", []string{max + "\r\n" + max}, true},
		{"998 then LF", []string{max + "\n" + max}, true},
		{"998 then bare CR", []string{max + "\r" + max}, true},
		{"998 across writes", []string{max[:500], max[500:], "\r", "\n", max}, true},
		{"999", []string{max + "y"}, false},
		{"999 across writes", []string{max[:500], max[500:] + "y"}, false},
		{"999 before CRLF", []string{max + "y\r\n"}, false},
		{"999 after pending CR", []string{"a\r", max + "y"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cw := NewCanonicalWriter(io.Discard)
			var err error
			for _, s := range tt.in {
				if _, err = cw.Write([]byte(s)); err != nil {
					break
				}
			}
			if err == nil {
				err = cw.Close()
			}
			if tt.ok && err != nil {
				t.Errorf("writing %q = %v, want nil", tt.in, err)
			}
			if !tt.ok && !errors.Is(err, ErrLineTooLong) {
				t.Errorf("writing %q = %v, want ErrLineTooLong", tt.in, err)
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write(p []byte) (int, error) { return 0, f.err }

func TestCanonicalWriterErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, in := range []string{"canonical\r\n", "bare\n", strings.Repeat("a\n", 40000)} {
		cw := NewCanonicalWriter(failWriter{boom})
		if n, err := cw.Write([]byte(in)); n != 0 || !errors.Is(err, boom) {
			t.Errorf("Write(%.10q…) to a failing writer = %d, %v, want 0, boom", in, n, err)
		}
		if _, err := cw.Write([]byte("x")); !errors.Is(err, boom) {
			t.Errorf("second Write = %v, want boom (sticky)", err)
		}
	}
	cw := NewCanonicalWriter(failWriter{boom})
	if _, err := cw.Write([]byte("\r")); err != nil {
		t.Fatalf("Write(%q) = %v, want nil (the CR is held back)", "\r", err)
	}
	if err := cw.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v, want boom", err)
	}

	var out bytes.Buffer
	cw = NewCanonicalWriter(&out)
	if err := cw.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := cw.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := cw.Write([]byte("x")); err == nil {
		t.Errorf("Write after Close = nil, want error")
	}
}

func TestCanonicalWriterPassesCanonicalChunksWhole(t *testing.T) {
	var calls int
	w := writerFunc(func(p []byte) (int, error) { calls++; return len(p), nil })
	cw := NewCanonicalWriter(w)
	chunk := bytes.Repeat([]byte("a line of text\r\n"), 10000)
	if _, err := cw.Write(chunk); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("a canonical %d-octet chunk took %d writes, want 1", len(chunk), calls)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCanonicalWriterAllocs(t *testing.T) {
	for name, chunk := range benchChunks() {
		cw := NewCanonicalWriter(io.Discard)
		cw.Write(chunk) // allocates the buffer once
		if n := testing.AllocsPerRun(100, func() { cw.Write(chunk) }); n != 0 {
			t.Errorf("%s: Write allocates %v times per call, want 0", name, n)
		}
	}
}

// benchChunks returns 64 KiB of mail-like text (lines of 72 octets) with
// each kind of line ending.
func benchChunks() map[string][]byte {
	line := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit. ", 2)[:72]
	m := map[string][]byte{}
	for name, eol := range map[string]string{"crlf": "\r\n", "lf": "\n", "cr": "\r"} {
		var b []byte
		for len(b) < 64<<10 {
			b = append(b, line+eol...)
		}
		m[name] = b
	}
	return m
}

func BenchmarkCanonicalWriter(b *testing.B) {
	for _, name := range []string{"crlf", "lf", "cr"} {
		chunk := benchChunks()[name]
		b.Run(name, func(b *testing.B) {
			cw := NewCanonicalWriter(io.Discard)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cw.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
