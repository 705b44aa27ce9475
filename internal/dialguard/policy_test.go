package dialguard

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// classes is the set of refusable classes an address has, directly or
// embedded; zero means public.
type classes uint8

const (
	cLoop classes = 1 << iota
	cPriv
	cCGNAT
	cRes
	cAlways
)

// allowedBy reports whether a policy without Allow and Ports lets an
// address with classes c through.
func (c classes) allowedBy(p *Policy) bool {
	if p == nil {
		p = &Policy{}
	}
	switch {
	case c&(cAlways|cRes) != 0,
		c&cLoop != 0 && !p.AllowLoopback,
		c&cPriv != 0 && !p.AllowPrivate,
		c&cCGNAT != 0 && !p.AllowCGNAT:
		return false
	}
	return true
}

var switchPolicies = []struct {
	name string
	p    *Policy
}{
	{"nil", nil},
	{"zero", &Policy{}},
	{"AllowLoopback", &Policy{AllowLoopback: true}},
	{"AllowPrivate", &Policy{AllowPrivate: true}},
	{"AllowCGNAT", &Policy{AllowCGNAT: true}},
	{"all switches", &Policy{AllowLoopback: true, AllowPrivate: true, AllowCGNAT: true}},
}

// v4Rows are IPv4 addresses on each side of each boundary.
var v4Rows = []struct {
	addr string
	c    classes
}{
	{"0.0.0.0", cAlways},
	{"0.0.0.1", cAlways},
	{"0.255.255.255", cAlways},
	{"1.0.0.0", 0},
	{"8.8.8.8", 0},
	{"9.255.255.255", 0},
	{"10.0.0.0", cPriv},
	{"10.0.0.5", cPriv},
	{"10.255.255.255", cPriv},
	{"11.0.0.0", 0},
	{"100.63.255.255", 0},
	{"100.64.0.0", cCGNAT},
	{"100.100.100.199", cCGNAT},
	{"100.100.100.200", cAlways},
	{"100.100.100.201", cCGNAT},
	{"100.127.255.255", cCGNAT},
	{"100.128.0.0", 0},
	{"126.255.255.255", 0},
	{"127.0.0.0", cLoop},
	{"127.0.0.1", cLoop},
	{"127.255.255.255", cLoop},
	{"128.0.0.0", 0},
	{"169.253.255.255", 0},
	{"169.254.0.0", cAlways},
	{"169.254.169.253", cAlways},
	{"169.254.169.254", cAlways},
	{"169.254.255.255", cAlways},
	{"169.255.0.0", 0},
	{"172.15.255.255", 0},
	{"172.16.0.0", cPriv},
	{"172.31.255.255", cPriv},
	{"172.32.0.0", 0},
	{"192.0.2.1", 0}, // documentation ranges are not refused
	{"192.167.255.255", 0},
	{"192.168.0.0", cPriv},
	{"192.168.255.255", cPriv},
	{"192.169.0.0", 0},
	{"198.18.0.1", 0},
	{"223.255.255.255", 0},
	{"224.0.0.0", cAlways},
	{"239.255.255.255", cAlways},
	{"240.0.0.0", cRes},
	{"255.255.255.254", cRes},
	{"255.255.255.255", cAlways},
}

