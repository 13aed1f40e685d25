package outbound

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckURLAllowedPorts(t *testing.T) {
	web := Policy{AllowedPorts: []uint16{80, 443}}
	tests := []struct {
		name   string
		policy Policy
		raw    string
		want   outcome
		msg    string // when set, the error contains it
	}{
		{"http default port", web, "http://example.com/cb", allowed, ""},
		{"https default port", web, "https://example.com/cb", allowed, ""},
		{"explicit allowed port", web, "https://example.com:80/cb", allowed, ""},
		{"explicit port not allowed", web, "https://example.com:8443/cb", forbidden, "port 8443"},
		{"ip literal port not allowed", web, "http://93.184.216.34:8080/cb", forbidden, "port 8080"},
		{"http default port not allowed", Policy{AllowedPorts: []uint16{443}}, "http://example.com/cb", forbidden, "port 80"},
		{"https default port not allowed", Policy{AllowedPorts: []uint16{80}}, "https://example.com/cb", forbidden, "port 443"},
		{"empty trailing port is the default", Policy{AllowedPorts: []uint16{443}}, "https://example.com:/cb", allowed, ""},
		{"any port when unset", Policy{}, "http://example.com:8080/cb", allowed, ""},
		{"any port when empty", Policy{AllowedPorts: []uint16{}}, "http://example.com:8080/cb", allowed, ""},
		{"port out of range", Policy{}, "http://example.com:65536/cb", malformed, "65536"},
		{"port zero", Policy{}, "http://example.com:0/cb", malformed, "port \"0\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckURL(tt.raw)
			checkOutcome(t, err, tt.want)
			if tt.want == malformed && errors.Is(err, ErrForbidden) {
				t.Errorf("got error %v, want one not matching ErrForbidden", err)
			}
			if tt.msg != "" && (err == nil || !strings.Contains(err.Error(), tt.msg)) {
				t.Errorf("got error %v, want one containing %q", err, tt.msg)
			}
		})
	}
}

func TestControlAllowedPorts(t *testing.T) {
	web := Policy{AllowedPorts: []uint16{80, 443}}
	tests := []struct {
		name    string
		policy  Policy
		address string
		want    outcome
	}{
		{"allowed port", web, "93.184.216.34:443", allowed},
		{"port not allowed", web, "93.184.216.34:8443", forbidden},
		{"port not allowed v6", web, "[2606:4700:4700::1111]:22", forbidden},
		{"allowed port on a refused address", web, "169.254.169.254:80", forbidden},
		{"any port when unset", Policy{}, "93.184.216.34:8443", allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkOutcome(t, tt.policy.Control("tcp", tt.address, nil), tt.want)
		})
	}
}
