package smtptest

import (
	"bufio"
	"bytes"
	"net/textproto"
	"strings"
	"testing"
)

// decodeAll feeds in to a dotDecoder in pieces of the given size.
func decodeAll(in []byte, piece int, limit int64) (out []byte, used int, done bool, d *dotDecoder) {
	d = &dotDecoder{limit: limit}
	for used < len(in) {
		end := min(len(in), used+piece)
		u, ok := d.feed(in[used:end])
		used += u
		if ok {
			return d.out, used, true, d
		}
	}
	return d.out, used, false, d
}

func TestDotDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, out string
		used    int
	}{
		{".\r\n", "", 3},
		{"a\r\n.\r\nMAIL", "a\r\n", 6},
		{"..x\r\n.\r\n", ".x\r\n", 8},
		{"a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 10},     // LF.LF is not the end
		{"a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 11}, // LF.CRLF is not the end
		{"a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", 10},     // CR.CR is not the end
		{"a\r\r\n.\r\n", "a\r\r\n", 7},              // bare CR, then CRLF.CRLF
		{"a\r\n.\rx\r\n.\r\n", "a\r\n\rx\r\n", 11},  // ".\r" then not LF
	} {
		for _, piece := range []int{1, 2, 3, 1000} {
			out, used, done, _ := decodeAll([]byte(tc.in), piece, 0)
			if !done || string(out) != tc.out || used != tc.used {
				t.Errorf("decode(%q) in pieces of %d = %q, used %d, done %v; want %q, %d", tc.in, piece, out, used, done, tc.out, tc.used)
			}
		}
	}
	out, _, done, d := decodeAll([]byte("0123456789\r\n.\r\n"), 4, 5)
	if !done || string(out) != "01234" || !d.tooBig || d.size != 12 {
		t.Errorf("limited decode = %q, tooBig %v, size %d", out, d.tooBig, d.size)
	}
}

// FuzzDotDecoder checks that the decoder undoes net/textproto's dot
// stuffing and does not depend on how the input is split.
func FuzzDotDecoder(f *testing.F) {
	for _, s := range []string{"", "a", ".", "..", "a\r\n.b", "x\r.\ry", ".\r\n.\r\n", "a\n.\nb"} {
		f.Add(s, uint8(3))
	}
	f.Fuzz(func(t *testing.T, body string, piece uint8) {
		whole, wu, wd, _ := decodeAll([]byte(body), len(body)+1, 0)
		split, su, sd, _ := decodeAll([]byte(body), int(piece)+1, 0)
		if !bytes.Equal(whole, split) || wu != su || wd != sd {
			t.Fatalf("split decoding differs: %q/%d/%v vs %q/%d/%v", whole, wu, wd, split, su, sd)
		}
		if strings.Contains(body, "\r") {
			return
		}
		// Without CRs, textproto turns LF into CRLF, stuffs dots and ends
		// with CRLF.CRLF (adding a CRLF, even to an empty body): decoding
		// gives that CRLF form back.
		var wire bytes.Buffer
		bw := bufio.NewWriter(&wire)
		w := textproto.NewWriter(bw).DotWriter()
		w.Write([]byte(body))
		w.Close()
		want := strings.ReplaceAll(body, "\n", "\r\n")
		if !strings.HasSuffix(want, "\r\n") {
			want += "\r\n"
		}
		out, used, done, _ := decodeAll(wire.Bytes(), int(piece)+1, 0)
		if !done || string(out) != want || used != wire.Len() {
			t.Fatalf("decode(stuff(%q)) = %q (used %d of %d, done %v), want %q", body, out, used, wire.Len(), done, want)
		}
	})
}