// v6Rows are IPv6 addresses judged by their own class, and literal
// embeddings that cross-check the generated ones.
var v6Rows = []struct {
	addr string
	c    classes
}{
	{"::", cAlways},
	{"::1", cLoop},
	{"::2", cAlways}, // IPv4-compatible 0.0.0.2
	{"::ff:ffff", cAlways},
	{"::1.0.0.0", 0},
	{"2001:4860:4860::8888", 0},
	{"2606:4700:4700::1111", 0},
	{"2001:db8::1", 0},
	{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
	{"fc00::", cPriv},
	{"fd00::1%eth0", cPriv},
	{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cPriv},
	{"fd00:ec2::253", cPriv},
	{"fd00:ec2::254", cAlways},
	{"fd00:ec2::255", cPriv},
	{"fe00::", 0},
	{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
	{"fe80::", cAlways},
	{"fe80::1%eth0", cAlways},
	{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cAlways},
	{"fec0::", cPriv},
	{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cPriv},
	{"ff00::", cAlways},
	{"ff02::1", cAlways},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cAlways},

	// Literal embeddings.
	{"::ffff:127.0.0.1", cLoop},
	{"::ffff:7f00:1", cLoop},
	{"::ffff:a9fe:a9fe", cAlways},
	{"::ffff:8.8.8.8", 0},
	{"::7f00:1", cLoop},
	{"64:ff9b::7f00:1", cLoop},
	{"64:ff9b::a9fe:a9fe", cAlways},
	{"64:ff9b::808:808", 0},
	{"64:ff9b:1::808:808", cPriv},
	{"64:ff9b:1::a00:5", cPriv},
	{"64:ff9b:1:ffff:ffff:ffff:7f00:1", cPriv | cLoop},
	{"2002:7f00:1::1", cLoop},
	{"2002:a9fe:a9fe::", cAlways},
	{"2002:808:808::1", 0},
	{"2001:0:4136:e378:8000:63bf:80ff:fffe", cLoop},   // client 127.0.0.1
	{"2001:0:4136:e378:8000:63bf:f7f7:f7f7", 0},       // client 8.8.8.8
	{"2001:0:a9fe:a9fe:8000:63bf:f7f7:f7f7", cAlways}, // server 169.254.169.254
	{"2001:0:4136:e378::", cAlways},                   // client 255.255.255.255

	// Just outside each embedding prefix.
	{"::fffe:7f00:1", 0},
	{"::1:0:7f00:1", 0},
	{"::1:ffff:7f00:1", 0},
	{"64:ff9a:ffff:ffff:ffff:ffff:7f00:1", 0},
	{"64:ff9b::1:7f00:1", 0},
	{"64:ff9b:0:ffff:ffff:ffff:7f00:1", 0},
	{"64:ff9b:2::7f00:1", 0},
	{"2001:1::7f00:1", 0},
	{"2001:ffff::7f00:1", 0},
	{"2003:7f00:1::1", 0},
	{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0},
}

// Embedding helpers, written from the RFC layouts.
var embedders = []struct {
	name string
	own  classes // the class of the IPv6 address itself
	f    func(v4 [4]byte) string
}{
	{"mapped", 0, func(b [4]byte) string { return fmt.Sprintf("::ffff:%d.%d.%d.%d", b[0], b[1], b[2], b[3]) }},
	{"compatible", 0, func(b [4]byte) string { return fmt.Sprintf("::%d.%d.%d.%d", b[0], b[1], b[2], b[3]) }},
	{"NAT64", 0, func(b [4]byte) string { return fmt.Sprintf("64:ff9b::%d.%d.%d.%d", b[0], b[1], b[2], b[3]) }},
	{"local NAT64", cPriv, func(b [4]byte) string { return fmt.Sprintf("64:ff9b:1::%d.%d.%d.%d", b[0], b[1], b[2], b[3]) }},
	{"local NAT64 /56", cPriv, func(b [4]byte) string { return fmt.Sprintf("64:ff9b:1:ab00::%d.%d.%d.%d", b[0], b[1], b[2], b[3]) }},
	{"6to4", 0, func(b [4]byte) string { return fmt.Sprintf("2002:%02x%02x:%02x%02x::1", b[0], b[1], b[2], b[3]) }},
	{"Teredo", 0, func(b [4]byte) string {
		return fmt.Sprintf("2001:0:4136:e378:8000:63bf:%02x%02x:%02x%02x", ^b[0], ^b[1], ^b[2], ^b[3])
	}},
}

type row struct {
	addr string
	c    classes
}

func checkRows() []row {
	var rows []row
	for _, r := range v4Rows {
		rows = append(rows, row{r.addr, r.c})
		b := netip.MustParseAddr(r.addr).As4()
		for _, e := range embedders {
			a := e.f(b)
			if ip := netip.MustParseAddr(a); ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
				continue // unspecified and loopback, listed in v6Rows
			}
			rows = append(rows, row{a, r.c | e.own})
		}
	}
	for _, r := range v6Rows {
		rows = append(rows, row{r.addr, r.c})
	}
	return rows
}

