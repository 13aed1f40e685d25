package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Kind is the kind of Redis deployment a Conn talks to.
type Kind string

// The kinds of Conn, by the scheme of the URL Open was given.
const (
	KindEmbedded Kind = "embedded" // "": an in-memory miniredis
	KindSingle   Kind = "single"   // redis://, rediss://, unix://
	KindCluster  Kind = "cluster"  // redis+cluster://, rediss+cluster://
	KindSentinel Kind = "sentinel" // redis+sentinel://, rediss+sentinel://
)

// Conn is a Redis client opened by Open, with the embedded server it may
// have started.
type Conn struct {
	redis.UniversalClient
	// Embedded is true when Open started an in-memory Redis, whose data is
	// lost when Close stops it.
	Embedded bool
	// Kind is what the URL named: a single node, a cluster or a Sentinel
	// group.
	Kind Kind
	// Addrs are the addresses the URL named, without credentials: the node
	// (or socket) of a single node, the seeds of a cluster, the sentinels
	// of a Sentinel group. For logs.
	Addrs []string
	// MasterName is the Sentinel master's name; "" for other kinds.
	MasterName string
	// TLS is true when the client speaks TLS.
	TLS bool

	mini *miniredis.Miniredis
}

// Timeouts of the clients Open makes: short, so that an unreachable or
// stalled Redis turns into an error (and a 503) quickly instead of a hung
// request. They bound calls whose context has no deadline (the workers'
// claims and renewals); a context's earlier deadline wins, as Open enables
// go-redis' ContextTimeoutEnabled.
const (
	dialTimeout = 2 * time.Second
	ioTimeout   = 3 * time.Second
)

// Default ports of the addresses of a cluster or Sentinel URL that name
// none.
const (
	defaultRedisPort    = "6379"
	defaultSentinelPort = "26379"
)

// Open connects to the Redis at url. An empty url starts an embedded
// in-memory Redis (miniredis) on a loopback port, for development and
// tests. Open does not contact Redis; use Redis.Ping for that. The forms:
//
//	redis://[[user]:password@]host[:port][/db][?options]      a single node
//	rediss://...                                               the same over TLS
//	unix://[[user]:password@]/path/to/socket[?db=N]            a single node's socket
//	redis+cluster://[[user]:password@]host:port[,host:port...][?options]
//	rediss+cluster://...                                       a Redis Cluster, over TLS
//	redis+sentinel://[[user]:password@]host:port[,host:port...]/master[/db][?options]
//	rediss+sentinel://...                                      a Sentinel group, over TLS
//
// A single node's URL is read by go-redis' ParseURL, a cluster's by
// ParseClusterURL and a Sentinel group's by ParseFailoverURL, so their
// options are go-redis' (pool_size=20, max_retries=5, ...). A cluster URL
// lists seed nodes (port 6379 when left out): any one that answers is
// enough to discover the others; a cluster only has database 0. A Sentinel
// URL lists sentinels (port 26379 when left out) and the master's name;
// its user and password are the master's and replicas' (as for the other
// kinds), while the sentinels' own, if they require one, are the options
// sentinel_username and sentinel_password. Over TLS, every node's
// certificate is checked against the host it is dialled at (skip_verify=true
// turns the check off).
//
// Whatever the kind, the client honours its callers' context deadlines on
// the socket (go-redis' ContextTimeoutEnabled); a call without one is
// bounded by a 3s read or write timeout per attempt, and a dial by 2s.
// Errors never quote the URL's password.
func Open(url string) (*Conn, error) {
	if url == "" {
		mini, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("store: start embedded redis: %w", err)
		}
		opts := &redis.Options{Addr: mini.Addr()}
		setTimeouts(opts)
		return &Conn{UniversalClient: redis.NewClient(opts), Embedded: true, Kind: KindEmbedded,
			Addrs: []string{mini.Addr()}, mini: mini}, nil
	}
	c, err := open(url)
	if err != nil {
		// The URL may hold a password: do not repeat it.
		return nil, errors.New("store: redis url: " + redact(err, url))
	}
	return c, nil
}

// open makes the client of a non-empty url.
func open(rawURL string) (*Conn, error) {
	scheme, _, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("no scheme (want redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://)")
	}
	switch strings.ToLower(scheme) {
	case "redis+cluster", "rediss+cluster":
		return openCluster(rawURL)
	case "redis+sentinel", "rediss+sentinel":
		return openSentinel(rawURL)
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	setTimeouts(opts)
	return &Conn{UniversalClient: redis.NewClient(opts), Kind: KindSingle, Addrs: []string{opts.Addr},
		TLS: opts.TLSConfig != nil}, nil
}

