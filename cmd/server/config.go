package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/retry"
)

// Environment variables read by loadConfig; a flag wins over its variable.
const (
	envAddr     = "BOOMERANG_ADDR"
	envRedisURL = "BOOMERANG_REDIS_URL"
	envConfig   = "BOOMERANG_CONFIG"
	// Secrets, comma-separated, added to those of the file; keeping them
	// in the environment keeps them out of the file.
	envAPIKeys        = "BOOMERANG_API_KEYS"
	envAdminKeys      = "BOOMERANG_ADMIN_KEYS"
	envSigningSecrets = "BOOMERANG_SIGNING_SECRETS"
)

// Bounds checked by Config.validate.
const (
	maxWorkers      = 4096
	minMaxBodyBytes = 1 << 10
	maxMaxBodyBytes = 64 << 20
	maxKeyPrefixLen = 64
)

// Config is the server's configuration, resolved from defaults, a YAML file,
// environment variables and flags (later wins). docs/configuration.md
// describes the file; each field names its YAML key and default.
type Config struct {
	Addr            string         // addr: listen address; default "127.0.0.1:8080"
	RedisURL        string         // redis_url: redis://, rediss:// or unix://; default "" = embedded in-memory Redis for development
	KeyPrefix       string         // key_prefix: prefix of every Redis key; default "boomerang"; 1-64 letters, digits, . _ : -
	Workers         int            // workers: events processed at once (and most events claimed in one go); default 64; 1..4096
	MaxBodyBytes    int64          // max_body_bytes: largest accepted request body; default 1 MiB; 1 KiB..64 MiB
	Lease           time.Duration  // lease: how long a claimed event stays claimed; default 30s; at least 1s
	ShutdownTimeout time.Duration  // shutdown_timeout: how long shutdown drains in-flight work; default 15s
	LogLevel        string         // log_level: debug, info, warn or error; default info
	Retry           retry.Policy   // retry: default policy for events; fields not named take retry's defaults
	Routes          []Route        // routes: first match wins; none configured means every event type is accepted (the caller handles an empty list)
	Callback        CallbackConfig // callback: delivery of callbacks
	BacklogTarget   int            // backlog_target: due events and callbacks past which ingest slows down (20µs per event of excess, at most 250ms); default 1000; -1 = never
	DebugAddr       string         // debug_addr: where to serve /debug/pprof (profiling); default "" = off; keep it on loopback
	Retention       time.Duration  // retention: how long settled events (and their ids, callbacks, dead letters) are kept; default 168h; at least 1m
	Auth            AuthConfig     // auth: API keys
}

// AuthConfig holds the API keys. With none, the API is open.
type AuthConfig struct {
	APIKeys   []string // api_keys (and BOOMERANG_API_KEYS): keys every endpoint but /healthz, /readyz and POST /callback requires
	AdminKeys []string // admin_keys (and BOOMERANG_ADMIN_KEYS): keys the operator actions require instead, when set
}

// Route chooses the business logic for events whose type matches EventType
// ("*" matches every type). First match wins. Exactly one of Forward and
// Accept is set.
type Route struct {
	EventType string        // event_type: required; "*" or a valid event type
	Forward   string        // forward: absolute http or https URL the event is POSTed to
	Accept    bool          // accept: succeed without doing anything
	Timeout   time.Duration // timeout: of one forward request; default 10s; ignored by accept routes
	Retry     retry.Policy  // retry: Config.Retry with only the fields the route names replaced
}

// CallbackConfig configures the delivery of callbacks.
type CallbackConfig struct {
	Timeout              time.Duration // timeout: of one delivery; default 10s
	Workers              int           // workers: deliveries at once; default 64; 1..4096
	Retry                retry.Policy  // retry: default max_attempts 8, initial_interval 1s, max_interval 5m, the rest retry's defaults
	AllowPrivateNetworks bool          // allow_private_networks: allow callbacks to private addresses; default false
	SigningSecrets       []string      // signing_secrets (and BOOMERANG_SIGNING_SECRETS): whsec_ secrets; each adds a Standard Webhooks signature
}

