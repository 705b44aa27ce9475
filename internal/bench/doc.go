// Package bench compares emailconn with the other Go mail clients: go-smtp
// used directly (one reused session, the protocol's ceiling, and a new
// session per message), net/smtp.SendMail and go-mail's DialAndSend, all
// sending to the same in-process go-smtp server on 127.0.0.1.
//
// It is a module of its own so that the libraries it compares against never
// become dependencies of emailconn. The benchmark bodies live here, not in
// _test files, so that both `go test -bench .` (bench_test.go) and the
// table program (cmd/benchtable) run the same code; see README.md.
package bench
