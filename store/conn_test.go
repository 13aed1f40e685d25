package store

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/boomerang-events/boomerang/internal/redistest"
)

// TestOpen reads every form of URL Open takes, without contacting Redis:
// the kind of client, what it dials and with which credentials, database
// and TLS, and that the timeouts are the same on every kind.
func TestOpen(t *testing.T) {
	type want struct {
		kind             Kind
		addrs            []string // what the Conn reports
		dial             []string // what the client dials (sentinels for Sentinel)
		user, password   string   // the data nodes'
		sentinelPassword string
		master           string
		db               int
		tls, skipVerify  bool
		poolSize         int
	}
	tests := []struct {
		name, url string
		want      want
	}{
		{"single", "redis://127.0.0.1:6379/3", want{kind: KindSingle, addrs: []string{"127.0.0.1:6379"},
			dial: []string{"127.0.0.1:6379"}, db: 3}},
		{"single tls auth", "rediss://u:s3cret@redis.example:6380/0", want{kind: KindSingle,
			addrs: []string{"redis.example:6380"}, dial: []string{"redis.example:6380"}, user: "u", password: "s3cret", tls: true}},
		{"unix", "unix:///run/redis.sock?db=2", want{kind: KindSingle, addrs: []string{"/run/redis.sock"},
			dial: []string{"/run/redis.sock"}, db: 2}},
		{"cluster", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002", want{kind: KindCluster,
			addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
			dial:  []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}}},
		{"cluster one seed default port", "redis+cluster://node-a", want{kind: KindCluster,
			addrs: []string{"node-a:6379"}, dial: []string{"node-a:6379"}}},
		{"cluster tls auth options", "rediss+cluster://u:s3cret@a:7000,[::1]:7001/0?pool_size=7&skip_verify=true",
			want{kind: KindCluster, addrs: []string{"a:7000", "[::1]:7001"}, dial: []string{"a:7000", "[::1]:7001"},
				user: "u", password: "s3cret", tls: true, skipVerify: true, poolSize: 7}},
		{"cluster password only escaped", "redis+cluster://:p%40ss%2Fw@a:7000,b:7000", want{kind: KindCluster,
			addrs: []string{"a:7000", "b:7000"}, dial: []string{"a:7000", "b:7000"}, password: "p@ss/w"}},
		{"sentinel", "redis+sentinel://s1:26379,s2:26380/mymaster", want{kind: KindSentinel,
			addrs: []string{"s1:26379", "s2:26380"}, dial: []string{"s1:26379", "s2:26380"}, master: "mymaster"}},
		{"sentinel db default port", "redis+sentinel://s1,s2/mymaster/5", want{kind: KindSentinel,
			addrs: []string{"s1:26379", "s2:26379"}, dial: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 5}},
		{"sentinel tls auth", "rediss+sentinel://u:s3cret@s1:26379/mymaster/1?sentinel_password=sp&pool_size=3",
			want{kind: KindSentinel, addrs: []string{"s1:26379"}, dial: []string{"s1:26379"}, user: "u",
				password: "s3cret", sentinelPassword: "sp", master: "mymaster", db: 1, tls: true, poolSize: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(tt.url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			if c.Kind != tt.want.kind || !reflect.DeepEqual(c.Addrs, tt.want.addrs) || c.TLS != tt.want.tls ||
				c.MasterName != tt.want.master || c.Embedded {
				t.Errorf("got kind %s, addrs %v, tls %v, master %q, embedded %v; want %s, %v, %v, %q, false",
					c.Kind, c.Addrs, c.TLS, c.MasterName, c.Embedded, tt.want.kind, tt.want.addrs, tt.want.tls, tt.want.master)
			}
			var got want
			got.kind, got.addrs, got.master = c.Kind, c.Addrs, c.MasterName
			var timeouts [3]time.Duration
			var ctxTimeout, noIdentity bool
			switch tt.want.kind {
			case KindSingle:
				o := c.UniversalClient.(*redis.Client).Options()
				got.dial, got.user, got.password, got.db = []string{o.Addr}, o.Username, o.Password, o.DB
				got.tls, got.poolSize = o.TLSConfig != nil, tt.want.poolSize
				timeouts = [3]time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout}
				ctxTimeout, noIdentity = o.ContextTimeoutEnabled, o.DisableIdentity
			case KindCluster:
				o, _, err := clusterOptions(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				got.dial, got.user, got.password = o.Addrs, o.Username, o.Password
				got.tls, got.poolSize = o.TLSConfig != nil, o.PoolSize
				got.skipVerify = got.tls && o.TLSConfig.InsecureSkipVerify
				timeouts = [3]time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout}
				ctxTimeout, noIdentity = o.ContextTimeoutEnabled, o.DisableIdentity
				if _, ok := c.UniversalClient.(*redis.ClusterClient); !ok {
					t.Errorf("got a %T, want a *redis.ClusterClient", c.UniversalClient)
				}
			case KindSentinel:
				o, _, err := failoverOptions(tt.url)
				if err != nil {
					t.Fatal(err)
				}
				got.dial, got.user, got.password, got.db = o.SentinelAddrs, o.Username, o.Password, o.DB
				got.sentinelPassword, got.master = o.SentinelPassword, o.MasterName
				got.tls, got.poolSize = o.TLSConfig != nil, o.PoolSize
				got.skipVerify = got.tls && o.TLSConfig.InsecureSkipVerify
				timeouts = [3]time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout}
				ctxTimeout, noIdentity = o.ContextTimeoutEnabled, o.DisableIdentity
				if _, ok := c.UniversalClient.(*redis.Client); !ok {
					t.Errorf("got a %T, want a *redis.Client (failover)", c.UniversalClient)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v,\nwant %+v", got, tt.want)
			}
			if want := [3]time.Duration{dialTimeout, ioTimeout, ioTimeout}; timeouts != want || !ctxTimeout || !noIdentity {
				t.Errorf("got timeouts %v, ContextTimeoutEnabled %v, DisableIdentity %v; want %v, true, true",
					timeouts, ctxTimeout, noIdentity, want)
			}
		})
	}
}

