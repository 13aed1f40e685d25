package outbound

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	errFakeDial   = errors.New("fake dial: tests send no packets")
	errFakeLookup = errors.New("fake lookup: no such host")
)

// fakeNet resolves names from a table and records, then fails, every dial,
// so that Client is tested without sending a packet.
type fakeNet struct {
	mu      sync.Mutex // guards hosts and dialled
	hosts   map[string][]netip.Addr
	dialled []string
}

func (f *fakeNet) lookup(_ context.Context, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	addrs, ok := f.hosts[host]
	if !ok {
		return nil, errFakeLookup
	}
	return addrs, nil
}

func (f *fakeNet) dial(_ context.Context, _, address string) (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dialled = append(f.dialled, address)
	return nil, errFakeDial
}

// setHost makes name resolve to addrs.
func (f *fakeNet) setHost(name string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts == nil {
		f.hosts = make(map[string][]netip.Addr)
	}
	f.hosts[name] = nil
	for _, a := range addrs {
		f.hosts[name] = append(f.hosts[name], netip.MustParseAddr(a))
	}
}

// takeDialled returns the addresses dialled since the last call.
func (f *fakeNet) takeDialled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dialled
	f.dialled = nil
	return d
}

// client returns p's client with f's resolver and dialer.
func (f *fakeNet) client(p Policy) *http.Client {
	p.lookup, p.dial = f.lookup, f.dial
	return p.Client(5 * time.Second)
}

func TestClientChecksResolvedAddresses(t *testing.T) {
	var fake fakeNet
	fake.setHost("public.test", "93.184.216.34")
	fake.setHost("public6.test", "2606:4700:4700::1111")
	fake.setHost("metadata.test", "169.254.169.254")
	fake.setHost("nat64-metadata.test", "64:ff9b::a9fe:a9fe")
	fake.setHost("aws-imds-v6.test", "fd00:ec2::254")
	fake.setHost("alibaba-metadata.test", "100.100.100.200")
	fake.setHost("6to4-loopback.test", "2002:7f00:1::1")
	fake.setHost("private.test", "10.0.0.1")
	fake.setHost("mapped-private.test", "::ffff:10.0.0.1")
	fake.setHost("metadata-then-public.test", "169.254.169.254", "93.184.216.34")
	fake.setHost("public-then-metadata.test", "93.184.216.34", "169.254.169.254")
	fake.setHost("no-addresses.test")

	open := Policy{AllowPrivate: true}
	tests := []struct {
		name    string
		policy  Policy
		url     string
		wantErr error    // matched by the request's error (errFakeDial once dialled)
		dialled []string // the addresses handed to the dialer
	}{
		{"public name", Policy{}, "http://public.test/cb", errFakeDial, []string{"93.184.216.34:80"}},
		{"public name https", Policy{}, "https://public.test/cb", errFakeDial, []string{"93.184.216.34:443"}},
		{"public v6 name", Policy{}, "http://public6.test:8080/cb", errFakeDial, []string{"[2606:4700:4700::1111]:8080"}},
		{"public ip literal", Policy{}, "http://93.184.216.34:8080/cb", errFakeDial, []string{"93.184.216.34:8080"}},
		{"name resolving to metadata", open, "http://metadata.test/cb", ErrForbidden, nil},
		{"name resolving to nat64 metadata", open, "http://nat64-metadata.test/cb", ErrForbidden, nil},
		{"name resolving to aws imds v6", open, "http://aws-imds-v6.test/cb", ErrForbidden, nil},
		{"name resolving to alibaba metadata", open, "http://alibaba-metadata.test/cb", ErrForbidden, nil},
		{"name resolving to 6to4 loopback", open, "http://6to4-loopback.test/cb", ErrForbidden, nil},
		{"name resolving to private refused", Policy{}, "http://private.test/cb", ErrForbidden, nil},
		{"name resolving to private allowed", open, "http://private.test/cb", errFakeDial, []string{"10.0.0.1:80"}},
		{"name resolving to mapped private refused", Policy{}, "http://mapped-private.test/cb", ErrForbidden, nil},
		{"name resolving to mapped private allowed", open, "http://mapped-private.test/cb", errFakeDial, []string{"10.0.0.1:80"}},
		{"metadata ip literal", open, "http://169.254.169.254/latest/meta-data/", ErrForbidden, nil},
		{"refused address skipped, first error kept", Policy{}, "http://metadata-then-public.test/cb", ErrForbidden, []string{"93.184.216.34:80"}},
		{"refused address after a failed dial skipped", Policy{}, "http://public-then-metadata.test/cb", errFakeDial, []string{"93.184.216.34:80"}},
		{"port not allowed", Policy{AllowedPorts: []uint16{443}}, "http://public.test/cb", ErrForbidden, nil},
		{"port allowed", Policy{AllowedPorts: []uint16{443}}, "https://public.test/cb", errFakeDial, []string{"93.184.216.34:443"}},
		{"unknown name", Policy{}, "http://missing.test/cb", errFakeLookup, nil},
		{"name without addresses", Policy{}, "http://no-addresses.test/cb", errNoAddresses, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake.takeDialled()
			resp, err := fake.client(tt.policy).Get(tt.url)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got a response, want an error")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("got error %v, want one matching %v", err, tt.wantErr)
			}
			if got := fake.takeDialled(); !slices.Equal(got, tt.dialled) {
				t.Errorf("got dials %q, want %q", got, tt.dialled)
			}
		})
	}
}

func TestClientDNSRebinding(t *testing.T) {
	// The name is public when the URL is accepted and on the first request,
	// then rebound to AWS's IPv6 metadata address: the dial-time check stops
	// it, though private addresses are allowed.
	const url = "http://rebind.test/cb"
	var fake fakeNet
	fake.setHost("rebind.test", "93.184.216.34")
	p := Policy{AllowPrivate: true}
	if err := p.CheckURL(url); err != nil {
		t.Fatalf("CheckURL: got error %v, want nil", err)
	}
	c := fake.client(p)
	if _, err := c.Get(url); !errors.Is(err, errFakeDial) {
		t.Fatalf("first request: got error %v, want one matching %v", err, errFakeDial)
	}
	if got, want := fake.takeDialled(), []string{"93.184.216.34:80"}; !slices.Equal(got, want) {
		t.Fatalf("first request: got dials %q, want %q", got, want)
	}

	fake.setHost("rebind.test", "fd00:ec2::254")
	if _, err := c.Get(url); !errors.Is(err, ErrForbidden) {
		t.Errorf("after rebinding: got error %v, want one matching ErrForbidden", err)
	}
	if got := fake.takeDialled(); len(got) != 0 {
		t.Errorf("after rebinding: got dials %q, want none", got)
	}
}