// defaultConfig returns the configuration used when nothing else is given.
// Its retry policies hold concrete values, so that a zero left after a file
// is merged in can only have been written there.
func defaultConfig() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		KeyPrefix:       "boomerang",
		Workers:         64,
		MaxBodyBytes:    1 << 20,
		Lease:           30 * time.Second,
		ShutdownTimeout: 15 * time.Second,
		LogLevel:        "info",
		Retention:       7 * 24 * time.Hour,
		BacklogTarget:   1000,
		Retry:           retry.Policy{}.WithDefaults(),
		Callback: CallbackConfig{
			Timeout: 10 * time.Second,
			Workers: 64,
			Retry: retry.Policy{
				MaxAttempts:     8,
				InitialInterval: time.Second,
				MaxInterval:     5 * time.Minute,
			}.WithDefaults(),
		},
	}
}

// defaultRouteTimeout is a Route's Timeout when the file names none.
const defaultRouteTimeout = 10 * time.Second

// loadConfig resolves the configuration. args are the command-line arguments
// after the program name; getenv looks up environment variables (os.Getenv in
// production, a map in tests). -h or --help returns flag.ErrHelp, so the
// caller can print usage.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	flags := newFlagSet()
	if err := flags.Parse(args); err != nil {
		return Config{}, err
	}
	if flags.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	given := map[string]string{} // flags given on the command line, by name
	flags.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })

	c := defaultConfig()
	var errs []error

	path := getenv(envConfig)
	if v, ok := given["config"]; ok {
		path = v
	}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			errs = append(errs, fmt.Errorf("config %s: %w", path, err))
		}
	}

	if v := getenv(envAddr); v != "" {
		c.Addr = v
	}
	if v, ok := given["addr"]; ok {
		c.Addr = v
	}
	redisFrom := "" // where a RedisURL not from the file came from
	if v := getenv(envRedisURL); v != "" {
		c.RedisURL, redisFrom = v, envRedisURL
	}
	if v, ok := given["redis-url"]; ok {
		c.RedisURL, redisFrom = v, "--redis-url"
	}
	if redisFrom != "" {
		if err := checkRedisURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", redisFrom, err))
		}
	}
	c.Auth.APIKeys = append(c.Auth.APIKeys, splitList(getenv(envAPIKeys))...)
	c.Auth.AdminKeys = append(c.Auth.AdminKeys, splitList(getenv(envAdminKeys))...)
	c.Callback.SigningSecrets = append(c.Callback.SigningSecrets, splitList(getenv(envSigningSecrets))...)
	if err := checkSecrets(c); err != nil {
		errs = append(errs, err)
	}

	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// newFlagSet defines the command-line flags. It writes nothing: loadConfig
// returns errors and usage prints the help.
func newFlagSet() *flag.FlagSet {
	flags := flag.NewFlagSet("boomerang", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.String("addr", defaultConfig().Addr, "listen address (env "+envAddr+")")
	flags.String("redis-url", "", "Redis URL: redis://, rediss:// or unix://; empty for an embedded in-memory Redis (env "+envRedisURL+")")
	flags.String("config", "", "path of a YAML configuration file (env "+envConfig+")")
	return flags
}

// usage prints the flags, the environment variables and where the YAML file
// is documented.
func usage(w io.Writer) {
	flags := newFlagSet()
	flags.SetOutput(w)
	fmt.Fprintln(w, "Usage: boomerang [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	flags.PrintDefaults()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment (a flag wins over its variable, both win over the file):")
	fmt.Fprintf(w, "  %-26s same as -addr\n", envAddr)
	fmt.Fprintf(w, "  %-26s same as -redis-url\n", envRedisURL)
	fmt.Fprintf(w, "  %-26s same as -config\n", envConfig)
	fmt.Fprintf(w, "  %-26s API keys, comma-separated, added to auth.api_keys\n", envAPIKeys)
	fmt.Fprintf(w, "  %-26s admin keys, comma-separated, added to auth.admin_keys\n", envAdminKeys)
	fmt.Fprintf(w, "  %-26s whsec_ secrets, comma-separated, added to callback.signing_secrets\n", envSigningSecrets)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The YAML configuration file is described in docs/configuration.md.")
}

// loadFile merges the YAML file at path into c and validates the result.
// Errors name the YAML path of the field, not the file.
func (c *Config) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the path
		}
		return err
	}
	var f fileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return err
	}
	f.applyTo(c)
	return c.validate()
}

