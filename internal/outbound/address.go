package outbound

import (
	"net/netip"
	"slices"

	"code.dny.dev/ssrf"
)

// metadataAddrs are cloud metadata endpoints outside link-local, refused
// even when private networks are allowed. Those inside 169.254.0.0/16 (AWS,
// GCP, Azure, OpenStack, Oracle, Tencent, ECS task metadata...) and
// fe80::/10 are refused as link-local.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),   // AWS instance metadata (IMDS) over IPv6, in fc00::/7
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud metadata, in 100.64.0.0/10
}

var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598, carrier-grade NAT
	broadcast4  = netip.MustParseAddr("255.255.255.255")
)

// special is the IANA special-purpose deny-list: it refuses every IPv4
// address in the IPv4 registry and every IPv6 address outside global unicast
// 2000::/3 or in the IPv6 registry. Ports and networks are checked by
// Policy, not here.
var special = ssrf.New(ssrf.WithAnyPort(), ssrf.WithAnyNetwork())

// classify names the refused class ip belongs to, with its article, or
// returns "" for an address that may be dialled. private reports whether
// Policy.AllowPrivate lifts the refusal. A zone or IPv4 mapping does not
// change the class.
func classify(ip netip.Addr) (class string, private bool) {
	ip = ip.WithZone("").Unmap()
	switch {
	case !ip.IsValid():
		return "an invalid", false
	case slices.Contains(metadataAddrs, ip):
		return "a cloud metadata", false
	case ip.IsLinkLocalUnicast():
		return "a link-local", false
	case ip.IsMulticast():
		return "a multicast", false
	case ip == broadcast4:
		return "a broadcast", false
	case ip.IsLoopback():
		return "a loopback", true
	case ip.IsUnspecified():
		return "an unspecified", true
	case ip.IsPrivate():
		return "a private", true
	case sharedSpace.Contains(ip):
		return "a shared (carrier-grade nat)", true
	case special.SafeAddr(ip) != nil:
		return "a reserved/special-purpose", false
	}
	return "", false
}

// Prefixes of IPv6 addresses that embed an IPv4 address.
var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052, IPv4 in the last 32 bits
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215; read as its usual /96 form
	translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 SIIT, IPv4 in the last 32 bits
	compatible = netip.MustParsePrefix("::/96")           // RFC 4291 (deprecated), IPv4 in the last 32 bits
	sixToFour  = netip.MustParsePrefix("2002::/16")       // RFC 3056, IPv4 in bits 16-47
	teredo     = netip.MustParsePrefix("2001::/32")       // RFC 4380, server in bits 32-63, client inverted in the last 32
)

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries by one of
// the translation or tunnelling schemes above, or nil. :: and ::1 are the
// unspecified and loopback addresses, not IPv4-compatible ones. An
// IPv4-mapped address is not listed: classify judges it as its IPv4 address.
func embeddedIPv4(ip netip.Addr) []netip.Addr {
	ip = ip.WithZone("")
	b := ip.As16()
	at := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case !ip.Is6() || ip.Is4In6():
		return nil
	case nat64.Contains(ip), nat64Local.Contains(ip), translated.Contains(ip):
		return []netip.Addr{at(12)}
	case compatible.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
		return []netip.Addr{at(12)}
	case sixToFour.Contains(ip):
		return []netip.Addr{at(2)}
	case teredo.Contains(ip):
		return []netip.Addr{at(4), netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})}
	}
	return nil
}
