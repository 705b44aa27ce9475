package dialguard

import "net/netip"

// class is what the policy makes of an address.
type class uint8

const (
	public   class = iota
	loopback       // AllowLoopback or Allow
	private        // AllowPrivate or Allow
	cgnat          // AllowCGNAT or Allow
	reserved       // Allow only
	always         // never
)

// finding is one reason an address may be refused: the address that has
// the class (the dialled address itself, or an IPv4 address embedded in
// it) and the class.
type finding struct {
	addr  netip.Addr
	class class
	what  string // the class as the administrator knows it
	via   string // "" for the dialled address, else the embedding
}

type rule struct {
	prefix netip.Prefix
	class  class
	what   string
}

// The rules are tried in order; the first prefix that contains the address
// gives its class, so single addresses come before the ranges holding them.
var (
	rules4 = []rule{
		{netip.MustParsePrefix("0.0.0.0/32"), always, "unspecified"},
		{netip.MustParsePrefix("169.254.169.254/32"), always, "cloud metadata"},
		{netip.MustParsePrefix("100.100.100.200/32"), always, "cloud metadata"},
		{netip.MustParsePrefix("255.255.255.255/32"), always, "broadcast"},
		{netip.MustParsePrefix("0.0.0.0/8"), always, `"this network" (0.0.0.0/8)`},
		{netip.MustParsePrefix("169.254.0.0/16"), always, "link-local"},
		{netip.MustParsePrefix("224.0.0.0/4"), always, "multicast"},
		{netip.MustParsePrefix("127.0.0.0/8"), loopback, "loopback"},
		{netip.MustParsePrefix("10.0.0.0/8"), private, "private (RFC 1918)"},
		{netip.MustParsePrefix("172.16.0.0/12"), private, "private (RFC 1918)"},
		{netip.MustParsePrefix("192.168.0.0/16"), private, "private (RFC 1918)"},
		{netip.MustParsePrefix("100.64.0.0/10"), cgnat, "shared address space (CGNAT)"},
		{netip.MustParsePrefix("240.0.0.0/4"), reserved, "reserved (240.0.0.0/4)"},
	}
	rules6 = []rule{
		{netip.MustParsePrefix("::/128"), always, "unspecified"},
		{netip.MustParsePrefix("::1/128"), loopback, "loopback"},
		{netip.MustParsePrefix("fd00:ec2::254/128"), always, "cloud metadata"},
		{netip.MustParsePrefix("fe80::/10"), always, "link-local"},
		{netip.MustParsePrefix("ff00::/8"), always, "multicast"},
		{netip.MustParsePrefix("fc00::/7"), private, "unique local (fc00::/7)"},
		{netip.MustParsePrefix("fec0::/10"), private, "site-local (fec0::/10)"},
		{netip.MustParsePrefix("64:ff9b:1::/48"), private, "local-use NAT64 (64:ff9b:1::/48)"},
	}
)

// An embedding is an IPv6 prefix whose addresses carry an IPv4 address.
type embedding struct {
	prefix netip.Prefix
	at     int  // offset of the IPv4 address in the 16 bytes
	invert bool // the IPv4 address is stored inverted (Teredo client)
	name   string
}

var embeddings = []embedding{
	{netip.MustParsePrefix("::ffff:0:0/96"), 12, false, "IPv4-mapped"},
	{netip.MustParsePrefix("::/96"), 12, false, "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b::/96"), 12, false, "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), 12, false, "local-use NAT64"},
	{netip.MustParsePrefix("2002::/16"), 2, false, "6to4"},
	{netip.MustParsePrefix("2001::/32"), 4, false, "Teredo server"},
	{netip.MustParsePrefix("2001::/32"), 12, true, "Teredo client"},
}

// classify appends to dst every non-public finding for ip, which has no
// zone: its own class and the class of each IPv4 address embedded in it.
// At most two findings are appended.
func classify(dst []finding, ip netip.Addr) []finding {
	if ip.Is4() {
		if c, what := classOf(rules4, ip); c != public {
			dst = append(dst, finding{addr: ip, class: c, what: what})
		}
		return dst
	}
	if c, what := classOf(rules6, ip); c != public {
		dst = append(dst, finding{addr: ip, class: c, what: what})
	}
	if ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
		// ::/96 holds them, but they are IPv6 addresses, not 0.0.0.0
		// and 0.0.0.1.
		return dst
	}
	b := ip.As16()
	for _, e := range embeddings {
		if !e.prefix.Contains(ip) {
			continue
		}
		v := [4]byte(b[e.at : e.at+4])
		if e.invert {
			for i := range v {
				v[i] ^= 0xff
			}
		}
		v4 := netip.AddrFrom4(v)
		if c, what := classOf(rules4, v4); c != public {
			dst = append(dst, finding{addr: v4, class: c, what: what, via: e.name})
		}
	}
	return dst
}

func classOf(rules []rule, ip netip.Addr) (class, string) {
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			return r.class, r.what
		}
	}
	return public, ""
}