// fileConfig is the YAML file. Pointer fields tell a value written in the
// file, zero included, from one left out.
type fileConfig struct {
	Addr            *string        `yaml:"addr"`
	RedisURL        *string        `yaml:"redis_url"`
	KeyPrefix       *string        `yaml:"key_prefix"`
	Workers         *int           `yaml:"workers"`
	MaxBodyBytes    *int64         `yaml:"max_body_bytes"`
	Lease           *time.Duration `yaml:"lease"`
	ShutdownTimeout *time.Duration `yaml:"shutdown_timeout"`
	LogLevel        *string        `yaml:"log_level"`
	Retry           fileRetry      `yaml:"retry"`
	Routes          []fileRoute    `yaml:"routes"`
	Callback        fileCallback   `yaml:"callback"`
	Retention       *time.Duration `yaml:"retention"`
	DebugAddr       *string        `yaml:"debug_addr"`
	BacklogTarget   *int           `yaml:"backlog_target"`
	Auth            struct {
		APIKeys   []string `yaml:"api_keys"`
		AdminKeys []string `yaml:"admin_keys"`
	} `yaml:"auth"`
}

// fileCallback is the file's callback block.
type fileCallback struct {
	Timeout              *time.Duration `yaml:"timeout"`
	Workers              *int           `yaml:"workers"`
	Retry                fileRetry      `yaml:"retry"`
	AllowPrivateNetworks *bool          `yaml:"allow_private_networks"`
	SigningSecrets       []string       `yaml:"signing_secrets"`
}

// fileRoute is one entry of the file's routes.
type fileRoute struct {
	EventType string         `yaml:"event_type"`
	Forward   string         `yaml:"forward"`
	Accept    bool           `yaml:"accept"`
	Timeout   *time.Duration `yaml:"timeout"`
	Retry     fileRetry      `yaml:"retry"`
}

// fileRetry is a retry block of the file: the fields it names replace those
// of the policy it refines.
type fileRetry struct {
	MaxAttempts         *int           `yaml:"max_attempts"`
	InitialInterval     *time.Duration `yaml:"initial_interval"`
	Multiplier          *float64       `yaml:"multiplier"`
	RandomizationFactor *float64       `yaml:"randomization_factor"`
	MaxInterval         *time.Duration `yaml:"max_interval"`
	MaxElapsedTime      *time.Duration `yaml:"max_elapsed_time"`
}

// over returns base with the fields r names replaced.
func (r fileRetry) over(base retry.Policy) retry.Policy {
	set(&base.MaxAttempts, r.MaxAttempts)
	set(&base.InitialInterval, r.InitialInterval)
	set(&base.Multiplier, r.Multiplier)
	set(&base.RandomizationFactor, r.RandomizationFactor)
	set(&base.MaxInterval, r.MaxInterval)
	set(&base.MaxElapsedTime, r.MaxElapsedTime)
	return base
}

