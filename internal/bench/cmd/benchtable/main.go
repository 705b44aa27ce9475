// Command benchtable runs the emailconn benchmark suite in-process and
// prints one Markdown table of results and ratios measured in the same run,
// with the machine at the top.
//
// Each benchmark runs -rounds times, the rounds interleaved across the
// benchmarks of a group so that a burst of load elsewhere on the machine
// hits every row alike; the table shows the median and, in brackets, the
// spread (min–max) of the rounds. Ratios are of medians.
//
//	cd internal/bench && go run ./cmd/benchtable [-benchtime 1s] [-rounds 5] [-only REGEXP]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emailconn/emailconn/internal/bench"
)

func main() {
	testing.Init()
	benchtime := flag.String("benchtime", "1s", "time (or Nx) per benchmark run")
	rounds := flag.Int("rounds", 5, "runs of every benchmark; the table shows their median")
	only := flag.String("only", "", "run only the groups whose name matches this regular expression")
	flag.Parse()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fatal(err)
	}
	filter, err := regexp.Compile(*only)
	if err != nil {
		fatal(err)
	}
	env, err := bench.Setup()
	if err != nil {
		fatal(err)
	}
	defer env.Close()

	t := &table{rounds: *rounds}
	start := time.Now()
	load0 := loadavg()
	for _, g := range groups() {
		if !filter.MatchString(g.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "benchtable: %s\n", g.name)
		g.run(t)
	}
	printHeader(*benchtime, *rounds, load0, loadavg(), time.Since(start))
	t.print()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}

// stats is the median and spread of one benchmark's rounds.
type stats struct {
	runs []testing.BenchmarkResult
}

func (s *stats) failed() bool {
	return len(s.runs) == 0 || slices.ContainsFunc(s.runs, func(r testing.BenchmarkResult) bool { return r.N == 0 })
}

// metric returns the median, min and max of a metric over the rounds.
func (s *stats) metric(f func(r testing.BenchmarkResult) float64) (med, lo, hi float64) {
	v := make([]float64, len(s.runs))
	for i, r := range s.runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[len(v)/2], v[0], v[len(v)-1]
}

func nsop(r testing.BenchmarkResult) float64 { return float64(r.T.Nanoseconds()) / float64(r.N) }
func usop(r testing.BenchmarkResult) float64 { return nsop(r) / 1e3 }
func msgs(r testing.BenchmarkResult) float64 { return float64(r.N) / r.T.Seconds() }
func mbs(r testing.BenchmarkResult) float64 {
	return float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
}
func allocs(r testing.BenchmarkResult) float64  { return float64(r.MemAllocs) / float64(r.N) }
func bytesop(r testing.BenchmarkResult) float64 { return float64(r.MemBytes) / float64(r.N) }
func extra(name string) func(r testing.BenchmarkResult) float64 {
	return func(r testing.BenchmarkResult) float64 { return r.Extra[name] }
}

// runRounds runs the cases rounds times, interleaved, with GOMAXPROCS
// procs (0: unchanged).
func runRounds(rounds int, cases []bench.Case, procs []int) map[string]*stats {
	out := make(map[string]*stats)
	for range rounds {
		for i, c := range cases {
			p := 0
			if procs != nil {
				p = procs[i]
			}
			prev := runtime.GOMAXPROCS(0)
			if p > 0 {
				runtime.GOMAXPROCS(p)
			}
			r := testing.Benchmark(c.F)
			runtime.GOMAXPROCS(prev)
			s := out[c.Name]
			if s == nil {
				s = &stats{}
				out[c.Name] = s
			}
			s.runs = append(s.runs, r)
		}
	}
	return out
}

// A row of the table.
type row struct {
	group, what, result, ratio, target, verdict string
}

type table struct {
	rounds int
	rows   []row
}

func (t *table) add(r row) { t.rows = append(t.rows, r) }

func (t *table) print() {
	fmt.Println("| case | row | result (median [min–max]) | ratio | target | |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, r := range t.rows {
		fmt.Printf("| %s | %s | %s | %s | %s | %s |\n", r.group, r.what, r.result, r.ratio, r.target, r.verdict)
	}
}

// spread formats a median with its range.
func spread(s *stats, f func(testing.BenchmarkResult) float64, format, unit string) string {
	if s == nil || s.failed() {
		return "FAILED"
	}
	med, lo, hi := s.metric(f)
	if len(s.runs) == 1 {
		return fmt.Sprintf(format+" %s", med, unit)
	}
	return fmt.Sprintf(format+" %s ["+format+"–"+format+"]", med, unit, lo, hi)
}

func median(s *stats, f func(testing.BenchmarkResult) float64) float64 {
	if s == nil || s.failed() {
		return 0
	}
	m, _, _ := s.metric(f)
	return m
}

