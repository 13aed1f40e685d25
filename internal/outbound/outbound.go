// Package outbound guards the HTTP requests Boomerang makes to URLs it is
// given: callback URLs supplied by clients and forward URLs configured by
// operators.
//
// A URL is checked twice. CheckURL validates it when it is accepted, without
// any DNS lookup. The client returned by Client then checks every address it
// actually dials, after DNS resolution, so a name that resolves (or is
// rebound) to a refused address is refused too. The client never follows
// redirects and ignores environment proxies.
//
// CheckURL refuses as malformed (an error that does not wrap ErrForbidden) a
// URL longer than MaxURLLen, one that is not absolute, has a scheme other
// than http or https, carries credentials (user:password@), has no host or a
// port outside 1-65535, and a host whose last label is a number (decimal, or
// hexadecimal with 0x) but which is not a canonical dotted-quad IPv4 address:
// 127.1, 2130706433, 0x7f000001, 0177.0.0.1, 01.02.03.04. Resolvers disagree
// on what such hosts mean (inet_aton reads 127.1 as 127.0.0.1); no DNS
// top-level name is numeric, so names like 1e100.net are unaffected.
//
// These are refused with ErrForbidden: by CheckURL for an IP literal or a
// localhost name, by the client for every address it dials.
//
//   - Always: cloud metadata addresses (all of link-local 169.254.0.0/16 and
//     fe80::/10, and the few outside it: fd00:ec2::254, AWS over IPv6, and
//     100.100.100.200, Alibaba Cloud), multicast, broadcast, and every
//     other range of the IANA IPv4 and IPv6 special-purpose registries as
//     listed by code.dny.dev/ssrf (0.0.0.0/8, 192.0.0.0/24, documentation
//     and benchmarking ranges, 240.0.0.0/4, IPv6 outside 2000::/3 such as
//     100::/64 and fec0::/10, 2001::/23, 2001:db8::/32, 2002::/16 and more).
//   - Unless Policy.AllowPrivate is set: loopback (127.0.0.0/8, ::1 and the
//     names localhost and *.localhost), private ranges (10.0.0.0/8,
//     172.16.0.0/12, 192.168.0.0/16, fc00::/7), the shared address space
//     100.64.0.0/10 and the unspecified addresses 0.0.0.0 and ::.
//   - An IPv6 address that embeds an IPv4 address, if either is refused.
//     NAT64 (64:ff9b::/96, 64:ff9b:1::/48), IPv4-translated
//     (::ffff:0:0:0/96), IPv4-compatible (::/96), 6to4 (2002::/16) and
//     Teredo (2001::/32, server and client) are special-purpose prefixes
//     themselves, so such addresses are always refused; the error names the
//     embedded address when it is refused too. A host that reaches IPv4
//     only through DNS64/NAT64 therefore cannot call IPv4-only receivers.
//     An IPv4-mapped address (::ffff:0:0/96) is judged as the IPv4 address
//     it holds.
//   - Any port not in Policy.AllowedPorts, when that is set; a URL without a
//     port uses 80 for http and 443 for https.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Policy decides which outbound addresses may be dialled. The zero value
// refuses loopback and private networks and allows any port.
type Policy struct {
	// AllowPrivate permits loopback, private-range, shared (100.64.0.0/10)
	// and unspecified addresses (for development and for services on a
	// private network). Cloud metadata, link-local, multicast, broadcast and
	// the other special-purpose ranges stay refused. Default false.
	AllowPrivate bool

	// AllowedPorts lists the only ports that may be dialled. Default nil:
	// any port.
	AllowedPorts []uint16

	// lookup and dial replace DNS resolution and the network dial of the
	// client returned by Client, so that tests never send a packet; nil
	// means net.DefaultResolver and a net.Dialer.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	dial   func(ctx context.Context, network, address string) (net.Conn, error)
}

// ErrForbidden is matched (errors.Is) by every refusal of this package.
var ErrForbidden = errors.New("outbound: address not allowed")

// MaxURLLen is the longest URL CheckURL accepts.
const MaxURLLen = 2048

// CheckURL validates raw at the time it is accepted, without a DNS lookup:
// it must be absolute, use http or https, have a host and an allowed port.
// If the host is an IP literal, or localhost or a name under .localhost, it
// is checked against p; a host that looks like a non-canonical IPv4 address
// is refused. A refused address or port wraps ErrForbidden; a malformed URL
// does not.
func (p Policy) CheckURL(raw string) error {
	if len(raw) > MaxURLLen {
		return fmt.Errorf("outbound: url is longer than %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("outbound: parse url: %w", err)
	}
	if !u.IsAbs() {
		return fmt.Errorf("outbound: url %q is not absolute", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("outbound: scheme %q is not http or https", u.Scheme)
	}
	if u.User != nil {
		// Credentials in a URL end up stored, shown and logged by proxies.
		return errors.New("outbound: url must not contain credentials (user:password@)")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return fmt.Errorf("outbound: url %q has no host", raw)
	}
	port, err := urlPort(u)
	if err != nil {
		return err
	}
	if err := p.checkPort(port); err != nil {
		return err
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if p.AllowPrivate {
			return nil
		}
		return fmt.Errorf("outbound: %s is a loopback name: %w", host, ErrForbidden)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckIP(ip)
	}
	if endsInNumber(host) {
		return fmt.Errorf("outbound: host %q is not a canonical IPv4 address; write it as a dotted quad", u.Hostname())
	}
	return nil
}

// urlPort returns the port u names, or the default port of its scheme.
func urlPort(u *url.URL) (uint16, error) {
	s := u.Port()
	if s == "" {
		if u.Scheme == "https" {
			return 443, nil
		}
		return 80, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("outbound: port %q is not a number from 1 to 65535", s)
	}
	return uint16(n), nil
}

// endsInNumber reports whether host's last label is a decimal number or a
// 0x-prefixed hexadecimal one: the WHATWG URL rule for a host that is meant
// as an IPv4 address. No DNS top-level name is numeric.
func endsInNumber(host string) bool {
	host = strings.TrimRight(host, ".")
	last := host[strings.LastIndexByte(host, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// checkPort refuses port unless p allows it.
func (p Policy) checkPort(port uint16) error {
	if len(p.AllowedPorts) == 0 || slices.Contains(p.AllowedPorts, port) {
		return nil
	}
	return fmt.Errorf("outbound: port %d is not allowed (allowed ports: %v): %w", port, p.AllowedPorts, ErrForbidden)
}

// CheckIP reports whether ip may be dialled under p: nil if it is allowed,
// an error wrapping ErrForbidden otherwise. An IPv4-mapped IPv6 address is
// judged as the IPv4 address it holds; another IPv6 address that embeds an
// IPv4 address is refused if either is. A zone does not change the verdict.
func (p Policy) CheckIP(ip netip.Addr) error {
	for _, v4 := range embeddedIPv4(ip) {
		if class := p.refused(v4); class != "" {
			return fmt.Errorf("outbound: %s embeds %s, %s address: %w", ip, v4, class, ErrForbidden)
		}
	}
	if class := p.refused(ip); class != "" {
		return fmt.Errorf("outbound: %s is %s address: %w", ip, class, ErrForbidden)
	}
	return nil
}

// refused names the class ip is refused for under p, with its article, or
// returns "" if p allows ip.
func (p Policy) refused(ip netip.Addr) string {
	class, private := classify(ip)
	if private && p.AllowPrivate {
		return ""
	}
	return class
}
