package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emailconn/emailconn"
)

// The origin and base of case 4.
const (
	ActionOrigin = "http://engine.internal:8080"
	ActionsBase  = "https://approvals.example.com"
)

// rewriteHTML is a 200 KB HTML notification: a table of workunits, each
// with an approve and a reject action link and a link elsewhere.
var rewriteHTML = func() string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><title>Pending approvals</title></head><body><table>\n")
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, `<tr><td>Workunit %d</td><td>failed at step %d of the nightly payroll run</td>`+
			`<td><a href="%s/actions/approve?wu=%d&amp;token=6f1c2a">Approve</a> `+
			`<a href="%s/actions/reject?wu=%d&amp;token=6f1c2a">Reject</a> `+
			`<a href="https://docs.example.com/runbooks/payroll#step-%d">Runbook</a></td></tr>`+"\n",
			i, i%17, ActionOrigin, i, ActionOrigin, i, i%17)
	}
	b.WriteString("</table></body></html>\n")
	return b.String()
}()

var rewriteSink string

// RewriteBench returns the benchmark of case 4: RewriteActionLinks on a
// 200 KB HTML body, or, as a speed reference, strings.ReplaceAll of the
// origin (which does not check what follows it, so it is not safe).
func RewriteBench(reference bool) func(b *testing.B) {
	return func(b *testing.B) {
		b.SetBytes(int64(len(rewriteHTML)))
		b.ReportAllocs()
		var out string
		var err error
		for b.Loop() {
			if reference {
				out = strings.ReplaceAll(rewriteHTML, ActionOrigin, ActionsBase)
			} else if out, err = emailconn.RewriteActionLinks(ActionsBase, ActionOrigin, rewriteHTML); err != nil {
				b.Fatal(err)
			}
		}
		rewriteSink = out
	}
}