func TestOpenEmbedded(t *testing.T) {
	c, err := Open("")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Embedded || c.Kind != KindEmbedded || len(c.Addrs) != 1 {
		t.Errorf("got embedded %v, kind %s, addrs %v; want true, embedded, one address", c.Embedded, c.Kind, c.Addrs)
	}
	if o := c.UniversalClient.(*redis.Client).Options(); !o.ContextTimeoutEnabled || o.ReadTimeout != ioTimeout {
		t.Errorf("got ContextTimeoutEnabled %v, ReadTimeout %v; want true, %v", o.ContextTimeoutEnabled, o.ReadTimeout, ioTimeout)
	}
}

// TestOpenErrors checks that bad URLs are refused with a reason, and that
// the reason never holds the password.
func TestOpenErrors(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"no scheme", "127.0.0.1:6379", "no scheme"},
		{"unknown scheme", "http://s3cret@h", "invalid URL scheme"},
		{"single bad port", "redis://:s3cret@h:badport", "cannot parse"},
		{"single bad escape", "redis://u:s3cr%zzet@h", "cannot parse"},
		{"cluster empty host", "redis+cluster://u:s3cret@a:7000,,b:7000", "address 2 of the host list: empty"},
		{"cluster bad port", "redis+cluster://u:s3cret@a:7000,b:x", "address 2 of the host list: invalid port"},
		{"cluster port range", "redis+cluster://a:70000", "invalid port"},
		{"cluster slash in password", "redis+cluster://u:s3c/ret@a:7000", "address 1 of the host list"},
		{"cluster db", "redis+cluster://:s3cret@a:7000/2", "only database 0"},
		{"cluster unknown option", "redis+cluster://:s3cret@a:7000?nope=1", "unexpected option: nope"},
		{"cluster addr option", "redis+cluster://a:7000?addr=b:7000", "not as addr options"},
		{"cluster bad duration", "redis+cluster://:s3cret@a:7000?dial_timeout=s3cret", "dial_timeout"},
		{"cluster skip_verify", "rediss+cluster://a:7000?skip_verify=maybe", "skip_verify"},
		{"sentinel no master", "redis+sentinel://:s3cret@s1:26379", "/master-name"},
		{"sentinel bad db", "redis+sentinel://:s3cret@s1:26379/m/x", "invalid database number"},
		{"sentinel too deep", "redis+sentinel://s1/m/1/2", "/master-name"},
		{"sentinel master option", "redis+sentinel://s1/m?master_name=n", "master's name is the path"},
		{"sentinel fragment", "redis+sentinel://:s3cret@s1/m#x", "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(tt.url)
			if err == nil {
				c.Close()
				t.Fatalf("Open: got nil error, want one containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "store: redis url: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("got error %q, want it to start with \"store: redis url: \" and contain %q", msg, tt.want)
			}
			for _, secret := range []string{"s3cret", "s3cr", "cret", "s3c/ret"} {
				if strings.Contains(msg, secret) {
					t.Errorf("got error %q, want it not to contain the password", msg)
				}
			}
		})
	}
}

// TestOpenSentinel opens a redis+sentinel:// URL on a real sentinel: the
// client finds the master through it and writes in the URL's database.
func TestOpenSentinel(t *testing.T) {
	srv := redistest.StartServer(t)
	master := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	sentinel := redistest.StartSentinel(t, "boomerang-test", master)
	c, err := Open("redis+sentinel://" + sentinel + "/boomerang-test/3")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "sentinel-key", "v", 0).Err(); err != nil {
		t.Fatalf("SET through the sentinel: %v", err)
	}
	direct := redis.NewClient(&redis.Options{Addr: master, DB: 3, DisableIdentity: true})
	defer direct.Close()
	if got, err := direct.Get(ctx, "sentinel-key").Result(); got != "v" || err != nil {
		t.Errorf("GET on the master's db 3: got %q, %v; want v", got, err)
	}
}
