// Package loopback keeps test and benchmark traffic on this machine: a
// net.Dialer Control function that refuses every address but a loopback
// one, whatever a name resolved to, and the check of a host name.
package loopback

import (
	"fmt"
	"net"
	"strings"
	"syscall"
)

// Only is a net.Dialer Control function: it refuses to connect to anything
// but a loopback IP address. It sees the address after resolution, so a
// name cannot lead elsewhere.
func Only(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to connect to non-loopback %s", address)
	}
	return nil
}

// IsHost reports whether host is "localhost" or a loopback IP address.
func IsHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
