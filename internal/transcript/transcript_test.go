package transcript

import (
	"strings"
	"testing"
)

func record(steps []struct {
	client bool
	data   string
}, split int) []string {
	var lines []string
	r := &Recorder{Emit: func(c bool, l string) {
		p := "S: "
		if c {
			p = "C: "
		}
		lines = append(lines, p+l)
	}}
	for _, s := range steps {
		data := []byte(s.data)
		for len(data) > 0 {
			n := min(split, len(data))
			if s.client {
				r.Client(data[:n])
			} else {
				r.Server(data[:n])
			}
			data = data[n:]
		}
	}
	return lines
}

func TestRecorderRedacts(t *testing.T) {
	steps := []struct {
		client bool
		data   string
	}{
		{false, "220 mx ESMTP\r\n"},
		{true, "EHLO client\r\n"},
		{false, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n"},
		{true, "AUTH LOGIN\r\n"},
		{false, "334 VXNlcm5hbWU6\r\n"},
		{true, "dXNlcg==\r\n"},
		{false, "334 UGFzc3dvcmQ6\r\n"},
		{true, "c2VjcmV0LXBhc3N3b3Jk\r\n"},
		{false, "235 2.7.0 ok\r\n"},
		{true, "AUTH PLAIN AHVzZXIAc2VjcmV0\r\n"},
		{false, "535 5.7.8 no\r\n"},
		{true, "MAIL FROM:<a@example.com>\r\n"},
		{false, "250 ok\r\n"},
		{true, "DATA\r\n"},
		{false, "354 go\r\n"},
		{true, "Subject: secret body\r\n\r\nline\r\n..dotted\r\n.\r\n"},
		{false, "250 2.0.0 queued as X\r\n"},
		{true, "DATA\r\n"},
		{false, "354 go\r\n"},
		{true, ".\r\n"},
		{false, "250 ok\r\n"},
		{true, "QUIT\r\n"},
	}
	want := []string{
		"S: 220 mx ESMTP", "C: EHLO client", "S: 250-mx", "S: 250 AUTH PLAIN LOGIN",
		"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: [redacted]", "S: 334 UGFzc3dvcmQ6", "C: [redacted]", "S: 235 2.7.0 ok",
		"C: AUTH PLAIN [redacted]", "S: 535 5.7.8 no",
		"C: MAIL FROM:<a@example.com>", "S: 250 ok", "C: DATA", "S: 354 go",
		"C: [message: 40 bytes]", "C: .", "S: 250 2.0.0 queued as X",
		"C: DATA", "S: 354 go", "C: [message: 0 bytes]", "C: .", "S: 250 ok", "C: QUIT",
	}
	for _, split := range []int{1, 2, 3, 7, 1 << 20} {
		got := record(steps, split)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("split %d:\n got %q\nwant %q", split, got, want)
		}
		for _, l := range got {
			for _, secret := range []string{"c2VjcmV0", "AHVzZXIAc2VjcmV0", "dXNlcg", "secret body"} {
				if strings.Contains(l, secret) {
					t.Errorf("split %d: line %q leaks %q", split, l, secret)
				}
			}
		}
	}
}
