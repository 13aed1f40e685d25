package outbound

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// outcome is what a check is expected to return.
type outcome int

const (
	allowed      outcome = iota // nil
	malformed                   // an error, not necessarily ErrForbidden
	forbidden                   // an error wrapping ErrForbidden
	noncanonical                // a malformed error for a host that is not a canonical IPv4 address
)

func (o outcome) String() string {
	return [...]string{"allowed", "malformed", "forbidden", "noncanonical"}[o]
}

// checkOutcome fails t unless err matches want.
func checkOutcome(t *testing.T, err error, want outcome) {
	t.Helper()
	switch want {
	case allowed:
		if err != nil {
			t.Errorf("got error %v, want nil", err)
		}
	case malformed:
		if err == nil {
			t.Errorf("got nil error, want an error")
		}
	case forbidden:
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("got error %v, want one matching ErrForbidden", err)
		}
	case noncanonical:
		const msg = "is not a canonical IPv4 address"
		if err == nil || errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), msg) {
			t.Errorf("got error %v, want one saying %q, not matching ErrForbidden", err, msg)
		}
	}
	if err != nil && !strings.HasPrefix(err.Error(), "outbound: ") {
		t.Errorf("got error %q, want prefix %q", err, "outbound: ")
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		zero    outcome // under Policy{}
		private outcome // under Policy{AllowPrivate: true}
	}{
		{"http public ip", "http://93.184.216.34/cb", allowed, allowed},
		{"https public ip", "https://93.184.216.34:8443/cb?x=1", allowed, allowed},
		{"upper-case scheme", "HTTPS://93.184.216.34/cb", allowed, allowed},
		{"dns name", "https://example.com/cb", allowed, allowed},
		{"unresolvable name is not looked up", "https://callback.example.invalid/cb", allowed, allowed},
		{"public ipv6", "http://[2606:4700:4700::1111]/cb", allowed, allowed},

		{"ftp scheme", "ftp://example.com/file", malformed, malformed},
		{"file scheme", "file:///etc/passwd", malformed, malformed},
		{"javascript scheme", "javascript:alert(1)", malformed, malformed},
		{"relative url", "/cb", malformed, malformed},
		{"no scheme", "example.com/cb", malformed, malformed},
		{"empty", "", malformed, malformed},
		{"empty host", "http:///cb", malformed, malformed},
		{"port only", "http://:8080/cb", malformed, malformed},
		{"credentials", "http://user:pass@example.com/cb", malformed, malformed},
		{"user only", "https://user@example.com/cb", malformed, malformed},
		{"too long", "https://example.com/" + strings.Repeat("a", MaxURLLen), malformed, malformed},
		{"opaque", "http:example.com", malformed, malformed},
		{"bad escape", "http://example.com/%zz", malformed, malformed},

		{"metadata", "http://169.254.169.254/latest/meta-data/", forbidden, forbidden},
		{"link-local v4", "http://169.254.1.1/", forbidden, forbidden},
		{"link-local v6", "http://[fe80::1]/", forbidden, forbidden},
		{"link-local v6 with zone", "http://[fe80::1%25eth0]/", forbidden, forbidden},
		{"mapped metadata", "http://[::ffff:169.254.169.254]/", forbidden, forbidden},
		{"multicast v4", "http://224.0.0.1/", forbidden, forbidden},
		{"multicast v6", "http://[ff02::1]/", forbidden, forbidden},
		{"broadcast", "http://255.255.255.255/", forbidden, forbidden},

		{"loopback v4", "http://127.0.0.1:8080/cb", forbidden, allowed},
		{"loopback v4 range", "http://127.1.2.3/cb", forbidden, allowed},
		{"localhost", "http://localhost:8080/cb", forbidden, allowed},
		{"localhost upper case", "http://LOCALHOST/cb", forbidden, allowed},
		{"localhost trailing dot", "http://localhost./cb", forbidden, allowed},
		{"subdomain of localhost", "http://api.localhost/cb", forbidden, allowed},
		{"loopback v6", "http://[::1]:8080/cb", forbidden, allowed},
		{"mapped loopback", "http://[::ffff:127.0.0.1]/cb", forbidden, allowed},
		{"private 10/8", "http://10.0.0.1/cb", forbidden, allowed},
		{"private 192.168/16", "http://192.168.1.1/cb", forbidden, allowed},
		{"private 172.16/12", "http://172.16.0.1/cb", forbidden, allowed},
		{"private fc00::/7", "http://[fd00::1]/cb", forbidden, allowed},
		{"shared address space", "http://100.64.0.1/cb", forbidden, allowed},
		{"mapped shared address space", "http://[::ffff:100.64.0.1]/cb", forbidden, allowed},
		{"unspecified v4", "http://0.0.0.0/cb", forbidden, allowed},
		{"unspecified v6", "http://[::]/cb", forbidden, allowed},

		{"next to private 172.16/12", "http://172.32.0.1/cb", allowed, allowed},
		{"next to shared address space", "http://100.128.0.1/cb", allowed, allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("zero", func(t *testing.T) {
				checkOutcome(t, Policy{}.CheckURL(tt.raw), tt.zero)
			})
			t.Run("allow_private", func(t *testing.T) {
				checkOutcome(t, Policy{AllowPrivate: true}.CheckURL(tt.raw), tt.private)
			})
		})
	}
}

func TestCheckURLNonCanonicalIPv4(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		zero    outcome
		private outcome
	}{
		{"short form", "http://127.1/cb", noncanonical, noncanonical},
		{"short form with trailing dot", "http://127.1./cb", noncanonical, noncanonical},
		{"decimal", "http://2130706433/cb", noncanonical, noncanonical},
		{"hex", "http://0x7f000001/cb", noncanonical, noncanonical},
		{"upper-case hex", "http://0X7F000001/cb", noncanonical, noncanonical},
		{"octal", "http://0177.0.0.1/cb", noncanonical, noncanonical},
		{"zero", "http://0/cb", noncanonical, noncanonical},
		{"zero with port", "http://0:8080/cb", noncanonical, noncanonical},
		{"bare 0x", "http://0x/cb", noncanonical, noncanonical},
		{"three parts", "http://1.2.3/cb", noncanonical, noncanonical},
		{"five parts", "http://1.2.3.4.5/cb", noncanonical, noncanonical},
		{"leading zeros", "http://01.02.03.04/cb", noncanonical, noncanonical},
		{"hex part", "http://0x7f.1/cb", noncanonical, noncanonical},
		{"hex parts", "http://0x7f.0x0.0x0.0x1/cb", noncanonical, noncanonical},
		{"public decimal", "http://134744072/cb", noncanonical, noncanonical},

		{"canonical public", "http://8.8.8.8/cb", allowed, allowed},
		{"canonical loopback with trailing dot", "http://127.0.0.1./cb", forbidden, allowed},
		{"digits in a name", "https://1e100.net/cb", allowed, allowed},
		{"numeric first label", "https://123.example.com/cb", allowed, allowed},
		{"numeric labels under a name", "https://1.2.3.4.example.com/cb", allowed, allowed},
		{"hex-looking first label", "https://0x7f.example/cb", allowed, allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("zero", func(t *testing.T) {
				checkOutcome(t, Policy{}.CheckURL(tt.raw), tt.zero)
			})
			t.Run("allow_private", func(t *testing.T) {
				checkOutcome(t, Policy{AllowPrivate: true}.CheckURL(tt.raw), tt.private)
			})
		})
	}
}

func TestControl(t *testing.T) {
	tests := []struct {
		name    string
		address string
		zero    outcome
		private outcome
	}{
		{"public v4", "93.184.216.34:443", allowed, allowed},
		{"public v6", "[2606:4700:4700::1111]:443", allowed, allowed},
		{"loopback", "127.0.0.1:80", forbidden, allowed},
		{"loopback v6", "[::1]:80", forbidden, allowed},
		{"metadata", "169.254.169.254:80", forbidden, forbidden},
		{"mapped metadata", "[::ffff:169.254.169.254]:80", forbidden, forbidden},
		{"link-local v6 with zone", "[fe80::1%eth0]:80", forbidden, forbidden},
		{"not an address", "example.com:80", forbidden, forbidden},
		{"no port", "93.184.216.34", forbidden, forbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("zero", func(t *testing.T) {
				checkOutcome(t, Policy{}.Control("tcp", tt.address, nil), tt.zero)
			})
			t.Run("allow_private", func(t *testing.T) {
				checkOutcome(t, Policy{AllowPrivate: true}.Control("tcp", tt.address, nil), tt.private)
			})
		})
	}
}

// countingServer starts an httptest server answering 200 "ok" and returns it
// with the number of requests it has received.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// get requests url with c and returns the status and body.
func get(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body), nil
}

func TestClientDialCheck(t *testing.T) {
	// srv.URL names its address by IP literal (127.0.0.1); localhostURL names
	// it by a DNS name, so only the check of the resolved address can stop it.
	srv, hits := countingServer(t)
	localhostURL := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	if localhostURL == srv.URL {
		t.Fatalf("server url %s does not contain 127.0.0.1", srv.URL)
	}
	tests := []struct {
		name   string
		policy Policy
		url    string
		want   outcome
	}{
		{"ip literal refused", Policy{}, srv.URL, forbidden},
		{"resolved name refused", Policy{}, localhostURL, forbidden},
		{"ip literal allowed", Policy{AllowPrivate: true}, srv.URL, allowed},
		{"resolved name allowed", Policy{AllowPrivate: true}, localhostURL, allowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			status, body, err := get(t, tt.policy.Client(5*time.Second), tt.url)
			switch tt.want {
			case forbidden:
				if !errors.Is(err, ErrForbidden) {
					t.Fatalf("got error %v, want one matching ErrForbidden", err)
				}
				if n := hits.Load() - before; n != 0 {
					t.Errorf("got %d requests at the server, want 0", n)
				}
			case allowed:
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if status != http.StatusOK || body != "ok" {
					t.Errorf("got %d %q, want 200 %q", status, body, "ok")
				}
			}
		})
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/end", http.StatusFound)
	})
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := Policy{AllowPrivate: true}.Client(5 * time.Second).Get(srv.URL + "/start")
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("got status %d, want %d", resp.StatusCode, http.StatusFound)
	}
	if got := resp.Header.Get("Location"); got != "/end" {
		t.Errorf("got Location %q, want %q", got, "/end")
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("got %d requests to /end, want 0", n)
	}
}

func TestClientSettings(t *testing.T) {
	c := Policy{}.Client(7 * time.Second)
	if c.Timeout != 7*time.Second {
		t.Errorf("got Timeout %v, want %v", c.Timeout, 7*time.Second)
	}
	if c.CheckRedirect == nil {
		t.Errorf("got nil CheckRedirect, want one returning http.ErrUseLastResponse")
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("got Transport %T, want *http.Transport", c.Transport)
	}
	if tr.Proxy != nil {
		t.Errorf("got a Proxy function, want nil")
	}
	if tr.MaxIdleConns != 256 || tr.MaxIdleConnsPerHost != 64 || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("got idle pool %d/%d/%v, want 256/64/1m30s", tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.IdleConnTimeout)
	}
	if tr.TLSHandshakeTimeout != 5*time.Second {
		t.Errorf("got TLSHandshakeTimeout %v, want 5s", tr.TLSHandshakeTimeout)
	}
	if got := (Policy{}).Client(0).Timeout; got != 0 {
		t.Errorf("got Timeout %v for 0, want 0", got)
	}
}
