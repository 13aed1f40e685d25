package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/boomerang-events/boomerang/store"
)

// Environment variables read by loadConfig besides the one rule (envKey):
// BOOMERANG_CONFIG names the file, which has no key of its own.
const (
	envPrefix = "BOOMERANG_"
	envConfig = envPrefix + "CONFIG"
)

// renamedEnv maps the variables of earlier versions, which no longer
// follow the rule, to their names now. Setting one is an error rather than
// silently ignored: an API key left unread would open the API.
var renamedEnv = map[string]string{
	"BOOMERANG_API_KEYS":        envKey("auth.api_keys"),
	"BOOMERANG_ADMIN_KEYS":      envKey("auth.admin_keys"),
	"BOOMERANG_SIGNING_SECRETS": envKey("callback.signing_secrets"),
}

// Defaults of what only the binary has; the engine's are boomerang's.
const (
	defaultAddr     = "127.0.0.1:8080"
	defaultLogLevel = "info"
)

// Config is the server's configuration, resolved from a YAML file, the
// environment and flags (later wins). docs/configuration.md describes every
// key; a key left out takes its default.
type Config struct {
	Addr      string  // addr: listen address; default "127.0.0.1:8080"
	LogLevel  string  // log_level: debug, info, warn or error; default info
	LogFormat string  // log_format: text or json; default text
	DebugAddr string  // debug_addr: where to serve /debug/pprof; default "" = off; keep it on loopback
	Routes    []Route // routes: the logic of each event type; none means every event type is accepted
	// MetricsAddr (metrics_addr) is where to serve /metrics, without API
	// keys, instead of on addr (behind them); default "" = on addr.
	MetricsAddr string
	// Engine is every other key, as boomerang.Config; zero fields take
	// boomerang's defaults.
	Engine boomerang.Config
}

// Route is the business logic of the events of one type ("*": every type
// without a route of its own). Exactly one of Forward and Accept is set.
type Route struct {
	EventType string        // event_type: required
	Forward   string        // forward: absolute http or https URL the event is POSTed to
	Accept    bool          // accept: succeed without doing anything
	Timeout   time.Duration // timeout: of one forward request; default boomerang.DefaultForwardTimeout
	Retry     retry.Policy  // retry: the top-level retry with the fields named here replaced
	// Callback (callback: {method, format}) is how the callbacks of the
	// route's events are sent unless the event says; a key left out takes
	// the top-level callback's.
	Callback callback.Options
}

