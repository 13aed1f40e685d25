// Package outbound guards the HTTP requests Boomerang makes to URLs it is
// given: callback URLs supplied by clients and forward URLs configured by
// operators.
//
// A URL is checked twice. CheckURL validates it when it is accepted, without
// any DNS lookup: only absolute http and https URLs with a host, and no IP
// literal or localhost name of a refused class. The client returned by
// Client then checks every address it actually dials, after DNS resolution,
// so a name that resolves (or is rebound) to a private address is refused
// too. The client never follows redirects and ignores environment proxies.
//
// Link-local addresses (169.254.0.0/16, which holds cloud metadata services,
// and fe80::/10), multicast and broadcast are always refused. Loopback,
// private ranges, unspecified addresses and the shared address space
// 100.64.0.0/10 are refused unless the Policy allows private networks.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Policy decides which outbound addresses may be dialled. The zero value
// refuses loopback and private networks.
type Policy struct {
	// AllowPrivate permits loopback and private-range addresses (for
	// development and for services on a private network). Link-local,
	// multicast and broadcast addresses stay refused. Default false.
	AllowPrivate bool
}

// ErrForbidden is matched (errors.Is) by every refusal of this package.
var ErrForbidden = errors.New("outbound: address not allowed")

var (
	linkLocal4  = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6  = netip.MustParsePrefix("fe80::/10")
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // RFC 6598, carrier-grade NAT
	broadcast4  = netip.MustParseAddr("255.255.255.255")
)

// MaxURLLen is the longest URL CheckURL accepts.
const MaxURLLen = 2048

// CheckURL validates raw at the time it is accepted, without a DNS lookup:
// it must be absolute, use http or https, and have a host. If the host is an
// IP literal, or localhost or a name under .localhost, it is checked against
// p. A refused address class wraps ErrForbidden; a malformed URL does not.
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
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		if p.AllowPrivate {
			return nil
		}
		return fmt.Errorf("outbound: %s is a loopback name: %w", host, ErrForbidden)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckIP(ip)
	}
	return nil
}

// CheckIP reports whether ip may be dialled under p: nil if it is allowed,
// an error wrapping ErrForbidden otherwise. An IPv4-mapped IPv6 address is
// judged as the IPv4 address it holds.
func (p Policy) CheckIP(ip netip.Addr) error {
	class, always := classify(ip.Unmap())
	if class == "" || (!always && p.AllowPrivate) {
		return nil
	}
	return fmt.Errorf("outbound: %s is %s address: %w", ip, class, ErrForbidden)
}

// classify names the refused class ip belongs to, with its article, or
// returns "" for a public address. always reports whether the class is
// refused even when private networks are allowed. ip must be unmapped, for
// netip.Prefix.Contains.
func classify(ip netip.Addr) (class string, always bool) {
	switch {
	case !ip.IsValid():
		return "an invalid", true
	case ip.IsLinkLocalUnicast(), linkLocal4.Contains(ip), linkLocal6.Contains(ip):
		return "a link-local", true
	case ip.IsMulticast():
		return "a multicast", true
	case ip == broadcast4:
		return "a broadcast", true
	case ip.IsLoopback():
		return "a loopback", false
	case ip.IsUnspecified():
		return "an unspecified", false
	case ip.IsPrivate():
		return "a private", false
	case sharedSpace.Contains(ip):
		return "a shared (carrier-grade nat)", false
	}
	return "", false
}

// Control is a net.Dialer Control function that refuses forbidden resolved
// addresses. address is the "ip:port" about to be dialled; anything that is
// not one is refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound: dial %s %q: not an ip address and port: %w", network, address, ErrForbidden)
	}
	return p.CheckIP(ap.Addr())
}

// Client returns an *http.Client that dials only addresses p allows, never
// follows redirects (a 3xx response is returned as is), ignores environment
// proxies (they would bypass the dial check) and keeps connections alive.
// timeout bounds each whole request; 0 means no client-level timeout, for
// callers that use contexts.
func (p Policy) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout:   5 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   p.Control,
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   5 * time.Second,
			ExpectContinueTimeout: 1 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
		Timeout: timeout,
	}
}
