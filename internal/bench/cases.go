package bench

import "testing"

// A Case is one benchmark of the suite.
type Case struct {
	Name string // the sub-benchmark name, e.g. "plain/seq/emailconn"
	F    func(b *testing.B)
}

// SendCases are the benchmarks of case 1: every client, plaintext and
// STARTTLS+AUTH PLAIN, sequential and with Concurrency goroutines.
func SendCases() []Case {
	var cs []Case
	for _, secure := range []bool{false, true} {
		v := "plain"
		if secure {
			v = "starttls"
		}
		for _, g := range []int{1, Concurrency} {
			mode := "seq"
			if g > 1 {
				mode = "par16"
			}
			for _, c := range Clients {
				if secure && c.plainOnly {
					continue
				}
				cs = append(cs, Case{Name: v + "/" + mode + "/" + c.ID, F: SendBench(c, secure, g)})
			}
		}
	}
	return cs
}

// AttachmentCases are the benchmarks of case 2.
func AttachmentCases() []Case {
	return []Case{
		{Name: "gosmtp", F: AttachmentBench("gosmtp")},
		{Name: "emailconn", F: AttachmentBench("emailconn")},
	}
}

// ResolveCases are the benchmarks of case 3.
func ResolveCases() []Case {
	return []Case{
		{Name: "serial", F: ResolveBench(false, false)},
		{Name: "parallel", F: ResolveBench(true, false)},
		{Name: "serial-node", F: ResolveBench(false, true)},
		{Name: "parallel-node", F: ResolveBench(true, true)},
	}
}

// RewriteCases are the benchmarks of case 4.
func RewriteCases() []Case {
	return []Case{
		{Name: "emailconn", F: RewriteBench(false)},
		{Name: "strings.ReplaceAll", F: RewriteBench(true)},
	}
}

// TestConnectionCases are the benchmarks of case 5.
func TestConnectionCases() []Case {
	return []Case{
		{Name: "bare-gosmtp", F: BareProtocolBench},
		{Name: "emailconn", F: TestConnectionBench(false)},
		{Name: "emailconn-registry", F: TestConnectionBench(true)},
	}
}

// OAuth2Cases are the benchmarks of case 6.
func OAuth2Cases() []Case {
	return []Case{
		{Name: "pooled/basic", F: OAuth2Bench("basic", false)},
		{Name: "pooled/oauth2", F: OAuth2Bench("oauth2", false)},
		{Name: "session-per-send/basic", F: OAuth2Bench("basic", true)},
		{Name: "session-per-send/oauth2", F: OAuth2Bench("oauth2", true)},
	}
}