func TestCheckClasses(t *testing.T) {
	rows := checkRows()
	for _, pol := range switchPolicies {
		t.Run(pol.name, func(t *testing.T) {
			for _, r := range rows {
				ap := netip.AddrPortFrom(netip.MustParseAddr(r.addr), 25)
				var want error
				if !r.c.allowedBy(pol.p) {
					want = ErrBlocked
				}
				if got := pol.p.Check(ap); got != want {
					t.Errorf("Check(%v) = %v, want %v", ap, got, want)
				}
				if reason := pol.p.Reason(ap); (reason == "") != (want == nil) {
					t.Errorf("Reason(%v) = %q, want %s", ap, reason, map[bool]string{true: `""`, false: "a reason"}[want == nil])
				}
			}
		})
	}
}

func TestCheckAllow(t *testing.T) {
	p := &Policy{Allow: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("fd12::/16"),
		netip.MustParsePrefix("240.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),        // cannot lift always-refused
		netip.MustParsePrefix("::ffff:100.64.0.0/106"), // mapped form of 100.64.0.0/10
		netip.MustParsePrefix("64:ff9b:1::/48"),
		{}, // invalid, ignored
	}}
	everything := &Policy{Allow: []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("::/0"),
	}}
	v6Only := &Policy{Allow: []netip.Prefix{
		netip.MustParsePrefix("::/0"),
	}}
	tests := []struct {
		p    *Policy
		addr string
		want error
	}{
		{p, "10.1.2.3", nil},
		{p, "10.1.255.255", nil},
		{p, "10.0.255.255", ErrBlocked},
		{p, "10.2.0.0", ErrBlocked},
		{p, "::ffff:10.1.2.3", nil},
		{p, "64:ff9b::a01:203", nil},
		{p, "2002:a01:203::1", nil},
		{p, "::ffff:10.2.0.1", ErrBlocked},
		{p, "127.0.0.1", nil},
		{p, "127.0.0.2", ErrBlocked},
		{p, "::1", ErrBlocked},
		{p, "fd12::1", nil},
		{p, "fd13::1", ErrBlocked},
		{p, "240.0.0.1", nil},
		{p, "241.0.0.1", ErrBlocked},
		{p, "255.255.255.255", ErrBlocked},
		{p, "169.254.169.254", ErrBlocked},
		{p, "169.254.1.1", ErrBlocked},
		{p, "::ffff:169.254.169.254", ErrBlocked},
		{p, "100.64.0.1", nil},
		{p, "100.127.255.255", nil},
		{p, "100.100.100.200", ErrBlocked},
		{p, "64:ff9b:1::808:808", nil},        // the IPv6 address is allowed, and 8.8.8.8 is public
		{p, "64:ff9b:1::a01:203", nil},        // and 10.1.2.3 is allowed
		{p, "64:ff9b:1::a02:203", ErrBlocked}, // but 10.2.2.3 is not
		{p, "64:ff9b:2::808:808", nil},
		{p, "8.8.8.8", nil},
		{everything, "10.0.0.5", nil},
		{everything, "240.0.0.1", nil},
		{everything, "::ffff:127.0.0.1", nil},
		{everything, "fc00::1", nil},
		{everything, "169.254.169.254", ErrBlocked},
		{everything, "100.100.100.200", ErrBlocked},
		{everything, "fd00:ec2::254", ErrBlocked},
		{everything, "64:ff9b::a9fe:a9fe", ErrBlocked},
		{everything, "fe80::1", ErrBlocked},
		{everything, "::", ErrBlocked},
		{everything, "0.0.0.0", ErrBlocked},
		{v6Only, "::1", nil},
		{v6Only, "fc00::1", nil},
		{v6Only, "::ffff:127.0.0.1", ErrBlocked}, // an IPv6 prefix does not lift the embedded IPv4 address
		{v6Only, "64:ff9b::7f00:1", ErrBlocked},
		{v6Only, "64:ff9b:1::808:808", nil},
		{v6Only, "64:ff9b:1::a00:5", ErrBlocked},
		{v6Only, "10.0.0.5", ErrBlocked},
	}
	for _, tt := range tests {
		ap := netip.AddrPortFrom(netip.MustParseAddr(tt.addr), 587)
		if got := tt.p.Check(ap); got != tt.want {
			t.Errorf("Check(%v) with Allow %v = %v, want %v", ap, tt.p.Allow, got, tt.want)
		}
	}
}

