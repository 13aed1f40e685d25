package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// The classes of a failed outbound request, as Describe gives them. They
// are what API clients see of the failure (last_error, the callback's
// "error"); they never name an address, a host or a URL, so a client cannot
// use them to map the server's network. The details go to the server's log
// (Redact).
const (
	ClassRefused    = "connection refused"
	ClassForbidden  = "address not allowed"
	ClassTimeout    = "timeout"
	ClassDNS        = "dns lookup failed"
	ClassTLS        = "tls handshake failed"
	ClassReset      = "connection reset"
	ClassInvalidURL = "invalid url"
	ClassCanceled   = "canceled"
	ClassNetwork    = "network error"
)

// Describe returns the class of err, the failure of an outbound request
// (an error of http.Client.Do or http.NewRequest): one of the Class
// constants. The first that applies, in this order: a refusal of the
// address policy (ErrForbidden), a failed name resolution, a TLS handshake
// failure, a refused connection, a reset connection, a timeout, a
// cancelled request, a malformed URL; anything else is ClassNetwork.
func Describe(err error) string {
	var (
		dnsErr  *net.DNSError
		lookErr *lookupError
		netErr  net.Error
		urlErr  *url.Error
	)
	switch {
	case errors.Is(err, ErrForbidden):
		return ClassForbidden
	case errors.As(err, &dnsErr), errors.As(err, &lookErr):
		return ClassDNS
	case isTLS(err):
		return ClassTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return ClassReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return ClassTimeout
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.As(err, &urlErr) && urlErr.Op == "parse":
		return ClassInvalidURL
	}
	return ClassNetwork
}

// isTLS reports whether err is a failed TLS handshake: a peer that does not
// speak TLS, a TLS alert, or a certificate that does not verify.
func isTLS(err error) bool {
	// net/http replaces the tls.RecordHeaderError of a plain HTTP peer with
	// an error of its own, matched by its (stable) text.
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return true
	}
	var (
		header   tls.RecordHeaderError
		alert    tls.AlertError
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &header) || errors.As(err, &alert) || errors.As(err, &verify) ||
		errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// Error is a failed outbound request as API clients may see it: its
// message is only the class of the failure (Describe). The cause, which
// names addresses and the URL, stays reachable with errors.Is and
// errors.As, and Redact gives it, redacted, for the server's log. Marks
// such as retry.Permanent wrap an *Error like any other error.
type Error struct {
	cause error
}

// Fail returns err, the failure of an outbound request, as an *Error;
// Fail(nil) is nil.
func Fail(err error) error {
	if err == nil {
		return nil
	}
	return &Error{cause: err}
}

// Error returns the class of the failure.
func (e *Error) Error() string { return Describe(e.cause) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// Redact returns err's message for the server's log: for an *Error (or an
// error wrapping one), the message of its cause; the URL of a request
// (*url.Error) reduced to scheme://host/path, without its query, fragment
// or credentials, which often carry tokens. Log outbound failures with
// Redact(err), never with err itself.
func Redact(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		err = e.cause
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.URL != "" {
		safe := RedactURL(ue.URL)
		msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(safe))
		msg = strings.ReplaceAll(msg, ue.URL, safe)
	}
	return msg
}

// RedactURL returns raw as scheme://host/path, for logs: without its
// query, fragment or credentials. A URL that does not parse is replaced
// whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// Status is the class of a request answered with a status that is not a
// 2xx: "HTTP 503".
func Status(code int) string {
	return "HTTP " + strconv.Itoa(code)
}

// StatusError is an answer that was not a 2xx: Code is its status, and
// its message Status(Code) and whatever detail the caller adds.
type StatusError struct {
	Code   int
	Detail string // appended to the message, such as ": username taken"
}

func (e *StatusError) Error() string { return Status(e.Code) + e.Detail }
