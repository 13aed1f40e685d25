package loopback

import "testing"

// Only judges the address it is given and dials nothing.
func TestOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:80": true, "127.1.2.3:9": true, "[::1]:443": true,
		"10.0.0.1:80": false, "192.0.2.1:80": false, "[2001:db8::1]:80": false,
		"example.com:80": false, "localhost:80": false, "no-port": false,
	} {
		if err := Only("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("Only(%s) = %v, want allowed %v", addr, err, ok)
		}
	}
}

func TestIsHost(t *testing.T) {
	for host, ok := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "::1": true,
		"10.0.0.1": false, "example.com": false, "": false,
	} {
		if got := IsHost(host); got != ok {
			t.Errorf("IsHost(%q) = %v, want %v", host, got, ok)
		}
	}
}
