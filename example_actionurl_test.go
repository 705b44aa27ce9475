package emailconn_test

import (
	"fmt"

	"github.com/emailconn/emailconn"
)

func ExampleRewriteActionURL() {
	link := "http://engine.internal:8080/actions/approve?wu=42&sig=abc#top"
	out, err := emailconn.RewriteActionURL("https://approvals.example.com:8443/", link)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out)

	// A link that would lead elsewhere is refused, not rewritten.
	_, err = emailconn.RewriteActionURL("https://approvals.example.com", "//evil.example/approve")
	fmt.Println(err)

	// So is a base URL with more than scheme, host and port.
	_, err = emailconn.RewriteActionURL("https://approvals.example.com/?next=x", link)
	fmt.Println(err)
	// Output:
	// https://approvals.example.com:8443/actions/approve?wu=42&sig=abc#top
	// emailconn: link: link is scheme-relative (//host), which is not allowed
	// emailconn: base: query is not allowed
}

func ExampleRewriteActionLinks() {
	body := `<p>Purchase requisition PR-1042 needs your decision.</p>
<a href="http://engine.internal:8080/actions/approve?wu=42&amp;sig=abc">Approve</a>
<a href="http://engine.internal:8080/actions/reject?wu=42&amp;sig=abc">Reject</a>
<a href="https://intranet.example.com/policies/purchasing">Purchasing policy</a>`

	out, err := emailconn.RewriteActionLinks("https://approvals.example.com", "http://engine.internal:8080", body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out)
	// Output:
	// <p>Purchase requisition PR-1042 needs your decision.</p>
	// <a href="https://approvals.example.com/actions/approve?wu=42&amp;sig=abc">Approve</a>
	// <a href="https://approvals.example.com/actions/reject?wu=42&amp;sig=abc">Reject</a>
	// <a href="https://intranet.example.com/policies/purchasing">Purchasing policy</a>
}