func TestCheckPorts(t *testing.T) {
	smtp := []int{25, 465, 587, 2525}
	tests := []struct {
		p    *Policy
		addr string
		want error
	}{
		{&Policy{Ports: smtp}, "8.8.8.8:25", nil},
		{&Policy{Ports: smtp}, "8.8.8.8:465", nil},
		{&Policy{Ports: smtp}, "8.8.8.8:587", nil},
		{&Policy{Ports: smtp}, "8.8.8.8:2525", nil},
		{&Policy{Ports: smtp}, "[2001:4860:4860::8888]:587", nil},
		{&Policy{Ports: smtp}, "8.8.8.8:24", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:26", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:2524", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:2526", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:0", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:22", ErrBlocked},
		{&Policy{Ports: smtp}, "8.8.8.8:65535", ErrBlocked},
		{&Policy{Ports: smtp}, "10.0.0.5:25", ErrBlocked},
		{&Policy{Ports: smtp, AllowPrivate: true}, "10.0.0.5:25", nil},
		{&Policy{Ports: smtp, AllowPrivate: true}, "10.0.0.5:6379", ErrBlocked},
		{&Policy{Ports: smtp, AllowLoopback: true}, "127.0.0.1:22", ErrBlocked},
		{&Policy{Ports: []int{-1, 70000}}, "8.8.8.8:25", ErrBlocked},
		{&Policy{}, "8.8.8.8:22", nil},
		{&Policy{}, "8.8.8.8:0", nil},
		{&Policy{Ports: []int{}}, "8.8.8.8:6379", nil},
	}
	for _, tt := range tests {
		ap := netip.MustParseAddrPort(tt.addr)
		if got := tt.p.Check(ap); got != tt.want {
			t.Errorf("Check(%v) with Ports %v = %v, want %v", ap, tt.p.Ports, got, tt.want)
		}
	}
}

func TestCheckInvalid(t *testing.T) {
	for _, p := range []*Policy{nil, {}, {AllowLoopback: true, AllowPrivate: true, AllowCGNAT: true, Allow: []netip.Prefix{netip.MustParsePrefix("::/0")}}} {
		if got := p.Check(netip.AddrPort{}); got != ErrBlocked {
			t.Errorf("Check(%v) = %v, want %v", netip.AddrPort{}, got, ErrBlocked)
		}
		if got, want := p.Reason(netip.AddrPort{}), "invalid address"; got != want {
			t.Errorf("Reason(%v) = %q, want %q", netip.AddrPort{}, got, want)
		}
	}
}

func TestReason(t *testing.T) {
	p := &Policy{Ports: []int{25, 80}}
	tests := []struct {
		addr string
		want string
	}{
		{"8.8.8.8:25", ""},
		{"169.254.169.254:80", "169.254.169.254 is cloud metadata and always refused"},
		{"100.100.100.200:80", "100.100.100.200 is cloud metadata and always refused"},
		{"[fd00:ec2::254]:80", "fd00:ec2::254 is cloud metadata and always refused"},
		{"10.0.0.5:25", "10.0.0.5 is private (RFC 1918); AllowPrivate is off and Allow does not contain it"},
		{"100.64.0.1:25", "100.64.0.1 is shared address space (CGNAT); AllowCGNAT is off and Allow does not contain it"},
		{"240.0.0.1:25", "240.0.0.1 is reserved (240.0.0.0/4) and Allow does not contain it"},
		{"[::ffff:127.0.0.1]:25", "::ffff:127.0.0.1 embeds 127.0.0.1 (IPv4-mapped), which is loopback; AllowLoopback is off and Allow does not contain it"},
		{"[fe80::1%eth0]:25", "fe80::1 is link-local and always refused"},
		{"[64:ff9b:1::a9fe:a9fe]:25", "64:ff9b:1::a9fe:a9fe is local-use NAT64 (64:ff9b:1::/48); AllowPrivate is off and Allow does not contain it; " +
			"64:ff9b:1::a9fe:a9fe embeds 169.254.169.254 (local-use NAT64), which is cloud metadata and always refused"},
		{"[2001:0:a9fe:a9fe:8000:63bf:80ff:fffe]:25", "2001:0:a9fe:a9fe:8000:63bf:80ff:fffe embeds 169.254.169.254 (Teredo server), which is cloud metadata and always refused; " +
			"2001:0:a9fe:a9fe:8000:63bf:80ff:fffe embeds 127.0.0.1 (Teredo client), which is loopback; AllowLoopback is off and Allow does not contain it"},
		{"10.0.0.5:22", "port 22 is not in Ports; 10.0.0.5 is private (RFC 1918); AllowPrivate is off and Allow does not contain it"},
		{"8.8.8.8:22", "port 22 is not in Ports"},
	}
	for _, tt := range tests {
		ap := netip.MustParseAddrPort(tt.addr)
		if got := p.Reason(ap); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", ap, got, tt.want)
		}
	}
}