// setTimeouts gives the options of a single node (or of the nodes of a
// cluster or Sentinel group, which take theirs from the same fields) the
// timeouts and context handling every client of Open has.
func setTimeouts(opts *redis.Options) {
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	// Without it go-redis gives the socket context.Background(): a
	// caller's deadline then only bounds the wait for a connection and the
	// pauses between retries, and a Redis that accepts a command and never
	// answers holds the call for ReadTimeout on each of its attempts
	// (requests of the API took up to about 24s). With it every read and
	// write ends at the earlier of ReadTimeout and the context's deadline,
	// and no retry starts after that deadline.
	opts.ContextTimeoutEnabled = true
	opts.DisableIdentity = true // one command less per connection
}

func openCluster(rawURL string) (*Conn, error) {
	opts, u, err := clusterOptions(rawURL)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClusterClient(opts)
	rdb.AddHook(reloadOnFailure{rdb})
	return &Conn{UniversalClient: rdb, Kind: KindCluster, Addrs: u.hosts, TLS: u.tls}, nil
}

// clusterReloadInterval is how old go-redis lets its copy of a cluster's
// slot map get before it reads it again, when nothing went wrong (a MOVED
// reply, or a failure seen by reloadOnFailure, has it read at once).
// go-redis' default is 60s.
const clusterReloadInterval = 10 * time.Second

// reloadOnFailure is a hook of a cluster client that has it read the
// cluster's slot map again (CLUSTER SLOTS, coalesced by go-redis) when a
// command or pipeline fails on the network or with CLUSTERDOWN. Without it
// go-redis keeps dialling a master that died, and finds its promoted
// replica only at its next periodic reload: up to a minute of errors after
// a failover that took Redis two or three seconds.
type reloadOnFailure struct{ rdb *redis.ClusterClient }

func (h reloadOnFailure) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnFailure) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnFailure) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.check(ctx, err)
		return err
	}
}

func (h reloadOnFailure) check(ctx context.Context, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, redis.Nil) {
		return
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.HasPrefix(err.Error(), "CLUSTERDOWN") {
		h.rdb.ReloadState(ctx)
	}
}

// clusterOptions reads a redis+cluster:// or rediss+cluster:// URL.
func clusterOptions(rawURL string) (*redis.ClusterOptions, *multiHostURL, error) {
	u, err := parseMultiHost(rawURL, defaultRedisPort)
	if err != nil {
		return nil, nil, err
	}
	if p := strings.Trim(u.path, "/"); p != "" && p != "0" {
		return nil, nil, errors.New("a cluster has only database 0: drop the path")
	}
	skipVerify, err := u.takeBool("skip_verify")
	if err != nil {
		return nil, nil, err
	}
	opts, err := redis.ParseClusterURL(u.goRedisURL(""))
	if err != nil {
		return nil, nil, err
	}
	opts.Username, opts.Password = u.username, u.password
	opts.TLSConfig = u.tlsConfig(skipVerify)
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	opts.ContextTimeoutEnabled = true // see setTimeouts
	opts.DisableIdentity = true
	opts.ClusterStateReloadInterval = clusterReloadInterval
	return opts, u, nil
}

func openSentinel(rawURL string) (*Conn, error) {
	opts, u, err := failoverOptions(rawURL)
	if err != nil {
		return nil, err
	}
	return &Conn{UniversalClient: redis.NewFailoverClient(opts), Kind: KindSentinel, Addrs: u.hosts,
		MasterName: opts.MasterName, TLS: u.tls}, nil
}

