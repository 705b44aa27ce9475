// Package interop is emailconn's interoperability suite: it sends mail
// with emailconn through Mailpit (github.com/axllent/mailpit), an SMTP
// server written independently of emailconn and of go-smtp, and checks
// every outcome through Mailpit's HTTP API.
//
// It is a module of its own so that Mailpit and the suite's helpers never
// enter the library's go.mod; "go test ./..." at the repository root does
// not descend into it.
//
// Run it with
//
//	internal/interop/run.sh [go test flags]
//
// which builds Mailpit (once, into a cache directory), makes a throwaway
// certificate authority, starts four Mailpit instances on 127.0.0.1 (plain
// with AUTH, STARTTLS required, implicit TLS, chaos), exports their
// addresses in EMAILCONN_INTEROP_* variables, runs "go vet" and
// "go test -count=1 ./..." here, and stops the instances and removes every
// temporary file however the tests end. Without those variables the tests
// skip.
package interop