// TestErrorsIdentical checks that Check says nothing about why: every
// refusal is ErrBlocked itself.
func TestErrorsIdentical(t *testing.T) {
	p := &Policy{Ports: []int{25, 80}}
	for _, s := range []string{
		"169.254.169.254:80", "100.100.100.200:80", "[fd00:ec2::254]:80",
		"10.0.0.5:25", "127.0.0.1:25", "[::ffff:127.0.0.1]:25", "100.64.0.1:25",
		"240.0.0.1:25", "224.0.0.1:25", "8.8.8.8:22",
	} {
		ap := netip.MustParseAddrPort(s)
		err := p.Check(ap)
		if err != ErrBlocked {
			t.Errorf("Check(%v) = %v, want %v", ap, err, ErrBlocked)
			continue
		}
		if msg := err.Error(); msg != "destination not allowed" {
			t.Errorf("Check(%v).Error() = %q, want %q", ap, msg, "destination not allowed")
		}
	}
}

func TestPolicyNotModified(t *testing.T) {
	p := &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, Ports: []int{25}}
	p.Check(netip.MustParseAddrPort("10.0.0.1:25"))
	if got, want := p.Allow[0].String(), "::ffff:10.0.0.0/104"; got != want {
		t.Errorf("after Check, Allow[0] = %s, want %s", got, want)
	}
	// DialContext takes a copy: a later change does not reach the dialer.
	dial := p.DialContext(nil)
	p.Allow[0] = netip.MustParsePrefix("0.0.0.0/0")
	p.AllowLoopback = true
	p.Ports = nil
	_, err := dial(t.Context(), "tcp", "127.0.0.1:25")
	if err == nil || !strings.HasSuffix(err.Error(), ErrBlocked.Error()) {
		t.Errorf("dial(127.0.0.1:25) after changing the Policy = %v, want %v", err, ErrBlocked)
	}
}
