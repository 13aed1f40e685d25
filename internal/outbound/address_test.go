package outbound

import (
	"net/netip"
	"strings"
	"testing"
)

// addrTest is an address with the outcome expected under Policy{} and under
// Policy{AllowPrivate: true}.
type addrTest struct {
	name    string
	addr    string
	zero    outcome
	private outcome
	msg     string // when set, the refusal under Policy{} contains it
}

// runAddrTests checks every address through CheckIP, Control and CheckURL
// (as an IP literal on port 80), which must agree. Nothing is dialled.
func runAddrTests(t *testing.T, tests []addrTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			hostport := netip.AddrPortFrom(ip, 80).String()
			for _, pc := range []struct {
				name   string
				policy Policy
				want   outcome
				msg    string
			}{
				{"zero", Policy{}, tt.zero, tt.msg},
				{"allow_private", Policy{AllowPrivate: true}, tt.private, ""},
			} {
				t.Run(pc.name, func(t *testing.T) {
					for _, c := range []struct {
						name string
						err  error
					}{
						{"CheckIP", pc.policy.CheckIP(ip)},
						{"Control", pc.policy.Control("tcp", hostport, nil)},
						{"CheckURL", pc.policy.CheckURL("http://" + hostport + "/cb")},
					} {
						t.Run(c.name, func(t *testing.T) {
							checkOutcome(t, c.err, pc.want)
							if pc.msg != "" && (c.err == nil || !strings.Contains(c.err.Error(), pc.msg)) {
								t.Errorf("got error %v, want one containing %q", c.err, pc.msg)
							}
						})
					}
				})
			}
		})
	}
}

func TestSpecialPurposeAddresses(t *testing.T) {
	runAddrTests(t, []addrTest{
		{"this network", "0.1.2.3", forbidden, forbidden, "a reserved/special-purpose"},
		{"ietf protocol assignments", "192.0.0.8", forbidden, forbidden, "a reserved/special-purpose"},
		{"documentation test-net-1", "192.0.2.1", forbidden, forbidden, "a reserved/special-purpose"},
		{"as112", "192.31.196.1", forbidden, forbidden, "a reserved/special-purpose"},
		{"6to4 relay anycast", "192.88.99.1", forbidden, forbidden, "a reserved/special-purpose"},
		{"benchmarking", "198.18.0.1", forbidden, forbidden, "a reserved/special-purpose"},
		{"benchmarking top", "198.19.255.254", forbidden, forbidden, "a reserved/special-purpose"},
		{"documentation test-net-2", "198.51.100.7", forbidden, forbidden, "a reserved/special-purpose"},
		{"documentation test-net-3", "203.0.113.9", forbidden, forbidden, "a reserved/special-purpose"},
		{"reserved", "240.0.0.1", forbidden, forbidden, "a reserved/special-purpose"},
		{"broadcast", "255.255.255.255", forbidden, forbidden, "a broadcast"},
		{"discard-only v6", "100::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"ietf protocol assignments v6", "2001:2::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"documentation v6", "2001:db8::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"documentation 3fff::/20", "3fff::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"site-local v6", "fec0::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"outside global unicast", "4000::1", forbidden, forbidden, "a reserved/special-purpose"},
		{"unique local", "fc00::1", forbidden, allowed, "a private"},
		{"unique local fd", "fd12:3456::1", forbidden, allowed, "a private"},
		{"shared address space", "100.64.0.1", forbidden, allowed, "a shared"},

		{"next to documentation test-net-1", "192.0.3.1", allowed, allowed, ""},
		{"next to benchmarking", "198.20.0.1", allowed, allowed, ""},
		{"next to multicast", "223.255.255.1", allowed, allowed, ""},
		{"public v6", "2606:4700:4700::1111", allowed, allowed, ""},
		{"public v6 next to 2001::/23", "2001:4860:4860::8888", allowed, allowed, ""},
	})
}

func TestEmbeddedIPv4(t *testing.T) {
	runAddrTests(t, []addrTest{
		{"nat64 metadata", "64:ff9b::a9fe:a9fe", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"nat64 loopback", "64:ff9b::7f00:1", forbidden, forbidden, "embeds 127.0.0.1, a loopback"},
		{"nat64 public", "64:ff9b::5db8:d822", forbidden, forbidden, "a reserved/special-purpose"},
		{"nat64 local-use metadata", "64:ff9b:1::a9fe:a9fe", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"ipv4-translated metadata", "::ffff:0:a9fe:a9fe", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"ipv4-compatible metadata", "::a9fe:a9fe", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"ipv4-compatible private", "::a00:1", forbidden, forbidden, "embeds 10.0.0.1, a private"},
		{"6to4 metadata", "2002:a9fe:a9fe::1", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"6to4 loopback", "2002:7f00:1::1", forbidden, forbidden, "embeds 127.0.0.1, a loopback"},
		{"teredo server loopback", "2001:0:7f00:1::1", forbidden, forbidden, "embeds 127.0.0.1, a loopback"},
		// Server 65.54.227.120, client 169.254.169.254 stored inverted.
		{"teredo client metadata", "2001:0:4136:e378:8000:63bf:5601:5601", forbidden, forbidden, "embeds 169.254.169.254, a link-local"},
		{"mapped metadata", "::ffff:169.254.169.254", forbidden, forbidden, "a link-local"},
		{"mapped private", "::ffff:10.0.0.1", forbidden, allowed, "a private"},
		{"mapped public", "::ffff:93.184.216.34", allowed, allowed, ""},
		{"loopback is not ipv4-compatible", "::1", forbidden, allowed, "a loopback"},
		{"unspecified is not ipv4-compatible", "::", forbidden, allowed, "an unspecified"},
	})
}

func TestMetadataAddresses(t *testing.T) {
	runAddrTests(t, []addrTest{
		{"aws gcp azure metadata", "169.254.169.254", forbidden, forbidden, "a link-local"},
		{"ecs task metadata", "169.254.170.2", forbidden, forbidden, "a link-local"},
		{"link-local v6", "fe80::a9fe:a9fe", forbidden, forbidden, "a link-local"},
		{"aws imds v6", "fd00:ec2::254", forbidden, forbidden, "a cloud metadata"},
		{"alibaba metadata", "100.100.100.200", forbidden, forbidden, "a cloud metadata"},
		{"mapped alibaba metadata", "::ffff:100.100.100.200", forbidden, forbidden, "a cloud metadata"},
		{"nat64 alibaba metadata", "64:ff9b::6464:64c8", forbidden, forbidden, "embeds 100.100.100.200, a cloud metadata"},

		{"next to aws imds v6", "fd00:ec2::253", forbidden, allowed, "a private"},
		{"next to alibaba metadata", "100.100.100.201", forbidden, allowed, "a shared"},
	})
}

func TestCheckIPZone(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		zero    outcome
		private outcome
	}{
		{"aws imds v6 with zone", "fd00:ec2::254%eth0", forbidden, forbidden},
		{"nat64 metadata with zone", "64:ff9b::a9fe:a9fe%eth0", forbidden, forbidden},
		{"unique local with zone", "fd00::1%eth0", forbidden, allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			t.Run("zero", func(t *testing.T) {
				checkOutcome(t, Policy{}.CheckIP(ip), tt.zero)
			})
			t.Run("allow_private", func(t *testing.T) {
				checkOutcome(t, Policy{AllowPrivate: true}.CheckIP(ip), tt.private)
			})
		})
	}
}