// set stores *v in *dst when v is not nil.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// applyTo replaces in c every setting the file names. Route policies refine
// c's event policy after the file's retry block is applied to it.
func (f fileConfig) applyTo(c *Config) {
	set(&c.Addr, f.Addr)
	set(&c.RedisURL, f.RedisURL)
	set(&c.KeyPrefix, f.KeyPrefix)
	set(&c.Workers, f.Workers)
	set(&c.MaxBodyBytes, f.MaxBodyBytes)
	set(&c.Lease, f.Lease)
	set(&c.ShutdownTimeout, f.ShutdownTimeout)
	set(&c.LogLevel, f.LogLevel)
	c.Retry = f.Retry.over(c.Retry)
	for _, r := range f.Routes {
		route := Route{
			EventType: r.EventType,
			Forward:   r.Forward,
			Accept:    r.Accept,
			Timeout:   defaultRouteTimeout,
			Retry:     r.Retry.over(c.Retry),
		}
		set(&route.Timeout, r.Timeout)
		c.Routes = append(c.Routes, route)
	}
	set(&c.Callback.Timeout, f.Callback.Timeout)
	set(&c.Callback.Workers, f.Callback.Workers)
	c.Callback.Retry = f.Callback.Retry.over(c.Callback.Retry)
	set(&c.Callback.AllowPrivateNetworks, f.Callback.AllowPrivateNetworks)
	c.Callback.SigningSecrets = f.Callback.SigningSecrets
	set(&c.Retention, f.Retention)
	set(&c.DebugAddr, f.DebugAddr)
	set(&c.BacklogTarget, f.BacklogTarget)
	c.Auth.APIKeys, c.Auth.AdminKeys = f.Auth.APIKeys, f.Auth.AdminKeys
}

// validate reports every setting of c that is out of range, each error
// naming the setting's YAML path.
func (c Config) validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := checkRedisURL(c.RedisURL); err != nil {
		add("redis_url: %w", err)
	}
	if !validKeyPrefix(c.KeyPrefix) {
		add("key_prefix: must be 1 to %d letters, digits or . _ : -, got %q", maxKeyPrefixLen, c.KeyPrefix)
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		add("workers: must be between 1 and %d, got %d", maxWorkers, c.Workers)
	}
	if c.MaxBodyBytes < minMaxBodyBytes || c.MaxBodyBytes > maxMaxBodyBytes {
		add("max_body_bytes: must be between %d and %d, got %d", minMaxBodyBytes, maxMaxBodyBytes, c.MaxBodyBytes)
	}
	if c.Lease < time.Second {
		add("lease: must be at least 1s, got %s", c.Lease)
	}
	if c.BacklogTarget < -1 || c.BacklogTarget == 0 {
		add("backlog_target: must be positive, or -1 to never slow ingest, got %d", c.BacklogTarget)
	}
	if c.Retention < time.Minute {
		add("retention: must be at least 1m, got %s", c.Retention)
	}
	if c.ShutdownTimeout <= 0 {
		add("shutdown_timeout: must be positive, got %s", c.ShutdownTimeout)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level: must be debug, info, warn or error, got %q", c.LogLevel)
	}
	retryErrs := policyErrors("retry", c.Retry)
	errs = append(errs, retryErrs...)

	first := map[string]int{} // event type to the index of the first route for it
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.EventType != "*" {
			if err := event.ValidateEventType(r.EventType); err != nil {
				add("%s.%w", p, err) // err names event_type
			}
		}
		if j, ok := first["*"]; ok {
			add("%s.event_type: never matches: routes[%d] matches every type first", p, j)
		} else if j, ok := first[r.EventType]; ok {
			add("%s.event_type: never matches: routes[%d] matches %q first", p, j, r.EventType)
		} else {
			first[r.EventType] = i
		}
		switch {
		case (r.Forward != "") == r.Accept:
			add("%s: set exactly one of forward or accept", p)
		case r.Forward != "" && !validForward(r.Forward):
			add("%s.forward: must be an absolute http or https URL", p)
		case r.Forward != "":
			// Forward targets are the operator's own services, often on a
			// private network; link-local and metadata addresses are not.
			if err := forwardPolicy.CheckURL(r.Forward); err != nil {
				add("%s.forward: %s", p, strings.TrimPrefix(err.Error(), "outbound: "))
			}
		}
		if r.Forward != "" && r.Timeout <= 0 {
			add("%s.timeout: must be positive, got %s", p, r.Timeout)
		}
		// A route inherits the fields it does not name from retry: report
		// those once, there, rather than again for every route.
		if len(retryErrs) == 0 {
			errs = append(errs, policyErrors(p+".retry", r.Retry)...)
		}
	}

	if c.Callback.Timeout <= 0 {
		add("callback.timeout: must be positive, got %s", c.Callback.Timeout)
	}
	if c.Callback.Workers < 1 || c.Callback.Workers > maxWorkers {
		add("callback.workers: must be between 1 and %d, got %d", maxWorkers, c.Callback.Workers)
	}
	errs = append(errs, policyErrors("callback.retry", c.Callback.Retry)...)
	return errors.Join(errs...)
}

