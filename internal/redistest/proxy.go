package redistest

import (
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Mode is what a Proxy does with the traffic between a client and Redis.
type Mode int32

// The modes of a Proxy.
const (
	// Forward passes commands and replies through.
	Forward Mode = iota
	// DropReplies passes commands to Redis, which runs them, and throws its
	// replies away: a client sees a Redis that did the work but never
	// answered, as when a reply is lost on the way.
	DropReplies
	// Stall reads the client's commands and throws them away: a Redis that
	// accepts connections and never answers.
	Stall
)

func (m Mode) String() string {
	switch m {
	case Forward:
		return "forward"
	case DropReplies:
		return "drop-replies"
	case Stall:
		return "stall"
	}
	return "unknown"
}

// Proxy is a TCP proxy on 127.0.0.1 between Redis clients and a Redis
// server, which a test can make misbehave (SetMode) and whose client
// connections it can cut (CloseConns). It understands nothing of the
// protocol: a mode applies to whatever bytes pass after it is set.
type Proxy struct {
	// URL is the server's URL with the proxy's address: what the client
	// under test connects to.
	URL string

	target string
	ln     net.Listener
	mode   atomic.Int32
	wg     sync.WaitGroup // the accept loop and every pump

	mu     sync.Mutex // guards links and closed
	links  map[*link]struct{}
	closed bool
}

// link is one client connection and the proxy's connection to Redis for it.
type link struct{ client, server net.Conn }

func (l *link) close() {
	l.client.Close()
	l.server.Close()
}

// NewProxy starts a proxy to the Redis at redisURL (redis://host:port/db)
// in Forward mode. It is closed at the test's end.
//
// A cluster's URL skips the test: a proxy stands before one node, and a
// cluster's clients follow the nodes' redirects past it.
func NewProxy(t testing.TB, redisURL string) *Proxy {
	t.Helper()
	if strings.Contains(redisURL, "+cluster://") {
		t.Skip("redistest: a proxy cannot stand before a cluster (its clients follow redirects past it)")
	}
	u, err := url.Parse(redisURL)
	if err != nil || u.Host == "" {
		t.Fatalf("redistest: proxy: bad redis url %q", redisURL)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: u.Host, ln: ln, links: map[*link]struct{}{}}
	u.Host = ln.Addr().String()
	p.URL = u.String()
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode changes what the proxy does from now on, on every connection.
func (p *Proxy) SetMode(m Mode) { p.mode.Store(int32(m)) }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// CloseConns closes every client connection (and its connection to Redis),
// as a network that cuts them would, and returns how many it closed. New
// connections are accepted as before.
func (p *Proxy) CloseConns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.links)
	for l := range p.links {
		l.close()
		delete(p.links, l)
	}
	return n
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.CloseConns()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			client.Close() // Redis is down: so is the proxy, to the client
			continue
		}
		l := &link{client: client, server: server}
		if !p.track(l) {
			return
		}
		p.wg.Go(func() { p.pump(l, l.server, l.client, Stall) })       // commands
		p.wg.Go(func() { p.pump(l, l.client, l.server, DropReplies) }) // replies
	}
}

// track registers l, or closes it and returns false when the proxy is
// closed.
func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		l.close()
		return false
	}
	p.links[l] = struct{}{}
	return true
}

// pump copies src to dst, one direction of l, until either side fails or
// is closed, throwing away what it reads while the mode is Stall or drop.
// Then it closes l, so both directions end.
func (p *Proxy) pump(l *link, dst, src net.Conn, drop Mode) {
	defer func() {
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		l.close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if m := p.Mode(); n > 0 && m != Stall && m != drop {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset or closed
		}
	}
}