// failoverOptions reads a redis+sentinel:// or rediss+sentinel:// URL.
func failoverOptions(rawURL string) (*redis.FailoverOptions, *multiHostURL, error) {
	u, err := parseMultiHost(rawURL, defaultSentinelPort)
	if err != nil {
		return nil, nil, err
	}
	parts := strings.Split(strings.Trim(u.path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return nil, nil, errors.New("a sentinel URL's path is /master-name or /master-name/db")
	}
	master, err := url.PathUnescape(parts[0])
	if err != nil {
		return nil, nil, errors.New("invalid master name")
	}
	db := "0"
	if len(parts) == 2 {
		if n, err := strconv.Atoi(parts[1]); err != nil || n < 0 {
			return nil, nil, errors.New("invalid database number")
		}
		db = parts[1]
	}
	skipVerify, err := u.takeBool("skip_verify")
	if err != nil {
		return nil, nil, err
	}
	sentinelUser, sentinelPassword := u.take("sentinel_username"), u.take("sentinel_password")
	if u.query.Has("master_name") {
		return nil, nil, errors.New("the master's name is the path, not an option")
	}
	u.query.Set("master_name", master)
	opts, err := redis.ParseFailoverURL(u.goRedisURL("/" + db))
	if err != nil {
		return nil, nil, err
	}
	// ParseFailoverURL takes the URL's user for the sentinels'; ours is the
	// master's, as for the other kinds.
	opts.SentinelUsername, opts.SentinelPassword = sentinelUser, sentinelPassword
	if u.username != "" || u.password != "" {
		opts.Username, opts.Password = u.username, u.password
	}
	opts.TLSConfig = u.tlsConfig(skipVerify)
	opts.DialTimeout = dialTimeout
	opts.ReadTimeout = ioTimeout
	opts.WriteTimeout = ioTimeout
	opts.ContextTimeoutEnabled = true // see setTimeouts
	opts.DisableIdentity = true
	return opts, u, nil
}

// multiHostURL is a cluster or Sentinel URL taken apart:
// scheme://[user:password@]host:port,host:port[/path][?query].
type multiHostURL struct {
	tls                bool
	username, password string
	hosts              []string // host:port, with the default port where none was given
	path               string   // as written, still escaped
	query              url.Values
}

// parseMultiHost takes apart a URL with a list of hosts, which net/url
// cannot read, giving port to the hosts that name none.
func parseMultiHost(rawURL, port string) (*multiHostURL, error) {
	scheme, rest, _ := strings.Cut(rawURL, "://")
	u := &multiHostURL{tls: strings.HasPrefix(strings.ToLower(scheme), "rediss")}
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		return nil, errors.New("unexpected fragment (#...)")
	}
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	hostList := authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		hostList = authority[i+1:]
		// Read the user information as net/url does, on a URL of one
		// placeholder host.
		ui, err := url.Parse("redis://" + authority[:i+1] + "h")
		if err != nil || ui.User == nil {
			return nil, errors.New("invalid user or password (special characters must be percent-encoded)")
		}
		u.username = ui.User.Username()
		u.password, _ = ui.User.Password()
	}
	for i, h := range strings.Split(hostList, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			// Not quoted: with an unescaped / in the password, what is
			// read as an address may be a piece of it.
			return nil, fmt.Errorf("address %d of the host list: %w", i+1, err)
		}
		u.hosts = append(u.hosts, addr)
	}
	path, rawQuery, _ := strings.Cut(tail, "?")
	u.path = path
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errors.New("invalid query")
	}
	if q.Has("addr") {
		return nil, errors.New("list the addresses in the host part (host1:port1,host2:port2), not as addr options")
	}
	u.query = q
	return u, nil
}

// hostPort checks one address of a host list and adds port when it has
// none.
func hostPort(h, port string) (string, error) {
	if h == "" {
		return "", errors.New("empty")
	}
	host, p := h, port
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") { // an IPv6 literal without port
		host = h[1 : len(h)-1]
	} else if strings.Contains(h, ":") {
		var err error
		if host, p, err = net.SplitHostPort(h); err != nil {
			return "", errors.New("not host:port")
		}
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", errors.New("invalid port")
	}
	if host == "" || strings.ContainsAny(host, "[]/ ") {
		return "", errors.New("invalid host")
	}
	return net.JoinHostPort(host, p), nil
}

// take removes option name from the query and returns its value.
func (u *multiHostURL) take(name string) string {
	v := u.query.Get(name)
	u.query.Del(name)
	return v
}

// takeBool removes the boolean option name from the query and returns it.
func (u *multiHostURL) takeBool(name string) (bool, error) {
	v := u.take(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("option %s: want true or false", name)
	}
	return b, nil
}

// goRedisURL is the URL go-redis' parsers read: the first host, the others
// as addr options, the given path and the remaining options, and no
// credentials (they are set on the options, so that go-redis' errors cannot
// hold them).
func (u *multiHostURL) goRedisURL(path string) string {
	q := url.Values{}
	for k, v := range u.query {
		q[k] = v
	}
	for _, h := range u.hosts[1:] {
		q.Add("addr", h)
	}
	return "redis://" + u.hosts[0] + path + "?" + q.Encode()
}

// tlsConfig is nil without TLS. Its ServerName is left empty, so that each
// connection checks the certificate against the host it dials: the nodes of
// a cluster and the master behind sentinels have names of their own.
func (u *multiHostURL) tlsConfig(skipVerify bool) *tls.Config {
	if !u.tls {
		return nil
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
}

// redact gives err's message for a log or an answer without the password
// of rawURL, and short: net/url's errors quote the whole URL.
func redact(err error, rawURL string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if _, rest, ok := strings.Cut(rawURL, "://"); ok {
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			userinfo := rest[:i]
			if _, pw, ok := strings.Cut(userinfo, ":"); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
				if dec, err := url.PathUnescape(pw); err == nil && dec != "" {
					msg = strings.ReplaceAll(msg, dec, "xxxxx")
				}
			}
		}
	}
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return "cannot parse it (" + msg + ")"
}

// Close closes the client and stops the embedded Redis, if any.
func (c *Conn) Close() error {
	err := c.UniversalClient.Close()
	if c.mini != nil {
		c.mini.Close()
	}
	return err
}
