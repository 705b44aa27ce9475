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
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/examples/internal/cliflags"
)

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
	refs := cliflags.References(fs)
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
	reg, err := emailconn.NewRegistry(cfg, &emailconn.Options{ActionOrigin: *origin, References: *refs})
	if err != nil {
		return bad("%v%s", err, cliflags.RefsHint(err))
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
