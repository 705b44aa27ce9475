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

// TestIssue11_6_PipelinedAuthReplies: a server that answers AUTH LOGIN
// ahead ("334 …\r\n334 …\r\n235 …" in one write, before the client sent its
// user name) must not make the user name and password loggable: what a
// client line is follows the replies matched to the client's lines, not
// when they arrived.
func TestIssue11_6_PipelinedAuthReplies(t *testing.T) {
	type step = struct {
		client bool
		data   string
	}
	secrets := []string{"dXNlcg==", "c2VjcmV0LXBhc3N3b3Jk", "secret body", "AHVzZXIAc2VjcmV0"}
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"issue11-6/login-answered-ahead", []step{
			{false, "220 mx ESMTP\r\n"},
			{true, "EHLO client\r\n"},
			{false, "250-mx\r\n250 AUTH LOGIN\r\n"},
			{true, "AUTH LOGIN\r\n"},
			{false, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0 ok\r\n"},
			{true, "dXNlcg==\r\n"},
			{true, "c2VjcmV0LXBhc3N3b3Jk\r\n"},
			{true, "MAIL FROM:<a@example.com>\r\n"},
			{false, "250 ok\r\n"},
		}, []string{
			"S: 220 mx ESMTP", "C: EHLO client", "S: 250-mx", "S: 250 AUTH LOGIN", "C: AUTH LOGIN",
			"S: 334 VXNlcm5hbWU6", "S: 334 UGFzc3dvcmQ6", "S: 235 2.7.0 ok",
			"C: [redacted]", "C: [redacted]", "C: MAIL FROM:<a@example.com>", "S: 250 ok",
		}},
		{"issue11-6/everything-answered-ahead", []step{
			// Greeting, EHLO, AUTH, both prompts, MAIL, RCPT, DATA and the
			// message's reply, all before the client says anything.
			{false, "220 mx\r\n250 mx\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"},
			{true, "EHLO client\r\nAUTH LOGIN\r\ndXNlcg==\r\nc2VjcmV0LXBhc3N3b3Jk\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nsecret body\r\n.\r\nQUIT\r\n"},
		}, []string{
			"S: 220 mx", "S: 250 mx", "S: 334 VXNlcm5hbWU6", "S: 334 UGFzc3dvcmQ6", "S: 235 ok", "S: 250 ok", "S: 250 ok", "S: 354 go", "S: 250 queued",
			"C: EHLO client", "C: AUTH LOGIN", "C: [redacted]", "C: [redacted]", "C: MAIL FROM:<a@example.com>", "C: RCPT TO:<b@example.com>",
			"C: DATA", "C: [message: 13 bytes]", "C: .", "C: QUIT",
		}},
		{"issue11-6/client-ahead-of-replies", []step{
			// A client that pipelines: the reply that decides is not there
			// yet, so the lines after AUTH and DATA are treated as secret.
			{false, "220 mx\r\n"},
			{true, "EHLO client\r\nAUTH PLAIN\r\nAHVzZXIAc2VjcmV0\r\n"},
			{false, "250 mx\r\n334 \r\n235 ok\r\n"},
			{true, "MAIL FROM:<a@example.com>\r\nDATA\r\nsecret body\r\n.\r\n"},
			{false, "250 ok\r\n354 go\r\n250 queued\r\n"},
		}, []string{
			"S: 220 mx", "C: EHLO client", "C: AUTH PLAIN", "C: [redacted]", "S: 250 mx", "S: 334 ", "S: 235 ok",
			"C: MAIL FROM:<a@example.com>", "C: DATA", "C: [message: 13 bytes]", "C: .", "S: 250 ok", "S: 354 go", "S: 250 queued",
		}},
		{"refused-DATA-then-commands", []step{
			{false, "220 mx\r\n"},
			{true, "DATA\r\n"},
			{false, "554 no valid recipients\r\n"},
			{true, "RSET\r\n"},
			{false, "250 ok\r\n"},
		}, []string{"S: 220 mx", "C: DATA", "S: 554 no valid recipients", "C: RSET", "S: 250 ok"}},
		{"auth-ended-by-an-early-failure", []step{
			// The exchange ends at the first reply that is not 334; the
			// next line is a command again.
			{false, "220 mx\r\n"},
			{true, "AUTH LOGIN\r\n"},
			{false, "535 5.7.8 no\r\n"},
			{true, "QUIT\r\n"},
		}, []string{"S: 220 mx", "C: AUTH LOGIN", "S: 535 5.7.8 no", "C: QUIT"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, split := range []int{1, 3, 1 << 20} {
				got := record(tc.steps, split)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("split %d:\n got %q\nwant %q", split, got, tc.want)
				}
				for _, l := range got {
					for _, secret := range secrets {
						if strings.Contains(l, secret) {
							t.Errorf("split %d: line %q leaks %q", split, l, secret)
						}
					}
				}
			}
		})
	}
}

func TestIssue17_PipelinedFlightAndBDATChunks(t *testing.T) {
	type step = struct {
		client bool
		data   string
	}
	steps := []step{
		{false, "220 mx\r\n"},
		{true, "EHLO client\r\n"},
		{false, "250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n"},
		// One flight: MAIL, two RCPTs and the whole message as one chunk,
		// which holds lines that look like commands and a lone dot.
		{true, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nBDAT 30 LAST\r\nAUTH PLAIN secret\r\n.\r\nQUIT\r\n\r\n"},
		{false, "250 ok\r\n550 no\r\n250 ok\r\n250 queued\r\n"},
		// A streamed message: two chunks, then an empty last one.
		{true, "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"},
		{false, "250 ok\r\n250 ok\r\n"},
		{true, "BDAT 5\r\nsecreBDAT 3\r\nt\r\n"},
		{false, "250 more\r\n"},
		{true, "BDAT 0 LAST\r\nQUIT\r\n"},
		{false, "250 more\r\n250 queued\r\n221 bye\r\n"},
	}
	want := []string{
		"S: 220 mx", "C: EHLO client", "S: 250-mx", "S: 250-PIPELINING", "S: 250 CHUNKING",
		"C: MAIL FROM:<a@example.com>", "C: RCPT TO:<b@example.com>", "C: RCPT TO:<c@example.com>", "C: BDAT 30 LAST", "C: [chunk: 30 bytes]",
		"S: 250 ok", "S: 550 no", "S: 250 ok", "S: 250 queued",
		"C: MAIL FROM:<a@example.com>", "C: RCPT TO:<b@example.com>", "S: 250 ok", "S: 250 ok",
		"C: BDAT 5", "C: [chunk: 5 bytes]", "C: BDAT 3", "C: [chunk: 3 bytes]", "S: 250 more",
		"C: BDAT 0 LAST", "C: [chunk: 0 bytes]", "C: QUIT", "S: 250 more", "S: 250 queued", "S: 221 bye",
	}
	for _, split := range []int{1, 3, 1 << 20} {
		got := record(steps, split)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("split %d:\n got %q\nwant %q", split, got, want)
		}
		for _, l := range got {
			if strings.Contains(l, "secre") {
				t.Errorf("split %d: chunk content in the transcript: %q", split, l)
			}
		}
	}
}
