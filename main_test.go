package emailconn

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"

	"go.uber.org/goleak"
)

// testParallel is the number of parallel tests run at once unless
// -test.parallel is given. The default, GOMAXPROCS, suits tests that use
// the CPU; most of this package's tests wait instead — on a silent
// server, a timeout, a stalled upload — so eight run at once.
// Fuzzing keeps its default (-test.parallel is its number of workers).
const testParallel = 8

// TestMain fails the package's tests if any goroutine outlives them: every
// session, timer and server must be closed. It runs more tests at once
// than the CPUs (see testParallel).
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" || f.Name == "test.fuzz" })
	if !set {
		if err := flag.Set("test.parallel", strconv.Itoa(testParallel)); err != nil {
			fmt.Fprintln(os.Stderr, "emailconn: TestMain:", err)
			os.Exit(2)
		}
	}
	goleak.VerifyTestMain(m)
}
