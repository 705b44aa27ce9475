package bench

import (
	"fmt"
	"testing"

	"github.com/emailconn/emailconn"
)

// Registry sizes of case 3.
const (
	Processes   = 10000
	Connections = 100
)

// resolveSink keeps results alive.
var resolveSink emailconn.Route

// newRegistry returns a Registry of Processes processes, each assigned one
// of Connections connections, with grid settings, and the process names
// repeated into a power-of-two slice.
func newRegistry() (*emailconn.Registry, []string, error) {
	cfg := emailconn.Config{
		Grid:      &emailconn.Connection{MailServer: "relay.internal:25", From: From, To: []string{To}},
		Processes: make(map[string]string, Processes),
	}
	for i := range Connections {
		cfg.Connections = append(cfg.Connections, emailconn.Connection{
			Name: fmt.Sprintf("conn-%03d", i), MailServer: fmt.Sprintf("smtp%d.example.com:587", i),
			EnableTLS: true, From: fmt.Sprintf("alerts%d@example.com", i),
			ActionsBaseURL: "https://approvals.example.com",
		})
	}
	procs := make([]string, Processes)
	for i := range procs {
		procs[i] = fmt.Sprintf("Process%05d", i)
		cfg.Processes[procs[i]] = fmt.Sprintf("conn-%03d", i%Connections)
	}
	r, err := emailconn.NewRegistry(cfg, &emailconn.Options{ActionOrigin: "http://engine.internal:8080"})
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, 16384)
	for i := range names {
		names[i] = procs[(i*7919)%Processes] // a stride, not in map order
	}
	return r, names, nil
}

// ResolveBench returns the benchmark of case 3: Resolve of a process
// among Processes, serially or with b.RunParallel (GOMAXPROCS goroutines).
// With node, the call passes the recipients of an activity node, a slice
// the engine already holds (Resolve(p, node.Recipients...)). Literal
// arguments, Resolve(p, "a@example.com"), make the compiler allocate
// their backing array at the call site, because the Route keeps it.
func ResolveBench(parallel, node bool) func(b *testing.B) {
	return func(b *testing.B) {
		r, names, err := newRegistry()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		mask := len(names) - 1
		nodeRecipients := []string{"approver@example.com"}
		b.ReportAllocs()
		b.ResetTimer()
		if !parallel {
			var rt emailconn.Route
			for i := 0; i < b.N; i++ {
				if node {
					rt, err = r.Resolve(names[i&mask], nodeRecipients...)
				} else {
					rt, err = r.Resolve(names[i&mask])
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			resolveSink = rt
			return
		}
		b.RunParallel(func(pb *testing.PB) {
			var rt emailconn.Route
			var err error
			i := 0
			for pb.Next() {
				if node {
					rt, err = r.Resolve(names[i&mask], nodeRecipients...)
				} else {
					rt, err = r.Resolve(names[i&mask])
				}
				if err != nil {
					panic(err)
				}
				i++
			}
			_ = rt
		})
	}
}
