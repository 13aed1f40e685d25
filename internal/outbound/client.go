package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// Control is a net.Dialer Control function that refuses forbidden resolved
// addresses and ports. address is the "ip:port" about to be dialled;
// anything that is not one is refused.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("outbound: dial %s %q: not an ip address and port: %w", network, address, ErrForbidden)
	}
	if err := p.checkPort(ap.Port()); err != nil {
		return err
	}
	return p.CheckIP(ap.Addr())
}

// Client returns an *http.Client that dials only addresses and ports p
// allows, never follows redirects (a 3xx response is returned as is),
// ignores environment proxies (they would bypass the dial check) and keeps
// connections alive. timeout bounds each whole request; 0 means no
// client-level timeout, for callers that use contexts.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           p.dialContext,
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

// dialContext dials address ("host:port") for Client. It resolves the host,
// skips the resolved addresses p refuses and dials the others in turn; it
// returns the first connection made, or else the first error. Each dial
// goes through a net.Dialer whose Control checks the socket address again.
func (p Policy) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("outbound: dial %s %q: %w", network, address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("outbound: dial %s %q: bad port: %w", network, address, err)
	}
	if err := p.checkPort(uint16(port)); err != nil {
		return nil, err
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	dial := p.dial
	if dial == nil {
		d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
		dial = d.DialContext
	}
	var errs []error
	for _, ip := range addrs {
		ip = ip.Unmap()
		if err := p.CheckIP(ip); err != nil {
			errs = append(errs, err)
			continue
		}
		conn, err := dial(ctx, network, netip.AddrPortFrom(ip, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, errs[0] // resolve returns at least one address
}

// errNoAddresses is returned for a name that resolves to no address.
var errNoAddresses = errors.New("no addresses")

// resolve returns the addresses of host: itself if it is an IP literal,
// else those p.lookup or the default resolver finds, at least one.
func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	lookup := p.lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := lookup(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = errNoAddresses
	}
	if err != nil {
		return nil, &lookupError{host: host, err: err}
	}
	return addrs, nil
}

// lookupError is a failed resolution of host, whatever the resolver's
// error: Describe classes it ClassDNS.
type lookupError struct {
	host string
	err  error
}

func (e *lookupError) Error() string { return "outbound: resolve " + e.host + ": " + e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }
