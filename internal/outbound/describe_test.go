package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// failing is a Transport whose every request fails with err, so that
// failures that need a network (DNS, remote addresses) are made without
// one.
type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// resetting returns the address of a 127.0.0.1 listener that reads the
// start of each request, then resets the connection.
func resetting(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, 16))
			c.(*net.TCPConn).SetLinger(0) // close with RST
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// A failure's message is its class and nothing more: no address, host,
// resolver or URL. Redact keeps the detail for the log, without the
// URL's query.
func TestDescribe(t *testing.T) {
	private := Policy{AllowPrivate: true}
	var fake fakeNet
	fake.setHost("internal.test", "10.0.0.5")

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-hang:
		}
	}))
	t.Cleanup(func() { close(hang); slow.Close() })
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)

	dnsErr := &net.DNSError{Err: "no such host", Name: "cb.internal.example", Server: "10.0.0.2:53", IsNotFound: true}
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 80}, Err: errors.New("connect: no route to host")}
	tests := []struct {
		name   string
		client *http.Client
		url    string
		want   string
		hidden []string // not in the message
	}{
		{"refused", private.Client(5 * time.Second), "http://" + closedPort(t), ClassRefused, []string{"127.0.0.1"}},
		{"reset", private.Client(5 * time.Second), "http://" + resetting(t), ClassReset, []string{"127.0.0.1"}},
		{"resolver error", &http.Client{Transport: failing{dnsErr}}, "http://cb.internal.example", ClassDNS, []string{"10.0.0.2", "internal"}},
		{"name not found by the policy's resolver", fake.client(Policy{}), "http://nowhere.test", ClassDNS, []string{"nowhere"}},
		{"resolved to a refused address", fake.client(Policy{}), "http://internal.test", ClassForbidden, []string{"10.0.0.5", "internal"}},
		{"refused literal", Policy{}.Client(5 * time.Second), "http://" + closedPort(t), ClassForbidden, []string{"127.0.0.1"}},
		{"timeout", private.Client(50 * time.Millisecond), slow.URL, ClassTimeout, []string{"127.0.0.1"}},
		{"unknown certificate authority", private.Client(5 * time.Second), tlsSrv.URL, ClassTLS, []string{"127.0.0.1"}},
		{"not tls", private.Client(5 * time.Second), strings.Replace(plain.URL, "http:", "https:", 1), ClassTLS, []string{"127.0.0.1"}},
		{"other", &http.Client{Transport: failing{dialErr}}, "http://cb.internal.example", ClassNetwork, []string{"10.0.0.5", "internal"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url+"/cb?token=s3cret", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tc.client.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				t.Fatalf("got %d, want an error", resp.StatusCode)
			}
			if got := Describe(err); got != tc.want {
				t.Errorf("Describe: got %q, want %q (the error: %v)", got, tc.want, err)
			}
			failed := Fail(err)
			if got := failed.Error(); got != tc.want {
				t.Errorf("Fail(err).Error(): got %q, want %q", got, tc.want)
			}
			for _, s := range tc.hidden {
				if strings.Contains(failed.Error(), s) {
					t.Errorf("Fail(err).Error(): got %q, which names %q", failed, s)
				}
			}
			detail := Redact(fmt.Errorf("wrapped: %w", failed))
			if strings.Contains(detail, "s3cret") || strings.Contains(detail, "token") {
				t.Errorf("Redact: got %q, which holds the query", detail)
			}
			if !strings.Contains(detail, "/cb\"") {
				t.Errorf("Redact: got %q, want the URL's scheme, host and path", detail)
			}
			if !errors.Is(failed, err) {
				t.Errorf("Fail(err): got %v, want it to wrap err", failed)
			}
		})
	}
}

func TestDescribeErrors(t *testing.T) {
	_, parseErr := http.NewRequest(http.MethodPost, "http://a b/?token=s3cret", nil)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"forbidden", fmt.Errorf("outbound: 10.0.0.5 is a private address: %w", ErrForbidden), ClassForbidden},
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), ClassTimeout},
		{"canceled", fmt.Errorf("post: %w", context.Canceled), ClassCanceled},
		{"bad url", parseErr, ClassInvalidURL},
		{"anything else", io.ErrUnexpectedEOF, ClassNetwork},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(tc.err); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	if got := Redact(Fail(parseErr)); strings.Contains(got, "s3cret") {
		t.Errorf("Redact of a bad url: got %q, which holds the query", got)
	}
	if Fail(nil) != nil {
		t.Error("Fail(nil): got an error, want nil")
	}
	if got := Status(503); got != "HTTP 503" {
		t.Errorf("Status(503): got %q, want %q", got, "HTTP 503")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://user:pw@cb.example.com:8443/hooks/a?token=s3cret#frag", "https://cb.example.com:8443/hooks/a"},
		{"http://127.0.0.1:9/cb", "http://127.0.0.1:9/cb"},
		{"http://h/p%2Fq?x=1", "http://h/p%2Fq"},
		{"http://[::1/?token=s3cret", "(unparsable url)"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}
