// Command testconn runs Test Connection on an Email Connection of a
// configuration file and prints the stage ladder, the hints and warnings,
// and one sentence — or, with -json, the report as JSON for a UI.
//
//	go run ./examples/testconn -config engine.json -connection workunit-alerts [-probe-to ops@example.com] [-json] [-restricted]
//
// The exit status is 0 when the test passed, 1 when it failed and 2 on bad
// input.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emailconn/emailconn"
)

// list is a repeatable flag.
type list []string

func (l *list) String() string { return strings.Join(*l, ",") }
func (l *list) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("testconn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration `file` (JSON)")
	name := fs.String("connection", "", "the connection to test (\"grid\" for the grid settings)")
	probe := fs.String("probe-to", "", "also probe MAIL FROM / RCPT TO with this recipient `address` (no message is sent)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 30*time.Second, "bound the whole test")
	origin := fs.String("action-origin", "http://engine.invalid", "the engine's own origin of action links, for the Email Actions Base URL preview")
	restricted := fs.Bool("restricted", false, "report only what a tenant may see: no server texts, resolved addresses or certificate names")
	var refs emailconn.References
	fs.Var((*list)(&refs.Env), "allow-env", "environment `variable` the configuration's \"env:\" secrets may name (repeatable, comma-separated; PREFIX* for a prefix)")
	fs.Var((*list)(&refs.Dirs), "allow-dir", "`directory` under which the configuration's \"file:\" secrets and caFile may name files (repeatable, comma-separated)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "testconn: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *configFile == "":
		return bad("-config is required")
	case *name == "":
		return bad("-connection is required")
	}
	f, err := os.Open(*configFile)
	if err != nil {
		return bad("%v", err)
	}
	cfg, err := emailconn.LoadConfig(f)
	f.Close()
	if err != nil {
		return bad("%s:\n%v", *configFile, err)
	}
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{ActionOrigin: *origin, References: refs})
	if err != nil {
		return bad("%v%s", err, refsHint(err))
	}
	defer reg.Close()
	conn := *name
	if conn == "grid" {
		conn = ""
	}
	if _, err := reg.Sender(conn); err != nil {
		return bad("%v", err)
	}

	rep := reg.TestConnection(context.Background(), conn, &emailconn.TestOptions{ProbeRecipient: *probe, Timeout: *timeout, Restricted: *restricted})
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		stdout.Write(b)
		fmt.Fprintln(stdout)
	} else {
		printReport(stdout, rep)
	}
	if !rep.OK {
		return 1
	}
	return 0
}

// refsHint names the flags that allow a secret reference or caFile the
// configuration holds, when err refuses one.
func refsHint(err error) string {
	if refusesReference(err) {
		return "\n(the configuration's \"env:\" and \"file:\" secrets and caFile must be allowed with -allow-env and -allow-dir)"
	}
	return ""
}

// refusesReference reports whether err holds a problem with a field that
// holds a reference or a file name.
func refusesReference(err error) bool {
	var fes []*emailconn.FieldError
	var one *emailconn.FieldError
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range multi.Unwrap() {
			if errors.As(e, &one) {
				fes = append(fes, one)
			}
		}
	} else if errors.As(err, &one) {
		fes = append(fes, one)
	}
	for _, fe := range fes {
		for _, f := range []string{".password", ".caFile", ".clientSecret", ".refreshToken"} {
			if strings.HasSuffix(fe.Field, f) {
				return true
			}
		}
	}
	return false
}

var marks = map[emailconn.Outcome]string{
	emailconn.OutcomePassed: "✓", emailconn.OutcomeFailed: "✗", emailconn.OutcomeSkipped: "–", emailconn.OutcomeNotRun: "·",
}

func printReport(w io.Writer, rep *emailconn.TestReport) {
	fmt.Fprintf(w, "Test Connection %q (%s:%d, TLS mode %s)\n\n", rep.Connection, rep.Server.Host, rep.Server.Port, rep.Server.TLSMode)
	for _, s := range rep.Stages {
		dur := ""
		if s.Outcome == emailconn.OutcomePassed || s.Outcome == emailconn.OutcomeFailed {
			dur = s.Duration.Round(10 * time.Microsecond).String()
		}
		line := fmt.Sprintf("  %s %-13s %9s", marks[s.Outcome], s.Stage, dur)
		if s.Detail != "" {
			line += "  " + s.Detail
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if rep.Server.TLSVersion != "" || len(rep.Server.Extensions) > 0 {
		fmt.Fprintln(w)
		if rep.Server.TLSVersion != "" {
			fmt.Fprintf(w, "TLS: %s, %s\n", rep.Server.TLSVersion, rep.Server.CipherSuite)
		}
		if c := rep.Certificate; c != nil {
			fmt.Fprintf(w, "Certificate: %s, names %s, issued by %s, valid until %s\n", c.Subject,
				strings.Join(append(append([]string{}, c.DNSNames...), c.IPs...), " "), c.Issuer, c.NotAfter.Format("2006-01-02"))
		}
		if len(rep.Server.Extensions) > 0 {
			fmt.Fprintf(w, "Server offers: %s\n", strings.Join(rep.Server.Extensions, ", "))
		}
	}
	if rep.ActionLinkPreview != "" {
		fmt.Fprintf(w, "Action links become: %s\n", rep.ActionLinkPreview)
	}
	section := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s:\n", title)
		for _, it := range items {
			fmt.Fprintf(w, "  - %s\n", it)
		}
	}
	section("What to change", rep.Hints)
	section("Warnings", rep.Warnings)
	section("Not proven", rep.NotProven)
	fmt.Fprintf(w, "\n%s\n", rep.Sentence)
}
