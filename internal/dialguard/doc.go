// Package dialguard is an egress policy for outgoing connections: it decides,
// at connect time and on the resolved IP address, whether a connection to a
// host that an untrusted user typed in (a tenant's mail server, an OAuth2
// token endpoint) may be made. It exists so that "Test Connection" and
// "Send" cannot be used to scan or reach the network the library runs in
// (server-side request forgery).
//
//	p := &dialguard.Policy{AllowPrivate: true, Ports: []int{25, 465, 587, 2525}, Logger: logger}
//	dial := p.DialContext(&net.Dialer{Timeout: 10 * time.Second})
//	conn, err := dial(ctx, "tcp", "mail.example.com:587")
//	if errors.Is(err, dialguard.ErrBlocked) {
//		// show the tenant ErrBlocked's text; the address and reason are in the log
//	}
//
// # Where the policy is enforced
//
// [Policy.Control] runs as [net.Dialer].ControlContext, after the name has
// been resolved and the socket created, immediately before connect(2), on
// the address the kernel is about to connect to. No packet leaves the host
// for a refused address. Because the check is on that address and not on
// the name, DNS rebinding (a name that resolves to a public address when
// checked and to an internal one when dialled) cannot bypass it, and a name
// that resolves to several addresses has each of them checked as it is
// tried. [Policy.DialContext] builds such a dialer; it works for SMTP and as
// [net/http.Transport].DialContext.
//
// # What is refused
//
// Always, whatever the Policy says (Allow cannot lift these):
//
//	0.0.0.0/8            "this network", including the unspecified 0.0.0.0
//	169.254.0.0/16       link-local, including cloud metadata 169.254.169.254
//	224.0.0.0/4          multicast
//	255.255.255.255/32   limited broadcast
//	100.100.100.200/32   cloud metadata (Alibaba Cloud)
//	::/128               unspecified
//	fe80::/10            link-local
//	ff00::/8             multicast
//	fd00:ec2::254/128    cloud metadata (AWS IMDS over IPv6)
//
// Unless the Policy allows them (the zero Policy refuses them all):
//
//	127.0.0.0/8, ::1/128                 loopback (AllowLoopback)
//	10.0.0.0/8, 172.16.0.0/12,
//	192.168.0.0/16                       private, RFC 1918 (AllowPrivate)
//	fc00::/7                             unique local, ULA (AllowPrivate)
//	fec0::/10                            site-local, deprecated (AllowPrivate)
//	64:ff9b:1::/48                       local-use NAT64 (AllowPrivate)
//	100.64.0.0/10                        shared address space, CGNAT (AllowCGNAT)
//	240.0.0.0/4 (but 255.255.255.255)    reserved (only through Allow)
//
// Everything else is allowed, subject to [Policy.Ports]. That includes the
// documentation, benchmarking and other special-purpose ranges that are not
// listed above (192.0.2.0/24, 198.18.0.0/15, 2001:db8::/32 and so on).
//
// # Embedded IPv4 addresses
//
// An IPv6 address that carries an IPv4 address is also judged by that IPv4
// address, with the same rules, so a policy that refuses 127.0.0.1 also
// refuses ::ffff:127.0.0.1 and 64:ff9b::7f00:1. The forms decoded are:
//
//	::ffff:0:0/96     IPv4-mapped, the last 32 bits
//	::/96             IPv4-compatible (deprecated), the last 32 bits; :: and ::1 are themselves
//	64:ff9b::/96      NAT64 well-known prefix, the last 32 bits
//	64:ff9b:1::/48    NAT64 local-use prefix, the last 32 bits
//	2002::/16         6to4, bits 16 to 47
//	2001::/32         Teredo, the server (bits 32 to 63) and the client (the last 32 bits, inverted)
//
// The local-use NAT64 prefix (RFC 8215) exists to reach non-global IPv4
// addresses through a translator whose prefix length (/48 to /96) cannot be
// seen in the address, so it is refused as a whole unless AllowPrivate is set
// or Allow contains the IPv6 address, and its last 32 bits are then judged as
// above. An entry in Allow lifts a refusal only for the address it contains:
// an IPv6 prefix such as 64:ff9b::/96 or ::/0 does not make the IPv4 address
// embedded in it acceptable. Allow entries written in IPv4-mapped form
// (::ffff:10.0.0.0/104) are treated as the IPv4 prefix they map.
//
// # Errors
//
// Every refusal, for whatever reason, is reported with the one error
// [ErrBlocked], so that an untrusted user cannot tell a metadata address
// from a private one, or a refused port from a refused address. The detailed
// reason is available only from [Policy.Reason], for the administrator's
// log. [Policy.Check] and [Policy.Control] return ErrBlocked itself. A
// [net.Dialer] wraps it in a [*net.OpError] that names the address it
// refused ("dial tcp 10.0.0.5:25: destination not allowed"); the dialer
// from [Policy.DialContext] drops that address, so every refused dial on the
// same network reads the same ("dial tcp: destination not allowed") and a
// user does not learn what their name resolved to. The address and reason
// go to [Policy.Logger] instead. A caller presenting errors to an untrusted
// user should still present only ErrBlocked's text when
// errors.Is(err, ErrBlocked).
//
// # What this package does not do
//
// It does not resolve names, rate-limit, or hide timing: a refused dial
// fails at once, which tells a user that the policy refused some address the
// name resolved to, but not why. It does not decode ISATAP or other
// IPv4-in-IPv6 forms not listed above; such addresses are judged as
// ordinary IPv6 addresses. With a local-use NAT64 translator on a prefix
// shorter than /96 and AllowPrivate set, an embedded IPv4 address sits in
// bits this package does not decode. Dials made through a proxy (for
// example an [net/http.Transport] with Proxy set) are checked against the
// proxy's address, not the final destination's; connections made with
// DialTLSContext bypass DialContext altogether. Unix-domain and other
// non-IP addresses are refused.
package dialguard