// verdict compares a ratio with a bound: at least (ge) or at most.
func verdict(v, bound float64, ge bool) string {
	switch {
	case v == 0:
		return "—"
	case ge && v >= bound, !ge && v <= bound:
		return "met"
	case ge:
		return fmt.Sprintf("**missed** (%.0f%% short)", (bound-v)/bound*100)
	default:
		return fmt.Sprintf("**missed** (%.0f%% over)", (v-bound)/bound*100)
	}
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

func fmtRatio(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

type group struct {
	name string
	run  func(t *table)
}

func groups() []group {
	return []group{
		{"1 send", runSend},
		{"2 attachment", runAttachment},
		{"3 resolve", runResolve},
		{"4 rewrite", runRewrite},
		{"5 test connection", runTestConnection},
		{"6 oauth2", runOAuth2},
		{"7 latency", runLatency},
	}
}

func runSend(t *table) {
	for _, variant := range []string{"plain", "starttls"} {
		for _, mode := range []string{"seq", "par16"} {
			prefix := variant + "/" + mode + "/"
			cases := withPrefix(bench.SendCases(), prefix)
			fmt.Fprintf(os.Stderr, "benchtable:   %s\n", prefix)
			res := runRounds(t.rounds, cases, nil)
			grp := fmt.Sprintf("1 send 2 KB, %s, %s", map[string]string{"plain": "plaintext", "starttls": "STARTTLS+AUTH PLAIN"}[variant],
				map[string]string{"seq": "sequential", "par16": "16 goroutines"}[mode])
			ceiling := median(res[prefix+"gosmtp-reuse"], msgs)
			for _, c := range bench.Clients {
				s := res[prefix+c.ID]
				r := row{group: grp, what: c.Name, result: spread(s, msgs, "%.0f", "msg/s") +
					fmt.Sprintf(", %.0f CPU-µs/msg", median(s, extra("cpu-µs/op"))),
					ratio: fmtRatio(ratio(median(s, msgs), ceiling))}
				switch c.ID {
				case "gosmtp-reuse":
					r.target = "ceiling"
				case "emailconn":
					// Sequentially, one write and one read per message
					// (PIPELINING + CHUNKING, issue 17) against go-smtp's
					// four of each: ≥ 1.2×.
					bound := 0.9
					if mode == "seq" {
						bound = 1.2
					}
					r.target = fmt.Sprintf("≥ %.2f× ceiling", bound)
					r.verdict = verdict(ratio(median(s, msgs), ceiling), bound, true)
					r.result += fmt.Sprintf(", %.0f allocs/op", median(s, allocs))
				case "emailconn-raw":
					r.result += fmt.Sprintf(", %.0f allocs/op", median(s, allocs))
				}
				t.add(r)
			}
			ec, gm := median(res[prefix+"emailconn"], msgs), median(res[prefix+"gomail"], msgs)
			t.add(row{group: grp, what: "emailconn vs go-mail DialAndSend", ratio: fmtRatio(ratio(ec, gm)),
				target: "≥ 3×", verdict: verdict(ratio(ec, gm), 3, true)})
		}
	}
}

func runAttachment(t *table) {
	res := runRounds(t.rounds, bench.AttachmentCases(), nil)
	mb := bench.AttachmentSize() >> 20
	grp := fmt.Sprintf("2 attachment %d MB, streamed", mb)
	g, e := res["gosmtp"], res["emailconn"]
	t.add(row{group: grp, what: "go-smtp, same bytes MIME-wrapped by hand", result: spread(g, mbs, "%.0f", "MB/s") +
		fmt.Sprintf(", %.0f CPU-µs/MB (client+sink)", median(g, extra("cpu-µs/MB"))), ratio: "1.00×"})
	t.add(row{group: grp, what: "emailconn Sender.Send", result: spread(e, mbs, "%.0f", "MB/s") +
		fmt.Sprintf(", %.0f CPU-µs/MB (client+sink)", median(e, extra("cpu-µs/MB"))),
		ratio: fmtRatio(ratio(median(e, mbs), median(g, mbs))), target: "≥ 0.90×",
		verdict: verdict(ratio(median(e, mbs), median(g, mbs)), 0.9, true)})
	t.add(row{group: grp, what: "go-smtp peak heap growth", result: spread(g, extra("peak-heap-MB"), "%.1f", "MB") +
		fmt.Sprintf(", %.0f allocs/op", median(g, allocs))})
	pe := median(e, extra("peak-heap-MB"))
	t.add(row{group: grp, what: "emailconn peak heap growth", result: spread(e, extra("peak-heap-MB"), "%.1f", "MB") +
		fmt.Sprintf(", %.0f allocs/op, %.1f MB allocated/op", median(e, allocs), median(e, bytesop)/(1<<20)),
		target: "< 8 MB", verdict: verdict(pe, 8, false)})
}

func runResolve(t *table) {
	n := runtime.NumCPU()
	var cases []bench.Case
	var procs []int
	for _, c := range bench.ResolveCases() {
		if strings.HasPrefix(c.Name, "parallel") {
			for _, p := range []int{1, n} {
				cases = append(cases, bench.Case{Name: fmt.Sprintf("%s/%d", c.Name, p), F: c.F})
				procs = append(procs, p)
			}
			continue
		}
		cases = append(cases, c)
		procs = append(procs, 0)
	}
	res := runRounds(t.rounds, cases, procs)
	grp := fmt.Sprintf("3 resolve, %d processes", bench.Processes)
	for _, node := range []string{"", "-node"} {
		label := "Resolve(process)"
		if node != "" {
			label = "Resolve(process, node.Recipients...)"
		}
		s := res["serial"+node]
		a := median(s, allocs)
		t.add(row{group: grp, what: label + ", serial", result: spread(s, nsop, "%.1f", "ns/op") + fmt.Sprintf(", %.2f allocs/op", a),
			target: "< 100 ns, 0 allocs", verdict: verdict(median(s, nsop), 100, false) + allocVerdict(a)})
		p1, pn := res[fmt.Sprintf("parallel%s/1", node)], res[fmt.Sprintf("parallel%s/%d", node, n)]
		t.add(row{group: grp, what: label + ", parallel, GOMAXPROCS=1", result: spread(p1, nsop, "%.1f", "ns/op")})
		sc := ratio(median(p1, nsop), median(pn, nsop))
		t.add(row{group: grp, what: fmt.Sprintf("%s, parallel, GOMAXPROCS=%d", label, n), result: spread(pn, nsop, "%.1f", "ns/op"),
			ratio: fmtRatio(sc) + " throughput of 1", target: fmt.Sprintf("grows with cores (≥ 1.5× at %d)", n), verdict: verdict(sc, 1.5, true)})
	}
}

func allocVerdict(a float64) string {
	if a < 0.5 {
		return ""
	}
	return fmt.Sprintf("; **%.0f alloc/op**", a)
}

func runRewrite(t *table) {
	res := runRounds(t.rounds, bench.RewriteCases(), nil)
	e, r := res["emailconn"], res["strings.ReplaceAll"]
	grp := "4 rewrite action links, 200 KB HTML"
	t.add(row{group: grp, what: "emailconn.RewriteActionLinks", result: spread(e, mbs, "%.0f", "MB/s") + fmt.Sprintf(", %.0f allocs/op", median(e, allocs)),
		ratio: fmtRatio(ratio(median(e, mbs), median(r, mbs)))})
	t.add(row{group: grp, what: "strings.ReplaceAll (reference; not safe)", result: spread(r, mbs, "%.0f", "MB/s"), ratio: "1.00×"})
}

func runTestConnection(t *table) {
	res := runRounds(t.rounds, bench.TestConnectionCases(), nil)
	grp := "5 Test Connection, STARTTLS+AUTH PLAIN, loopback"
	b := res["bare-gosmtp"]
	t.add(row{group: grp, what: "bare protocol by hand with go-smtp (dial, EHLO, STARTTLS, AUTH, QUIT)",
		result: spread(b, usop, "%.0f", "µs/op") + fmt.Sprintf(", %.0f allocs/op", median(b, allocs)), ratio: "1.00×"})
	for _, c := range []struct{ id, name string }{
		{"emailconn", "emailconn.TestConnection (new Sender per call)"},
		{"emailconn-registry", "Registry.TestConnection (kept Sender)"},
	} {
		e := res[c.id]
		v := ratio(median(e, nsop), median(b, nsop))
		t.add(row{group: grp, what: c.name, result: spread(e, usop, "%.0f", "µs/op") + fmt.Sprintf(", %.0f allocs/op", median(e, allocs)),
			ratio: fmtRatio(v) + " time", target: "≤ 1.2× bare", verdict: verdict(v, 1.2, false)})
	}
}

func runOAuth2(t *table) {
	res := runRounds(t.rounds, bench.OAuth2Cases(), nil)
	for _, mode := range []string{"pooled", "session-per-send"} {
		grp := "6 OAuth2 vs Basic, STARTTLS, pooled sessions (defaults)"
		if mode != "pooled" {
			grp = "6 OAuth2 vs Basic, STARTTLS, a new session per send"
		}
		b, o := res[mode+"/basic"], res[mode+"/oauth2"]
		t.add(row{group: grp, what: "Basic (AUTH PLAIN)", result: spread(b, msgs, "%.0f", "msg/s") +
			fmt.Sprintf(", %.2f AUTH/send", median(b, extra("auths/op"))), ratio: "1.00×"})
		r := row{group: grp, what: "OAuth2, cached token (XOAUTH2)", result: spread(o, msgs, "%.0f", "msg/s") +
			fmt.Sprintf(", %.2f AUTH/send, %.4f token requests/send", median(o, extra("auths/op")), median(o, extra("token-requests/op"))),
			ratio: fmtRatio(ratio(median(o, msgs), median(b, msgs)))}
		if mode == "pooled" {
			r.target, r.verdict = "≥ 0.95× Basic", verdict(ratio(median(o, msgs), median(b, msgs)), 0.95, true)
		}
		t.add(r)
	}
}

// withPrefix returns the cases whose names start with prefix.
func withPrefix(cases []bench.Case, prefix string) []bench.Case {
	var out []bench.Case
	for _, c := range cases {
		if strings.HasPrefix(c.Name, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func runLatency(t *table) {
	rtt := bench.RTT()
	for _, rcpts := range []int{1, 10} {
		for _, mode := range []string{"seq", "par16"} {
			prefix := fmt.Sprintf("rcpt%d/%s/", rcpts, mode)
			cases := withPrefix(bench.LatencyCases(), prefix)
			fmt.Fprintf(os.Stderr, "benchtable:   %s\n", prefix)
			res := runRounds(t.rounds, cases, nil)
			grp := fmt.Sprintf("7 send 2 KB over a %v round trip, %d recipient%s, %s", rtt, rcpts, map[bool]string{true: "s"}[rcpts > 1],
				map[string]string{"seq": "sequential (one session)", "par16": "16 goroutines (emailconn: default pool of 4)"}[mode])
			base := median(res[prefix+"gosmtp-reuse"], msgs)
			gomail := median(res[prefix+"gomail-kept"], msgs)
			for _, c := range bench.LatencyClients {
				s := res[prefix+c.ID]
				rt := median(s, extra("RT/msg"))
				r := row{group: grp, what: c.Name, result: spread(s, msgs, "%.1f", "msg/s") + fmt.Sprintf(", %.2f RT/msg", rt),
					ratio: fmtRatio(ratio(median(s, msgs), base))}
				switch {
				case c.ID == "gosmtp-reuse":
					r.ratio += " (baseline)"
				case mode == "seq" && c.ID == "emailconn-pipelining":
					r.target, r.verdict = "≤ 2.3 RT/msg", verdict(rt, 2.3, false)
				case mode == "seq" && c.ID == "emailconn-chunking":
					r.target, r.verdict = "≤ 1.3 RT/msg", verdict(rt, 1.3, false)
				}
				t.add(r)
			}
			ec := median(res[prefix+"emailconn-chunking"], msgs)
			t.add(row{group: grp, what: "emailconn (PIPELINING + CHUNKING) vs go-smtp reused session", ratio: fmtRatio(ratio(ec, base)),
				target: "≥ 3×", verdict: verdict(ratio(ec, base), 3, true)})
			t.add(row{group: grp, what: "emailconn (PIPELINING + CHUNKING) vs go-mail kept connection", ratio: fmtRatio(ratio(ec, gomail)),
				target: "≥ 3×", verdict: verdict(ratio(ec, gomail), 3, true)})
		}
	}
}

func printHeader(benchtime string, rounds int, load0, load1 string, took time.Duration) {
	fmt.Println("# emailconn benchmark table")
	fmt.Println()
	fmt.Printf("- machine: %s, %d cores (GOMAXPROCS %d), %s/%s\n", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH)
	fmt.Printf("- Go: %s; emailconn: %s\n", runtime.Version(), libraryCommit())
	fmt.Printf("- load average before / after: %s / %s\n", load0, load1)
	fmt.Printf("- %d rounds of -benchtime %s per benchmark, interleaved; %s in all; %s\n", rounds, benchtime, took.Round(time.Second), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Println("- sink: go-smtp's server in the same process on 127.0.0.1 (Data discards); ratios are of medians from this run")
	fmt.Printf("- case 7: a proxy on 127.0.0.1 in front of the plaintext sink delays every chunk by %v each way (EMAILCONN_BENCH_RTT_MS)\n", bench.RTT()/2)
	fmt.Println()
}

// libraryCommit names the emailconn commit measured: the replace directive
// points at this checkout, so its HEAD, and whether tracked files differ.
func libraryCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	c := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ":/*.go", ":/go.mod", ":!:/internal/bench").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes to its Go files"
	}
	return c
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
