package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestProxy drives the proxy with raw RESP commands and checks each mode
// by what reached Redis, read directly.
func TestProxy(t *testing.T) {
	Run(t, func(t *testing.T, b Backend) {
		p := NewProxy(t, b.URL)
		if !strings.Contains(p.URL, "127.0.0.1:") || p.URL == b.URL {
			t.Fatalf("proxy URL %q: want the backend URL %q on another 127.0.0.1 port", p.URL, b.URL)
		}
		conn, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rd := bufio.NewReader(conn)
		send := func(args ...string) {
			t.Helper()
			cmd := fmt.Sprintf("*%d\r\n", len(args))
			for _, a := range args {
				cmd += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
			}
			if _, err := conn.Write([]byte(cmd)); err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		reply := func(within time.Duration) (string, error) {
			conn.SetReadDeadline(time.Now().Add(within))
			return rd.ReadString('\n')
		}
		if u, _ := url.Parse(b.URL); strings.Trim(u.Path, "/") != "" { // REDIS_URL's database
			send("SELECT", strings.Trim(u.Path, "/"))
			if got, err := reply(time.Second); got != "+OK\r\n" {
				t.Fatalf("SELECT: got %q, %v", got, err)
			}
		}
		key := func(name string) string { return "{" + b.Prefix + "}:proxy:" + name }
		ctx := context.Background()

		// Forward: the command runs and its reply comes back.
		send("SET", key("forward"), "v")
		if got, err := reply(time.Second); got != "+OK\r\n" {
			t.Fatalf("forward: got %q, %v; want +OK", got, err)
		}

		// DropReplies: the command runs, its reply never comes.
		p.SetMode(DropReplies)
		send("SET", key("dropped"), "v")
		if got, err := reply(300 * time.Millisecond); !isTimeout(err) {
			t.Fatalf("drop-replies: got %q, %v; want no reply", got, err)
		}
		if got, err := b.Client.Get(ctx, key("dropped")).Result(); got != "v" {
			t.Fatalf("drop-replies: the command did not run: GET got %q, %v", got, err)
		}

		// Stall: neither the command nor a reply passes.
		p.SetMode(Stall)
		send("SET", key("stalled"), "v")
		if got, err := reply(300 * time.Millisecond); !isTimeout(err) {
			t.Fatalf("stall: got %q, %v; want no reply", got, err)
		}
		if n, err := b.Client.Exists(ctx, key("stalled")).Result(); n != 0 || err != nil {
			t.Fatalf("stall: the command reached Redis (EXISTS %d, %v)", n, err)
		}

		// Forward again on the same connection.
		p.SetMode(Forward)
		send("PING")
		if got, err := reply(time.Second); got != "+PONG\r\n" {
			t.Fatalf("forward after stall: got %q, %v; want +PONG", got, err)
		}

		// CloseConns cuts the connection.
		if n := p.CloseConns(); n != 1 {
			t.Errorf("CloseConns: closed %d connections, want 1", n)
		}
		if got, err := reply(time.Second); err == nil || isTimeout(err) {
			t.Fatalf("after CloseConns: got %q, %v; want the connection closed", got, err)
		}

		// Close stops the listener.
		p.Close()
		if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
			c.Close()
			t.Fatal("dial after Close: connected, want refused")
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}