// loadConfig resolves the configuration. args are the command-line arguments
// after the program name; getenv looks up environment variables (os.Getenv in
// production, a map in tests). -h or --help returns flag.ErrHelp, so the
// caller can print usage; --version returns errVersion, so it can print the
// version.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	flags := newFlagSet()
	if err := flags.Parse(args); err != nil {
		return Config{}, err
	}
	if flags.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	if v := flags.Lookup("version"); v.Value.String() == "true" {
		return Config{}, errVersion
	}
	given := map[string]string{} // flags given on the command line, by name
	flags.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })

	var f fileConfig
	path := getenv(envConfig)
	if v, ok := given["config"]; ok {
		path = v
	}
	if path != "" {
		if err := f.load(path); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for old, now := range renamedEnv {
		if getenv(old) != "" {
			return Config{}, fmt.Errorf("%s is now %s: rename it (it would be ignored)", old, now)
		}
	}
	if err := overlayEnv(&f, getenv); err != nil {
		return Config{}, err
	}
	if v, ok := given["addr"]; ok {
		f.Addr = &v
	}
	if v, ok := given["redis-url"]; ok {
		f.RedisURL = &v
	}
	c, err := f.resolve()
	if err != nil {
		if path != "" {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		return Config{}, err
	}
	return c, nil
}

// newFlagSet defines the command-line flags. It writes nothing: loadConfig
// returns errors and usage prints the help.
func newFlagSet() *flag.FlagSet {
	flags := flag.NewFlagSet("boomerang", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.String("addr", defaultAddr, "listen address (env "+envKey("addr")+")")
	flags.String("redis-url", "", "Redis URL: redis://, rediss://, unix://, redis+cluster://h1:p1,h2:p2 or redis+sentinel://h1:p1,h2:p2/master; empty for an embedded in-memory Redis (env "+envKey("redis_url")+")")
	flags.String("config", "", "path of a YAML configuration file (env "+envConfig+")")
	flags.Bool("version", false, "print the version, and the commit and commit time it was built from, and exit")
	return flags
}

// usage prints the flags, the environment rule and where the YAML file is
// documented.
func usage(w io.Writer) {
	flags := newFlagSet()
	flags.SetOutput(w)
	fmt.Fprintln(w, "Usage: boomerang [flags]            run the server")
	fmt.Fprintln(w, "       boomerang COMMAND [flags]    talk to a running server's API:")
	fmt.Fprintln(w, "  stats | events ls [--status S] [--type T] [--limit N] | events show ID")
	fmt.Fprintln(w, "  dead-letters ls [--type T] | dead-letters retry|redeliver (--all [--type T] | --ids a,b)")
	fmt.Fprintln(w, "  callbacks redeliver ID")
	fmt.Fprintln(w, "  with --server URL (default "+defaultServer+"), --key KEY (default $"+envAPIKey+"), --json")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	flags.PrintDefaults()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Environment: every key of the configuration file can be set as")
	fmt.Fprintln(w, "BOOMERANG_ and its path in capitals, dots as underscores, the value read")
	fmt.Fprintln(w, "as YAML (lists of strings also comma-separated):")
	fmt.Fprintf(w, "  %-45s workers: 32\n", "BOOMERANG_WORKERS=32")
	fmt.Fprintf(w, "  %-45s callback.allow_private_networks: true\n", "BOOMERANG_CALLBACK_ALLOW_PRIVATE_NETWORKS=true")
	fmt.Fprintf(w, "  %-45s auth.api_keys: [k1, k2]\n", "BOOMERANG_AUTH_API_KEYS=k1,k2")
	fmt.Fprintf(w, "  %-45s the configuration file (same as -config)\n", envConfig)
	fmt.Fprintln(w, "A flag wins over its variable; the environment wins over the file.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The YAML configuration file is described in docs/configuration.md.")
}

// fileConfig is the configuration as written: in the YAML file, and in the
// environment by the rule of envKey. Pointer fields tell a value written,
// zero included, from one left out.
type fileConfig struct {
	Addr            *string        `yaml:"addr"`
	RedisURL        *string        `yaml:"redis_url"`
	KeyPrefix       *string        `yaml:"key_prefix"`
	Partitions      *int           `yaml:"partitions"`
	WaitReplicas    *int           `yaml:"wait_replicas"`
	WaitTimeout     *time.Duration `yaml:"wait_timeout"`
	Workers         *int           `yaml:"workers"`
	MaxBodyBytes    *int64         `yaml:"max_body_bytes"`
	MaxBatchEvents  *int           `yaml:"max_batch_events"`
	MaxBatchBytes   *int64         `yaml:"max_batch_bytes"`
	MaxWaiters      *int           `yaml:"max_waiters"`
	IngestTimeout   *time.Duration `yaml:"ingest_timeout"`
	RequestTimeout  *time.Duration `yaml:"request_timeout"`
	Lease           *time.Duration `yaml:"lease"`
	PollInterval    *time.Duration `yaml:"poll_interval"`
	ShutdownTimeout *time.Duration `yaml:"shutdown_timeout"`
	LogLevel        *string        `yaml:"log_level"`
	LogFormat       *string        `yaml:"log_format"`
	Retry           fileRetry      `yaml:"retry"`
	Routes          []fileRoute    `yaml:"routes"`
	Callback        fileCallback   `yaml:"callback"`
	Retention       *time.Duration `yaml:"retention"`
	DebugAddr       *string        `yaml:"debug_addr"`
	MetricsAddr     *string        `yaml:"metrics_addr"`
	MetricsDisabled *bool          `yaml:"metrics_disabled"`
	MetricsMaxTypes *int           `yaml:"metrics_max_event_types"`
	BacklogTarget   *int           `yaml:"backlog_target"`
	Auth            fileAuth       `yaml:"auth"`
	Flow            fileFlow       `yaml:"flow"`
	Destinations    []fileDest     `yaml:"destinations"`
}

// fileCallback is the callback block.
type fileCallback struct {
	Timeout              *time.Duration        `yaml:"timeout"`
	Workers              *int                  `yaml:"workers"`
	Retry                fileRetry             `yaml:"retry"`
	AllowPrivateNetworks *bool                 `yaml:"allow_private_networks"`
	AllowedPorts         []uint16              `yaml:"allowed_ports"`
	SigningSecrets       []string              `yaml:"signing_secrets"`
	Method               *event.CallbackMethod `yaml:"method"`
	Format               *event.CallbackFormat `yaml:"format"`
	CloudEventsSource    *string               `yaml:"cloudevents_source"`
}

// fileFlow is a flow block: flow, or a destination's limits. A key left
// out takes the default (or, for a destination, flow's);
// an explicit 0 turns the limit off.
type fileFlow struct {
	MaxInFlight      *int           `yaml:"max_in_flight"`
	Rate             *float64       `yaml:"rate"`
	Burst            *int           `yaml:"burst"`
	FailureThreshold *int           `yaml:"failure_threshold"`
	ErrorRate        *float64       `yaml:"error_rate"`
	MinRequests      *int           `yaml:"min_requests"`
	Window           *time.Duration `yaml:"window"`
	Cooldown         *time.Duration `yaml:"cooldown"`
}

// fileDest is one entry of destinations.
type fileDest struct {
	URL      string `yaml:"url"`
	fileFlow `yaml:",inline"`
}

// limits returns the limits f writes: zero fields for keys left out, and
// the "off" marker -1 for an explicit 0.
func (f fileFlow) limits() store.Limits {
	var l store.Limits
	setOff(&l.MaxInFlight, f.MaxInFlight)
	setOff(&l.Rate, f.Rate)
	setOff(&l.Burst, f.Burst)
	setOff(&l.FailureThreshold, f.FailureThreshold)
	setOff(&l.ErrorRate, f.ErrorRate)
	setOff(&l.MinRequests, f.MinRequests)
	setOff(&l.Window, f.Window)
	setOff(&l.Cooldown, f.Cooldown)
	return l
}

// setOff stores *v in *dst when v is not nil, an explicit 0 as -1.
func setOff[T int | float64 | time.Duration](dst *T, v *T) {
	if v == nil {
		return
	}
	*dst = *v
	if *v == 0 {
		*dst = -1
	}
}

// fileAuth is the auth block.
type fileAuth struct {
	APIKeys   []string `yaml:"api_keys"`
	AdminKeys []string `yaml:"admin_keys"`
}

// fileRoute is one entry of routes.
type fileRoute struct {
	EventType string         `yaml:"event_type"`
	Forward   string         `yaml:"forward"`
	Accept    bool           `yaml:"accept"`
	Timeout   *time.Duration `yaml:"timeout"`
	Retry     fileRetry      `yaml:"retry"`
	// Callback is the route's callback block: method and format only,
	// the rest is the server's.
	Callback struct {
		Method event.CallbackMethod `yaml:"method"`
		Format event.CallbackFormat `yaml:"format"`
	} `yaml:"callback"`
}

// fileRetry is a retry block: the fields it names replace those of the
// policy it refines.
type fileRetry struct {
	MaxAttempts         *int           `yaml:"max_attempts"`
	InitialInterval     *time.Duration `yaml:"initial_interval"`
	Multiplier          *float64       `yaml:"multiplier"`
	RandomizationFactor *float64       `yaml:"randomization_factor"`
	MaxInterval         *time.Duration `yaml:"max_interval"`
	MaxElapsedTime      *time.Duration `yaml:"max_elapsed_time"`
}

// load reads the YAML file at path into f. Unknown keys are errors.
func (f *fileConfig) load(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the path
		}
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return err
	}
	return nil
}

