package dialguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
)

// ErrBlocked is the error for every destination a Policy refuses. It is the
// same error, with the same text, whatever the reason (address class,
// embedded address, port), so that it cannot serve as an oracle for what
// lies behind an address; [Policy.Reason] gives the reason.
var ErrBlocked = errors.New("destination not allowed")

// Policy decides which IP addresses and ports may be dialled. The package
// documentation lists every address it refuses and how embedded IPv4
// addresses are judged.
//
// The zero Policy refuses the always-refused classes and every loopback,
// private (RFC 1918, unique local, site-local, local-use NAT64), shared
// (CGNAT) and reserved (240.0.0.0/4) address, on any port. A nil *Policy
// behaves as the zero Policy. Setting a field only ever allows more: no
// setting allows the unspecified, link-local, multicast, broadcast or cloud
// metadata addresses, directly or embedded.
//
// Check, Reason and Control only read the Policy and are safe for
// concurrent use, provided the Policy is not modified meanwhile.
// DialContext takes a copy.
type Policy struct {
	// AllowLoopback allows 127.0.0.0/8 and ::1. Zero refuses them.
	AllowLoopback bool

	// AllowPrivate allows the RFC 1918 ranges 10.0.0.0/8, 172.16.0.0/12
	// and 192.168.0.0/16, IPv6 unique local addresses fc00::/7 (but never
	// fd00:ec2::254), site-local fec0::/10 and the local-use NAT64 prefix
	// 64:ff9b:1::/48. Zero refuses them.
	AllowPrivate bool

	// AllowCGNAT allows the shared address space 100.64.0.0/10 (but never
	// 100.100.100.200). Zero refuses it.
	AllowCGNAT bool

	// Allow lists prefixes that are allowed even if the switches above
	// refuse them; it is the only way to allow 240.0.0.0/4. It never
	// allows an always-refused address. An entry lifts the refusal only of
	// the address it contains: an IPv6 prefix does not allow the IPv4
	// address embedded in an IPv6 address, but an IPv4 prefix does (and
	// an entry in IPv4-mapped form counts as that IPv4 prefix). Invalid
	// prefixes are ignored. Nil allows nothing extra.
	Allow []netip.Prefix

	// Ports, when not empty, lists the only destination ports that may be
	// dialled, for example 25, 465, 587 and 2525 for SMTP. Nil or empty
	// allows every port.
	Ports []int

	// Logger, if not nil, receives a warning for every connection that
	// Control refuses, with the network, the address and the Reason: the
	// administrator's record of what was refused and why, which the
	// errors do not carry. Check and Reason do not log. Nil means silent.
	Logger *slog.Logger
}

// Check returns nil if the policy allows a connection to addr, and
// ErrBlocked itself if it does not. An invalid address is refused; an
// address with a zone is judged without its zone. Check does not log.
func (p *Policy) Check(addr netip.AddrPort) error {
	if p.allowed(addr, nil) {
		return nil
	}
	return ErrBlocked
}

// Reason explains, for an administrator's log, why the policy refuses addr,
// naming the address class and, for an embedded IPv4 address, the form
// that carries it, and every other reason that applies (a port not in
// Ports); it returns "" if Check allows addr. The text is not for the user
// who chose the destination: it would tell them what the address is.
func (p *Policy) Reason(addr netip.AddrPort) string {
	var why []string
	if p.allowed(addr, &why) {
		return ""
	}
	return strings.Join(why, "; ")
}

// allowed reports whether addr passes the policy. If why is not nil, it
// evaluates every rule and appends a description of each refusal.
func (p *Policy) allowed(addr netip.AddrPort, why *[]string) bool {
	if p == nil {
		p = &Policy{}
	}
	ip := addr.Addr()
	if !ip.IsValid() {
		if why != nil {
			*why = append(*why, "invalid address")
		}
		return false
	}
	ok := true
	if len(p.Ports) > 0 && !slices.Contains(p.Ports, int(addr.Port())) {
		if why == nil {
			return false
		}
		*why = append(*why, fmt.Sprintf("port %d is not in Ports", addr.Port()))
		ok = false
	}
	var buf [2]finding
	for _, f := range classify(buf[:0], ip.WithZone("")) {
		if f.class != always && p.lifts(f) {
			continue
		}
		if why == nil {
			return false
		}
		*why = append(*why, describe(ip.WithZone(""), f))
		ok = false
	}
	return ok
}

// lifts reports whether the policy allows a finding of a refusable class.
func (p *Policy) lifts(f finding) bool {
	switch {
	case f.class == loopback && p.AllowLoopback,
		f.class == private && p.AllowPrivate,
		f.class == cgnat && p.AllowCGNAT:
		return true
	}
	for _, pfx := range p.Allow {
		if !pfx.IsValid() {
			continue
		}
		pfx = pfx.Masked()
		if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
			pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
		}
		if pfx.Contains(f.addr) {
			return true
		}
	}
	return false
}

// describe says why f refuses ip, for Reason.
func describe(ip netip.Addr, f finding) string {
	var s string
	if f.via == "" {
		s = fmt.Sprintf("%v is %s", ip, f.what)
	} else {
		s = fmt.Sprintf("%v embeds %v (%s), which is %s", ip, f.addr, f.via, f.what)
	}
	switch f.class {
	case always:
		return s + " and always refused"
	case loopback:
		return s + "; AllowLoopback is off and Allow does not contain it"
	case private:
		return s + "; AllowPrivate is off and Allow does not contain it"
	case cgnat:
		return s + "; AllowCGNAT is off and Allow does not contain it"
	default:
		return s + " and Allow does not contain it"
	}
}

// clone returns a copy of p that shares no memory with it; nil becomes the
// zero Policy.
func (p *Policy) clone() *Policy {
	if p == nil {
		return &Policy{}
	}
	c := *p
	c.Allow = slices.Clone(p.Allow)
	c.Ports = slices.Clone(p.Ports)
	return &c
}