// policyErrors reports what is wrong with p, each error naming the field
// under path. p refines a policy with concrete values, so a zero field was
// written in the file; retry.Policy would read it as "use the default", so it
// is refused rather than silently replaced.
func policyErrors(path string, p retry.Policy) []error {
	var errs []error
	zero := func(field, msg string) { errs = append(errs, fmt.Errorf("%s.%s: %s", path, field, msg)) }
	if p.MaxAttempts == 0 {
		zero("max_attempts", "must be at least 1, got 0")
	}
	if p.InitialInterval == 0 {
		zero("initial_interval", "must be positive, got 0s")
	}
	if p.Multiplier == 0 {
		zero("multiplier", "must be at least 1, got 0")
	}
	if p.RandomizationFactor == 0 {
		zero("randomization_factor", "0 would mean the default 0.5; use -1 for no randomization")
	}
	if p.MaxInterval == 0 {
		zero("max_interval", "must be positive, got 0s")
	}
	if p.MaxElapsedTime == 0 {
		zero("max_elapsed_time", "0 would mean the default 1h; use -1s for no limit")
	}
	err := p.Validate()
	if joined, ok := err.(interface{ Unwrap() []error }); ok { // Validate uses errors.Join
		for _, e := range joined.Unwrap() {
			errs = append(errs, fmt.Errorf("%s.%w", path, e))
		}
	} else if err != nil {
		errs = append(errs, fmt.Errorf("%s.%w", path, err))
	}
	return errs
}

// checkRedisURL accepts an empty URL (the embedded Redis) or one with a
// scheme go-redis understands. Errors do not quote the URL: it may hold a
// password.
func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error quotes the whole URL
		}
		return fmt.Errorf("not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		return nil
	}
	return errors.New("scheme must be redis, rediss or unix")
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// checkSecrets checks keys and signing secrets wherever they came from.
// Errors name a secret by its position, never by its value.
func checkSecrets(c Config) error {
	var errs []error
	for name, keys := range map[string][]string{"auth.api_keys": c.Auth.APIKeys, "auth.admin_keys": c.Auth.AdminKeys} {
		for i, k := range keys {
			if len(k) < 16 {
				errs = append(errs, fmt.Errorf("%s[%d]: must be at least 16 characters", name, i))
			}
		}
	}
	for i, sec := range c.Callback.SigningSecrets {
		if err := callback.CheckSigningSecret(sec); err != nil {
			errs = append(errs, fmt.Errorf("callback.signing_secrets[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// forwardPolicy is the address policy of forward targets.
var forwardPolicy = outbound.Policy{AllowPrivate: true}

// validForward reports whether s is an absolute http or https URL with a host.
func validForward(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}

// validKeyPrefix reports whether s is 1 to 64 ASCII letters, digits, '.', '_',
// ':' or '-'.
func validKeyPrefix(s string) bool {
	if s == "" || len(s) > maxKeyPrefixLen {
		return false
	}
	for _, r := range s {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._:-", r)
		if !ok {
			return false
		}
	}
	return true
}