// envKey is the environment variable of a configuration key: BOOMERANG_ and
// the key's path in capitals with dots as underscores, so
// callback.allow_private_networks is BOOMERANG_CALLBACK_ALLOW_PRIVATE_NETWORKS.
func envKey(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// overlayEnv sets every key of f whose environment variable (envKey) is set
// and not empty, reading the value as YAML for the key's type; a list of
// strings may also be comma-separated. Errors name the variable.
func overlayEnv(f *fileConfig, getenv func(string) string) error {
	var errs []error
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		t := v.Type()
		for i := range t.NumField() {
			key := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if path != "" {
				key = path + "." + key
			}
			field := v.Field(i)
			if field.Kind() == reflect.Struct {
				walk(field, key)
				continue
			}
			name := envKey(key)
			raw := getenv(name)
			if raw == "" {
				continue
			}
			if err := setFromEnv(field, raw); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	walk(reflect.ValueOf(f).Elem(), "")
	return errors.Join(errs...)
}

// setFromEnv sets field (a pointer or a slice) from an environment value.
// A list not written as a YAML flow sequence is comma-separated; strings
// are then taken as they are, not read as YAML (a key may hold any
// character).
func setFromEnv(field reflect.Value, raw string) error {
	if field.Kind() == reflect.Slice && !strings.HasPrefix(strings.TrimSpace(raw), "[") {
		if field.Type() == reflect.TypeFor[[]string]() {
			field.Set(reflect.ValueOf(splitList(raw)))
			return nil
		}
		raw = "[" + raw + "]"
	}
	ptr := reflect.New(field.Type())
	dec := yaml.NewDecoder(strings.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(ptr.Interface()); err != nil {
		return err
	}
	field.Set(ptr.Elem())
	return nil
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

// resolve turns what was written into a Config and checks it: every error
// names the key at fault, and all of them are reported at once.
func (f fileConfig) resolve() (Config, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, explicitZeros(reflect.ValueOf(f), "")...)

	c := Config{Addr: defaultAddr, LogLevel: defaultLogLevel, LogFormat: "text"}
	set(&c.Addr, f.Addr)
	set(&c.LogLevel, f.LogLevel)
	set(&c.LogFormat, f.LogFormat)
	set(&c.DebugAddr, f.DebugAddr)
	set(&c.MetricsAddr, f.MetricsAddr)
	e := &c.Engine
	set(&e.RedisURL, f.RedisURL)
	set(&e.KeyPrefix, f.KeyPrefix)
	set(&e.Partitions, f.Partitions)
	set(&e.WaitReplicas, f.WaitReplicas)
	set(&e.WaitTimeout, f.WaitTimeout)
	set(&e.Workers, f.Workers)
	set(&e.MaxBodyBytes, f.MaxBodyBytes)
	set(&e.MaxBatchEvents, f.MaxBatchEvents)
	set(&e.MaxBatchBytes, f.MaxBatchBytes)
	set(&e.MaxWaiters, f.MaxWaiters)
	set(&e.IngestTimeout, f.IngestTimeout)
	set(&e.RequestTimeout, f.RequestTimeout)
	set(&e.Lease, f.Lease)
	set(&e.PollInterval, f.PollInterval)
	set(&e.ShutdownTimeout, f.ShutdownTimeout)
	set(&e.Retention, f.Retention)
	set(&e.BacklogTarget, f.BacklogTarget)
	set(&e.DisableMetrics, f.MetricsDisabled)
	set(&e.MetricsMaxEventTypes, f.MetricsMaxTypes)
	e.SeparateMetrics = c.MetricsAddr != ""
	e.Retry = f.Retry.policy()
	set(&e.Callback.Timeout, f.Callback.Timeout)
	set(&e.Callback.Workers, f.Callback.Workers)
	set(&e.Callback.AllowPrivateNetworks, f.Callback.AllowPrivateNetworks)
	e.Callback.AllowedPorts = f.Callback.AllowedPorts
	e.Flow = f.Flow.limits()
	for i, d := range f.Destinations {
		if e.Destinations == nil {
			e.Destinations = map[string]store.Limits{}
		}
		if _, dup := e.Destinations[d.URL]; dup || d.URL == "" {
			add("destinations[%d].url: must be a URL of a destination not listed before", i)
			continue
		}
		e.Destinations[d.URL] = d.limits()
	}
	e.Callback.Retry = f.Callback.Retry.policy()
	e.Callback.SigningSecrets = f.Callback.SigningSecrets
	set(&e.Callback.Method, f.Callback.Method)
	set(&e.Callback.Format, f.Callback.Format)
	set(&e.Callback.CloudEventsSource, f.Callback.CloudEventsSource)
	e.Auth.APIKeys, e.Auth.AdminKeys = f.Auth.APIKeys, f.Auth.AdminKeys

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level: must be debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log_format: must be text or json, got %q", c.LogFormat)
	}
	if c.MetricsAddr != "" && e.DisableMetrics {
		add("metrics_addr: must be left out when metrics_disabled is true")
	}
	if f.BacklogTarget != nil && *f.BacklogTarget == 0 {
		add("backlog_target: must be positive, or -1 to never slow ingest, got 0")
	}

	seen := map[string]int{} // event type to the index of its route
	for i, r := range f.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		route := Route{EventType: r.EventType, Forward: r.Forward, Accept: r.Accept, Retry: r.Retry.policy(),
			Callback: callback.Options{Method: r.Callback.Method, Format: r.Callback.Format}}
		set(&route.Timeout, r.Timeout)
		if r.EventType != boomerang.Wildcard {
			if err := event.ValidateEventType(r.EventType); err != nil {
				add("%s.%w", p, err) // err names event_type
			}
		}
		if j, ok := seen[r.EventType]; ok && r.EventType != "" {
			add("%s.event_type: %q has a route already, routes[%d]", p, r.EventType, j)
		}
		seen[r.EventType] = i
		switch {
		case (r.Forward != "") == r.Accept:
			add("%s: set exactly one of forward or accept", p)
		case r.Forward != "" && !validForward(r.Forward):
			add("%s.forward: must be an absolute http or https URL", p)
		case r.Forward != "":
			if err := boomerang.CheckForwardURL(r.Forward); err != nil {
				add("%s.forward: %w", p, err)
			}
		}
		errs = append(errs, route.Retry.Or(e.Retry).Problems(p+".retry")...)
		if err := route.Callback.Check(); err != nil {
			add("%s.%w", p, err) // err names callback.method or callback.format
		}
		c.Routes = append(c.Routes, route)
	}
	if err := c.Engine.Validate(); err != nil { // the engine's own ranges
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// policy returns the policy r writes. Its zero fields take the policy it
// refines; an explicit 0 means what backoff means by it: no randomization,
// no limit on the elapsed time (the policy's negative markers).
func (r fileRetry) policy() retry.Policy {
	var p retry.Policy
	set(&p.MaxAttempts, r.MaxAttempts)
	set(&p.InitialInterval, r.InitialInterval)
	set(&p.Multiplier, r.Multiplier)
	set(&p.RandomizationFactor, r.RandomizationFactor)
	set(&p.MaxInterval, r.MaxInterval)
	set(&p.MaxElapsedTime, r.MaxElapsedTime)
	if r.RandomizationFactor != nil && *r.RandomizationFactor == 0 {
		p.RandomizationFactor = -1
	}
	if r.MaxElapsedTime != nil && *r.MaxElapsedTime == 0 {
		p.MaxElapsedTime = -1
	}
	return p
}

// zeroMeansSomething lists the keys whose explicit zero is a value of its
// own: everywhere else, boomerang.Config reads a zero as "the default", so
// an explicit 0 or "" is refused rather than silently replaced.
var zeroMeansSomething = map[string]bool{
	"redis_url":            true, // the embedded Redis
	"debug_addr":           true, // off
	"metrics_addr":         true, // on addr
	"randomization_factor": true, // no randomization
	"max_elapsed_time":     true, // no limit
	"backlog_target":       true, // reported by resolve with its own message
	"wait_replicas":        true, // no wait
	// flow: 0 turns a limit off
	"max_in_flight": true, "rate": true, "burst": true, "failure_threshold": true,
	"error_rate": true, "min_requests": true, "window": true, "cooldown": true,
}

// explicitZeros reports the keys written with a zero value that would read
// as "the default". Routes are checked by resolve.
func explicitZeros(v reflect.Value, path string) []error {
	var errs []error
	t := v.Type()
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		key := name
		if path != "" {
			key = path + "." + name
		}
		field := v.Field(i)
		switch field.Kind() {
		case reflect.Struct:
			errs = append(errs, explicitZeros(field, key)...)
		case reflect.Pointer:
			if field.IsNil() || !field.Elem().IsZero() || field.Elem().Kind() == reflect.Bool || zeroMeansSomething[name] {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: must not be %s; leave it out for the default", key, zeroText(field.Elem())))
		}
	}
	return errs
}

func zeroText(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return "empty"
	case reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			return "0s"
		}
	}
	return "0"
}

// set stores *v in *dst when v is not nil.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// validForward reports whether s is an absolute http or https URL with a host.
func validForward(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Hostname() != ""
}
