// Command sendmail sends one message through an Email Connection of a
// configuration file, as a workflow engine would.
//
//	go run ./examples/sendmail -config engine.json -connection workunit-alerts \
//	    -to ops@example.com -subject "Workunit 42 failed" -text body.txt -attach report.pdf
//
// -process NAME routes by process instead (the process's connection, or the
// grid settings). The exit status is 0 when the server accepted the message,
// 1 when it was refused or could not be sent (the error is on standard
// error), and 2 on bad input: flags, the configuration or the message.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emailconn/emailconn"
	"github.com/emailconn/emailconn/examples/internal/cliflags"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sendmail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configFile = fs.String("config", "", "configuration `file` (JSON)")
		connName   = fs.String("connection", "", "send through the connection `name`d")
		process    = fs.String("process", "", "send as process `name` (its connection, or the grid settings)")
		from       = fs.String("from", "", "sender `address` (default: the connection's)")
		subject    = fs.String("subject", "", "subject")
		textFile   = fs.String("text", "", "text/plain body `file`")
		htmlFile   = fs.String("html", "", "text/html body `file`")
		origin     = fs.String("action-origin", "", "the engine's own origin of action links, rewritten with the connection's Email Actions Base URL (scheme://host[:port])")
		timeout    = fs.Duration("timeout", 2*time.Minute, "give up after this long")
		verbose    = fs.Bool("v", false, "log the SMTP session (credentials redacted) to standard error")
		to, attach cliflags.List
	)
	refs := cliflags.References(fs)
	fs.Var(&to, "to", "recipient `address` (repeatable, or comma-separated)")
	fs.Var(&attach, "attach", "attach `file` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	bad := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sendmail: "+format+"\n", a...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *configFile == "":
		return bad("-config is required")
	case (*connName == "") == (*process == ""):
		return bad("give exactly one of -connection and -process")
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
	opts := &emailconn.Options{ActionOrigin: *origin, References: *refs}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg, err := emailconn.NewRegistry(cfg, opts)
	if err != nil {
		return bad("%v%s", err, cliflags.RefsHint(err))
	}
	defer reg.Close()

	msg := &emailconn.Message{From: *from, To: to, Subject: *subject}
	if *textFile != "" {
		b, err := os.ReadFile(*textFile)
		if err != nil {
			return bad("%v", err)
		}
		msg.Text = string(b)
	}
	if *htmlFile != "" {
		b, err := os.ReadFile(*htmlFile)
		if err != nil {
			return bad("%v", err)
		}
		msg.HTML = string(b)
	}
	for _, name := range attach {
		af, err := os.Open(name)
		if err != nil {
			return bad("%v", err)
		}
		defer af.Close()
		msg.Attachments = append(msg.Attachments, emailconn.Attachment{Filename: filepath.Base(name), Content: af})
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var receipt *emailconn.Receipt
	if *process != "" {
		rt, err := reg.Resolve(*process)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintln(stdout, rt)
		receipt, err = rt.Send(ctx, msg)
		return report(stdout, stderr, receipt, err)
	}
	s, err := reg.Sender(*connName)
	if err != nil {
		return bad("%v", err)
	}
	receipt, err = s.Send(ctx, msg)
	return report(stdout, stderr, receipt, err)
}

// report prints the outcome and returns the exit status.
func report(stdout, stderr io.Writer, rc *emailconn.Receipt, err error) int {
	if rc != nil {
		fmt.Fprintf(stdout, "accepted by %s for %s: %s\n", rc.Server, strings.Join(rc.Accepted, ", "), rc.Reply)
		fmt.Fprintf(stdout, "Message-ID: <%s>\n", rc.MessageID)
		if rc.TLSVersion != "" {
			fmt.Fprintf(stdout, "TLS: %s\n", rc.TLSVersion)
		}
		if rc.Mechanism != "" {
			fmt.Fprintf(stdout, "AUTH: %s\n", rc.Mechanism)
		}
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, emailconn.ErrInvalid):
		fmt.Fprintln(stderr, err)
		var fe *emailconn.FieldError
		if errors.As(err, &fe) && fe.Field == "Options.ActionOrigin" {
			fmt.Fprintln(stderr, "sendmail: set -action-origin to the engine's own origin of action links (scheme://host[:port])")
		}
		return 2
	case errors.Is(err, emailconn.ErrDeliveryUnknown):
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "sendmail: the server may have accepted the message; check before sending it again")
		return 1
	}
	fmt.Fprintln(stderr, err)
	return 1
}
