package dialguard_test

import (
	"fmt"
	"net/netip"

	"github.com/emailconn/emailconn/internal/dialguard"
)

func ExamplePolicy_Check() {
	p := &dialguard.Policy{
		AllowPrivate: true, // the engine's own relay is at 10.0.0.25
		Ports:        []int{25, 465, 587, 2525},
	}
	for _, s := range []string{
		"10.0.0.25:587",
		"203.0.113.9:465",
		"10.0.0.25:6379",
		"127.0.0.1:25",
		"[::ffff:127.0.0.1]:25",
		"[64:ff9b::a9fe:a9fe]:25",
	} {
		fmt.Printf("%-25s %v\n", s, p.Check(netip.MustParseAddrPort(s)))
	}
	// Output:
	// 10.0.0.25:587             <nil>
	// 203.0.113.9:465           <nil>
	// 10.0.0.25:6379            destination not allowed
	// 127.0.0.1:25              destination not allowed
	// [::ffff:127.0.0.1]:25     destination not allowed
	// [64:ff9b::a9fe:a9fe]:25   destination not allowed
}

func ExamplePolicy_Reason() {
	var p dialguard.Policy // the zero Policy
	for _, s := range []string{
		"169.254.169.254:80",
		"[64:ff9b::7f00:1]:25",
		"192.0.2.10:25",
	} {
		fmt.Printf("%q\n", p.Reason(netip.MustParseAddrPort(s)))
	}
	// Output:
	// "169.254.169.254 is cloud metadata and always refused"
	// "64:ff9b::7f00:1 embeds 127.0.0.1 (NAT64), which is loopback; AllowLoopback is off and Allow does not contain it"
	// ""
}
