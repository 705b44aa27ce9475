package interop

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// ladderLine is a stage line of examples/testconn's ladder: "  ✓ auth …".
var ladderLine = regexp.MustCompile(`(?m)^  ([✓✗–·]) (oauth2 token|\S+)`)

// checkPrintedLadder checks the ladder examples/testconn printed against a
// spec (see outcomes): every stage, in order, with its mark.
func checkPrintedLadder(t *testing.T, out, spec string) {
	t.Helper()
	marks := map[emailconn.Outcome]string{emailconn.OutcomePassed: "✓", emailconn.OutcomeFailed: "✗", emailconn.OutcomeSkipped: "–", emailconn.OutcomeNotRun: "·"}
	var got, want []string
	for _, m := range ladderLine.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2])
	}
	for i, o := range outcomes(t, spec) {
		want = append(want, marks[o]+" "+string(ladder[i]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("printed ladder\n got %q\nwant %q\noutput:\n%s", got, want, out)
	}
}

// lastLine returns the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestTestconnExample runs examples/testconn as a user would, with a
// configuration file, against Mailpit: passing connections print the
// ladder, the TLS session, the certificate and a sentence, and exit 0;
// -json prints a report that parses; a wrong password, STARTTLS not
// offered and the wrong port exit 1 with the sentence on standard output;
// bad input exits 2 with the reason on standard error. Nothing is stored.
func TestTestconnExample(t *testing.T) {
	s := setup(t)
	cert := s.serverCert(t)
	insts := []string{instPlain, instSTARTTLS, instTLS}
	for _, inst := range insts {
		mailpitOf(inst).reset(t)
	}
	cfg := writeConfig(t, map[string]any{
		"connections": []jsonConn{
			func() jsonConn {
				c := s.connJSON("alerts", instSTARTTLS, "starttls")
				c["emailActionsBaseURL"] = "https://approvals.example.com"
				return c
			}(),
			s.connJSON("smtps", instTLS, "implicit"),
			s.connJSON("no-starttls", instPlain, "starttls"),
			func() jsonConn {
				c := s.connJSON("wrong-port", instTLS, "starttls")
				c["smtpConnectionTimeout"] = 1
				return c
			}(),
		},
		"grid": s.connJSON("", instPlain, "none"),
	})
	const wrong = "wrong-password-for-testconn"
	badPassword := []string{envPassword + "=" + wrong}
	origin := "http://engine.internal:8080"
	port := func(inst string) string { _, p, _ := net.SplitHostPort(smtpAddr(inst)); return p }

	type jsonReport struct {
		emailconn.TestReport
		Error string         // the "error" member
		Raw   map[string]any // every member
	}
	parse := func(t *testing.T, out string) *jsonReport {
		t.Helper()
		var rep jsonReport
		if err := json.Unmarshal([]byte(out), &rep.TestReport); err != nil {
			t.Fatalf("-json output does not parse: %v\n%s", err, out)
		}
		if err := json.Unmarshal([]byte(out), &rep.Raw); err != nil {
			t.Fatalf("-json output does not parse: %v\n%s", err, out)
		}
		rep.Error, _ = rep.Raw["error"].(string)
		if got := []byte(strings.TrimSpace(out)); !json.Valid(got) {
			t.Fatalf("-json output is not one JSON value:\n%s", out)
		}
		return &rep
	}

	cases := []struct {
		name  string
		env   []string
		args  []string
		code  int
		spec  string   // the printed ladder (text output)
		out   []string // in standard output
		check func(t *testing.T, stdout string)
	}{
		{
			name: "STARTTLS with a probe",
			args: []string{"-connection", "alerts", "-probe-to", probeTo, "-action-origin", origin},
			spec: "s p s p p p s p p p p p",
			out: []string{
				`Test Connection "alerts" (127.0.0.1:` + port(instSTARTTLS) + ", TLS mode starttls)",
				"TLS: " + cert.tlsVersion + ", TLS_",
				fmt.Sprintf("Certificate: %s, names localhost 127.0.0.1 ::1, issued by %s, valid until %s", cert.leaf.Subject, cert.ca.Subject, cert.leaf.NotAfter.UTC().Format("2006-01-02")),
				"Server offers: SIZE ",
				"Action links become: https://approvals.example.com/actions/approve?workunit=4711&action=approve",
				"Not proven:", "only the probe recipient was checked",
			},
			check: func(t *testing.T, stdout string) {
				checkPassingSentence(t, lastLine(stdout), smtpAddr(instSTARTTLS), "STARTTLS ("+cert.tlsVersion+")", "the probe recipient")
				if strings.Contains(stdout, "What to change:") {
					t.Errorf("a passing test printed hints:\n%s", stdout)
				}
			},
		},
		{
			name: "implicit TLS",
			args: []string{"-connection", "smtps"},
			spec: "s p p p p s s p s s s p",
			out:  []string{"TLS: " + cert.tlsVersion, "issued by " + cert.ca.Subject.String()},
			check: func(t *testing.T, stdout string) {
				checkPassingSentence(t, lastLine(stdout), smtpAddr(instTLS), "implicit TLS ("+cert.tlsVersion+")")
				if strings.Contains(stdout, "usually expects STARTTLS") {
					t.Errorf("a clean implicit-TLS success warns about the port:\n%s", stdout)
				}
			},
		},
		{
			name: "grid settings without TLS",
			args: []string{"-connection", "grid"},
			spec: "s p s p p s s p s s s p",
			out:  []string{"Server offers: ", "credentials were sent in plaintext"},
			check: func(t *testing.T, stdout string) {
				checkPassingSentence(t, lastLine(stdout), smtpAddr(instPlain), "without TLS")
				if strings.Contains(stdout, "TLS: ") || strings.Contains(stdout, "Certificate: ") {
					t.Errorf("a plaintext session printed TLS details:\n%s", stdout)
				}
			},
		},
		{
			name: "-json, passing",
			args: []string{"-connection", "alerts", "-probe-to", probeTo, "-json"},
			check: func(t *testing.T, stdout string) {
				rep := parse(t, stdout)
				if rep.Raw["ok"] != true || !rep.OK || rep.Connection != "alerts" {
					t.Errorf("JSON: ok %v, connection %q; want true, alerts", rep.Raw["ok"], rep.Connection)
				}
				if _, ok := rep.Raw["error"]; ok {
					t.Errorf("JSON of a passing test has an error: %v", rep.Raw["error"])
				}
				checkLadder(t, &rep.TestReport, "s p s p p p s p p p p p")
				if rep.Server.TLSVersion != cert.tlsVersion || rep.Server.Mechanism != "PLAIN" || rep.Server.TLSMode != "starttls" {
					t.Errorf("JSON server: %+v", rep.Server)
				}
				checkCertificate(t, rep.Certificate, cert, true)
				checkPassingSentence(t, rep.Sentence, smtpAddr(instSTARTTLS), "STARTTLS ("+cert.tlsVersion+")", "the probe recipient")
				if len(rep.Hints) != 0 || rep.Raw["hints"] == nil {
					t.Errorf("JSON hints: %v, want an empty list", rep.Raw["hints"])
				}
			},
		},
		{
			name: "wrong password", env: badPassword, code: 1,
			args: []string{"-connection", "alerts", "-probe-to", probeTo},
			spec: "s p s p p p s f n n n n",
			out:  []string{"✗ auth", "535", "What to change:", "The server rejected the credentials of " + s.user},
			check: func(t *testing.T, stdout string) {
				want := "Test Connection to " + smtpAddr(instSTARTTLS) + " stopped at authentication: 535 "
				if l := lastLine(stdout); !strings.HasPrefix(l, want) || !strings.HasSuffix(l, "check the user name and password.") {
					t.Errorf("last line %q, want the sentence %q… with the hint", l, want)
				}
			},
		},
		{
			name: "-json, wrong password", env: badPassword, code: 1,
			args: []string{"-connection", "alerts", "-json"},
			check: func(t *testing.T, stdout string) {
				rep := parse(t, stdout)
				if rep.Raw["ok"] != false || !strings.Contains(rep.Error, "535") || !strings.Contains(rep.Sentence, "stopped at authentication") {
					t.Errorf("JSON: ok %v, error %q, sentence %q", rep.Raw["ok"], rep.Error, rep.Sentence)
				}
				checkLadder(t, &rep.TestReport, "s p s p p p s f n n n n")
			},
		},
		{
			name: "STARTTLS not offered", code: 1,
			args: []string{"-connection", "no-starttls"},
			spec: "s p s p p f n n n n n n",
			out:  []string{"✗ starttls", "does not offer STARTTLS on port " + port(instPlain)},
			check: func(t *testing.T, stdout string) {
				if l := lastLine(stdout); !strings.HasPrefix(l, "Test Connection to "+smtpAddr(instPlain)+" stopped at STARTTLS") {
					t.Errorf("last line %q, want the sentence", l)
				}
			},
		},
		{
			name: "STARTTLS against the implicit-TLS port", code: 1,
			args: []string{"-connection", "wrong-port"},
			spec: "s p s f n n n n n n n n",
			out:  []string{"✗ greeting", `set tlsMode to "implicit"`},
			check: func(t *testing.T, stdout string) {
				if l := lastLine(stdout); !strings.HasPrefix(l, "Test Connection to "+smtpAddr(instTLS)+" stopped at the greeting stage") {
					t.Errorf("last line %q, want the sentence", l)
				}
			},
		},
	}
	bad := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no arguments", nil, "-config is required"},
		{"no connection", []string{"-config", cfg}, "-connection is required"},
		{"unknown connection", []string{"-config", cfg, "-connection", "nope"}, "nope"},
		{"missing configuration file", []string{"-config", cfg + ".missing", "-connection", "alerts"}, "no such file"},
		{"configuration not JSON", []string{"-config", writeFile(t, "broken.json", []byte("{connections")), "-connection", "alerts"}, "broken.json"},
		{"invalid connection", []string{"-config", writeConfig(t, map[string]any{"connections": []jsonConn{{"name": "x", "tlsMode": "sometimes"}}}), "-connection", "x"}, "tlsMode"},
		{"unexpected argument", []string{"-config", cfg, "-connection", "alerts", "extra"}, "unexpected arguments: extra"},
		{"unknown flag", []string{"-config", cfg, "-connection", "alerts", "-verbose"}, "-verbose"},
		{"bad timeout", []string{"-config", cfg, "-connection", "alerts", "-timeout", "soon"}, "-timeout"},
	}

	t.Run("runs", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				r := runExample(t, "testconn", tc.env, append([]string{"-config", cfg}, tc.args...)...)
				if r.code != tc.code {
					t.Fatalf("testconn exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
				}
				if r.stderr != "" {
					t.Errorf("testconn wrote to standard error:\n%s", r.stderr)
				}
				if tc.spec != "" {
					checkPrintedLadder(t, r.stdout, tc.spec)
				}
				for _, want := range tc.out {
					if !strings.Contains(r.stdout, want) {
						t.Errorf("output lacks %q:\n%s", want, r.stdout)
					}
				}
				if tc.check != nil {
					tc.check(t, r.stdout)
				}
				for _, sec := range append(s.secrets(s.password), s.secrets(wrong)...) {
					if strings.Contains(r.stdout+r.stderr, sec) {
						t.Errorf("testconn's output contains a password (or its base64 form)")
					}
				}
			})
		}
		for _, tc := range bad {
			t.Run("bad input/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := runExample(t, "testconn", nil, tc.args...)
				if r.code != 2 {
					t.Fatalf("testconn %q exited %d, want 2\nstdout:\n%s\nstderr:\n%s", tc.args, r.code, r.stdout, r.stderr)
				}
				if r.stdout != "" {
					t.Errorf("testconn wrote to standard output on bad input:\n%s", r.stdout)
				}
				if !strings.Contains(r.stderr, tc.stderr) {
					t.Errorf("standard error does not say %q:\n%s", tc.stderr, r.stderr)
				}
			})
		}
	})
	for _, inst := range insts {
		mailpitOf(inst).mustBeEmpty(t)
	}
}

// checkPassingSentence checks the sentence of a passing test.
func checkPassingSentence(t *testing.T, sentence, addr string, says ...string) {
	t.Helper()
	if !strings.HasPrefix(sentence, "Connected to "+addr+", ") {
		t.Errorf("sentence %q does not start with %q", sentence, "Connected to "+addr)
	}
	for _, bad := range []string{"error", "fail"} {
		if strings.Contains(strings.ToLower(sentence), bad) {
			t.Errorf("sentence of a passing test contains %q: %q", bad, sentence)
		}
	}
	for _, w := range says {
		if !strings.Contains(sentence, w) {
			t.Errorf("sentence %q does not say %q", sentence, w)
		}
	}
}
