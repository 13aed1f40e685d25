package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/retry"
)

// failing is a Transport whose every request fails with err: failures
// that would need DNS or a remote address, made without a packet.
type failing struct{ err error }

func (f failing) RoundTrip(*http.Request) (*http.Response, error) { return nil, f.err }

// closedURL returns an http URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "http://" + ln.Addr().String()
}

// A forward's error says what failed in the words API clients see (the
// class, or the HTTP status and the target's own error text), keeps the
// retry marks, and never names an address, a resolver or the URL.
func TestForwardErrors(t *testing.T) {
	answering := func(code int, header, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if header != "" {
				w.Header().Set("Retry-After", header)
			}
			w.WriteHeader(code)
			io.WriteString(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	local := outbound.Policy{AllowPrivate: true}.Client(5 * time.Second)
	dnsErr := &net.DNSError{Err: "no such host", Name: "svc.internal.example", Server: "10.0.0.2:53", IsNotFound: true}
	forbidden := fmt.Errorf("outbound: 10.0.0.5 is a private address: %w", outbound.ErrForbidden)
	tests := []struct {
		name      string
		url       string
		client    *http.Client
		want      string
		permanent bool
		after     time.Duration
	}{
		{"refused", closedURL(t), local, "connection refused", false, 0},
		{"resolver fails", "http://svc.internal.example", &http.Client{Transport: failing{dnsErr}}, "dns lookup failed", false, 0},
		{"address not allowed", "http://svc.internal.example", &http.Client{Transport: failing{forbidden}}, "address not allowed", false, 0},
		{"503 with Retry-After", answering(503, "7", ""), local, "HTTP 503", false, 7 * time.Second},
		{"422 with the target's error", answering(422, "", `{"error":"username taken"}`), local, "HTTP 422: username taken", true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Forward(tc.url+"/in?token=s3cret", tc.client)(context.Background(), Event{ID: "e1", Type: "t", Attempt: 1, Body: []byte(`{}`)})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if got := retry.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent: got %v, want %v", got, tc.permanent)
			}
			if got := retry.AfterOf(err); got != tc.after {
				t.Errorf("retry after: got %s, want %s", got, tc.after)
			}
			if d := outbound.Redact(err); strings.Contains(d, "s3cret") {
				t.Errorf("Redact: got %q, which holds the URL's query", d)
			}
		})
	}
}

// The target's error text is cut on a character boundary: a 200-byte cut
// that would split a multi-byte character keeps the text valid UTF-8.
func TestErrorExcerptKeepsUTF8(t *testing.T) {
	msg := strings.Repeat("a", maxErrorExcerpt-1) + "é and more" // é is bytes 199 and 200
	got := cut(msg, maxErrorExcerpt)
	if !utf8.ValidString(got) || got != strings.Repeat("a", maxErrorExcerpt-1) {
		t.Errorf("cut: got %q (valid UTF-8: %v), want the 199 a's", got, utf8.ValidString(got))
	}
	detail := errorDetail([]byte(`{"error":"` + msg + `"}`))
	if !utf8.ValidString(detail) || len(detail) > len(": ")+maxErrorExcerpt {
		t.Errorf("errorDetail: got %q (%d bytes, valid UTF-8: %v), want at most %d valid bytes", detail, len(detail), utf8.ValidString(detail), len(": ")+maxErrorExcerpt)
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, `{"error":%q}`, msg)
	}))
	defer target.Close()
	err := Forward(target.URL, outbound.Policy{AllowPrivate: true}.Client(5*time.Second))(context.Background(), Event{ID: "e1", Type: "t", Attempt: 1})
	if err == nil || !utf8.ValidString(err.Error()) || !strings.HasPrefix(err.Error(), "HTTP 422: aaa") {
		t.Errorf("Forward: got %q, want HTTP 422 and the excerpt, valid UTF-8", err)
	}
}
