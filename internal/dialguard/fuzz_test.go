package dialguard

import (
	"net/netip"
	"slices"
	"testing"
)

// The reference classifier below is written independently of classify.go,
// from the package documentation, with byte comparisons only.

// refV4 reports whether an IPv4 address is always refused (always) and
// whether the zero Policy refuses it (refused).
func refV4(b [4]byte) (always, refused bool) {
	always = b[0] == 0 || // 0.0.0.0/8
		b[0] == 169 && b[1] == 254 || // link-local, metadata
		b[0] >= 224 && b[0] <= 239 || // multicast
		b == [4]byte{255, 255, 255, 255} ||
		b == [4]byte{100, 100, 100, 200}
	refused = always ||
		b[0] == 127 ||
		b[0] == 10 ||
		b[0] == 172 && b[1] >= 16 && b[1] <= 31 ||
		b[0] == 192 && b[1] == 168 ||
		b[0] == 100 && b[1] >= 64 && b[1] <= 127 ||
		b[0] >= 240
	return always, refused
}

// refV6 is refV4 for a 16-byte address, including every embedded IPv4
// address.
func refV6(a [16]byte) (always, refused bool) {
	zero := func(from, to int) bool {
		for _, x := range a[from:to] {
			if x != 0 {
				return false
			}
		}
		return true
	}
	v4 := func(at int, invert bool) {
		b := [4]byte(a[at : at+4])
		if invert {
			b = [4]byte{^b[0], ^b[1], ^b[2], ^b[3]}
		}
		al, re := refV4(b)
		always = always || al
		refused = refused || re
	}

	switch {
	case zero(0, 15) && a[15] == 0: // ::
		return true, true
	case zero(0, 15) && a[15] == 1: // ::1
		return false, true
	case zero(0, 12): // IPv4-compatible
		v4(12, false)
	case zero(0, 10) && a[10] == 0xff && a[11] == 0xff: // IPv4-mapped
		v4(12, false)
	case a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && zero(4, 12): // NAT64
		v4(12, false)
	case a[0] == 0 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b && a[4] == 0 && a[5] == 1: // local-use NAT64
		refused = true
		v4(12, false)
	case a[0] == 0x20 && a[1] == 0x02: // 6to4
		v4(2, false)
	case a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0: // Teredo
		v4(4, false)
		v4(12, true)
	}
	if a[0] == 0xff || // multicast
		a[0] == 0xfe && a[1]&0xc0 == 0x80 || // link-local
		a == [16]byte{0xfd, 0, 0x0e, 0xc2, 14: 0x02, 0x54} { // fd00:ec2::254
		always = true
	}
	if a[0]&0xfe == 0xfc || // unique local
		a[0] == 0xfe && a[1]&0xc0 == 0xc0 { // site-local
		refused = true
	}
	return always, always || refused
}

func TestReferenceClassifier(t *testing.T) {
	for _, r := range checkRows() {
		ip := netip.MustParseAddr(r.addr).WithZone("")
		var always, refused bool
		if ip.Is4() {
			always, refused = refV4(ip.As4())
		} else {
			always, refused = refV6(ip.As16())
		}
		if always != (r.c&cAlways != 0) || refused != (r.c != 0) {
			t.Errorf("reference(%v) = always %v, refused %v; want classes %05b", ip, always, refused, r.c)
		}
	}
}

// FuzzCheck checks Check against the reference classifier for any address:
// the zero Policy allows exactly the addresses that are none of the
// refused classes in any embedding, a Policy allowing everything it can
// allows exactly those that are none of the always-refused classes, Ports
// is applied on top, Reason agrees with Check, and Control agrees with
// Check on the address's string form.
func FuzzCheck(f *testing.F) {
	for _, r := range checkRows() {
		ip := netip.MustParseAddr(r.addr).WithZone("")
		f.Add(ip.AsSlice(), uint16(25))
		if ip.Is4() {
			f.Add(netip.AddrFrom16(ip.As16()).AsSlice(), uint16(587))
		}
	}
	f.Add([]byte{}, uint16(0))

	zero := &Policy{}
	everything := &Policy{
		AllowLoopback: true, AllowPrivate: true, AllowCGNAT: true,
		Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
	}
	smtp := []int{25, 465, 587, 2525}
	ports := &Policy{Ports: smtp}

	f.Fuzz(func(t *testing.T, addr []byte, port uint16) {
		var ip netip.Addr
		var always, refused bool
		if len(addr) == 4 {
			ip = netip.AddrFrom4([4]byte(addr))
			always, refused = refV4(ip.As4())
		} else {
			var b [16]byte
			copy(b[:], addr)
			ip = netip.AddrFrom16(b)
			always, refused = refV6(b)
		}
		ap := netip.AddrPortFrom(ip, port)

		check := func(name string, p *Policy, wantRefused bool) {
			err := p.Check(ap)
			if (err != nil) != wantRefused || err != nil && err != ErrBlocked {
				want := error(nil)
				if wantRefused {
					want = ErrBlocked
				}
				t.Fatalf("%s: Check(%v) = %v, want %v", name, ap, err, want)
			}
			if reason := p.Reason(ap); (reason == "") != (err == nil) {
				t.Fatalf("%s: Reason(%v) = %q but Check(%v) = %v", name, ap, reason, ap, err)
			}
			if cerr := p.Control(t.Context(), "tcp", ap.String(), nil); cerr != err {
				t.Fatalf("%s: Control(%q) = %v, but Check(%v) = %v", name, ap.String(), cerr, ap, err)
			}
		}
		check("zero Policy", zero, refused)
		check("Policy allowing everything", everything, always)
		check("Policy with Ports", ports, refused || !slices.Contains(smtp, int(port)))
	})
}
