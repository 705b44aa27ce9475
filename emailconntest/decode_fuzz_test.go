package emailconntest

import (
	"strings"
	"testing"
)

// FuzzDecode: decoding whatever a client sends never panics, Raw is always
// the message as it arrived, and media types come without parameters.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"Subject: hi\r\n\r\nbody\r\n",
		"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\r\n--x\r\nContent-Type: application/pdf; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.pdf?=\"\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--x--\r\n",
		"Content-Type: multipart/alternative; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n<p>\xe9</p>\r\n--a",
		"Subject: =?bogus?q?x?=\r\nContent-Transfer-Encoding: x-unknown\r\n\r\n",
		"no header",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := decode("a@example.com", []string{"b@example.com"}, raw)
		if string(m.Raw) != string(raw) || m.From != "a@example.com" {
			t.Fatalf("decode changed the envelope or Raw")
		}
		for _, a := range m.Attachments {
			if strings.Contains(a.ContentType, ";") {
				t.Fatalf("ContentType %q has parameters", a.ContentType)
			}
		}
	})
}
