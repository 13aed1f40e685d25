package cli

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/retry"
)

// exampleYAML is the example of docs/configuration.md.
const exampleYAML = `
addr: "127.0.0.1:8080"
redis_url: "redis://127.0.0.1:6379/0"
workers: 16
retry: {max_attempts: 5, initial_interval: 500ms, multiplier: 2, randomization_factor: 0.5, max_interval: 1m, max_elapsed_time: 1h}
routes:
  - {event_type: user_created, forward: "http://127.0.0.1:9000/users", timeout: 5s, retry: {max_attempts: 3, initial_interval: 100ms}}
  - {event_type: "*", accept: true}
callback:
  timeout: 10s
  retry: {max_attempts: 8, initial_interval: 1s, max_interval: 5m}
  allow_private_networks: false
`

// writeConfig writes content to a YAML file in a fresh directory and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "boomerang.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mapEnv returns a getenv backed by m.
func mapEnv(m map[string]string) func(string) string {
	return func(key string) string { return m[key] }
}

func TestLoadConfigDefaults(t *testing.T) {
	got, err := loadConfig(nil, mapEnv(nil))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	// Nothing written: the engine's fields stay zero, for boomerang's
	// defaults (defined there, once).
	want := Config{Addr: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestLoadConfigExample(t *testing.T) {
	path := writeConfig(t, exampleYAML)
	c, err := loadConfig([]string{"--config", path}, mapEnv(nil))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if c.Engine.RedisURL != "redis://127.0.0.1:6379/0" || c.Engine.Workers != 16 {
		t.Errorf("got redis_url %q, workers %d; want redis://127.0.0.1:6379/0, 16", c.Engine.RedisURL, c.Engine.Workers)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("routes: got %d, want 2", len(c.Routes))
	}
	want0 := Route{
		EventType: "user_created",
		Forward:   "http://127.0.0.1:9000/users",
		Timeout:   5 * time.Second,
		Retry:     retry.Policy{MaxAttempts: 3, InitialInterval: 100 * time.Millisecond}, // the rest from retry
	}
	if !reflect.DeepEqual(c.Routes[0], want0) {
		t.Errorf("routes[0]: got %+v, want %+v", c.Routes[0], want0)
	}
	want1 := Route{EventType: "*", Accept: true}
	if !reflect.DeepEqual(c.Routes[1], want1) {
		t.Errorf("routes[1]: got %+v, want %+v", c.Routes[1], want1)
	}
	wantCallback := retry.Policy{MaxAttempts: 8, InitialInterval: time.Second, MaxInterval: 5 * time.Minute}
	if c.Engine.Callback.Retry != wantCallback {
		t.Errorf("callback.retry: got %+v, want %+v", c.Engine.Callback.Retry, wantCallback)
	}
}

// A route's policy is the top-level one with the route's fields replaced,
// and the top-level one is the defaults with its fields replaced.
func TestLoadConfigRouteInheritsTopLevelRetry(t *testing.T) {
	path := writeConfig(t, `
retry: {multiplier: 3, max_interval: 2m}
routes:
  - {event_type: a, accept: true, retry: {max_attempts: 2}}
callback:
  retry: {max_attempts: 4}
`)
	c, err := loadConfig([]string{"--config", path}, mapEnv(nil))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	want := retry.Policy{
		MaxAttempts:         2,
		InitialInterval:     retry.DefaultInitialInterval,
		Multiplier:          3,
		RandomizationFactor: retry.DefaultRandomizationFactor,
		MaxInterval:         2 * time.Minute,
		MaxElapsedTime:      retry.DefaultMaxElapsedTime,
	}
	if got := c.Routes[0].Retry.Or(c.Engine.Retry).WithDefaults(); got != want {
		t.Errorf("routes[0].retry: got %+v, want %+v", got, want)
	}
	if got := c.Engine.Callback.Retry.Or(callback.DefaultRetry); got.MaxAttempts != 4 || got.InitialInterval != time.Second || got.Multiplier != 2 {
		t.Errorf("callback.retry: got %+v, want max_attempts 4 over the callback defaults", got)
	}
}

// An explicit value means that value: randomization_factor 0 is no jitter
// and max_elapsed_time 0 no limit, as in backoff; the negative markers mean
// the same. They must survive resolution: retry.Policy's methods apply
// WithDefaults again, which would turn a zero back into the default.
func TestLoadConfigRetryNoneMarkers(t *testing.T) {
	for _, yaml := range []string{
		"retry: {randomization_factor: 0, max_elapsed_time: 0s}\n",
		"retry: {randomization_factor: -1, max_elapsed_time: -1s}\n",
	} {
		path := writeConfig(t, yaml)
		c, err := loadConfig([]string{"--config", path}, mapEnv(nil))
		if err != nil {
			t.Fatalf("%q: got error %v, want nil", yaml, err)
		}
		for range 20 {
			if got := c.Engine.Retry.Delay(1, 0); got != retry.DefaultInitialInterval {
				t.Fatalf("%q: Delay(1): got %s, want exactly %s (no randomization)", yaml, got, retry.DefaultInitialInterval)
			}
		}
		first := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, ok := c.Engine.Retry.Next(1, first, first.Add(48*time.Hour), 0); !ok {
			t.Errorf("%q: Next after 48h: got exhausted, want another attempt (no elapsed-time limit)", yaml)
		}
	}
}

// Every key is settable from the environment by one rule: BOOMERANG_ and
// the key's path in capitals, dots as underscores, the value read as YAML.
func TestLoadConfigEnvRule(t *testing.T) {
	file := writeConfig(t, "workers: 8\nauth: {api_keys: [file-key-0123456789]}\n")
	env := map[string]string{
		"BOOMERANG_WORKERS":                             "32",
		"BOOMERANG_LEASE":                               "45s",
		"BOOMERANG_REQUEST_TIMEOUT":                     "750ms",
		"BOOMERANG_LOG_FORMAT":                          "json",
		"BOOMERANG_CALLBACK_ALLOW_PRIVATE_NETWORKS":     "true",
		"BOOMERANG_CALLBACK_RETRY_MAX_ATTEMPTS":         "3",
		"BOOMERANG_CALLBACK_RETRY_RANDOMIZATION_FACTOR": "0",
		"BOOMERANG_AUTH_API_KEYS":                       "env-key-0123456789, other-key-0123456789",
		"BOOMERANG_AUTH_ADMIN_KEYS":                     "[admin-key-0123456789]",
		"BOOMERANG_CALLBACK_ALLOWED_PORTS":              "443, 8443",
		"BOOMERANG_ROUTES":                              `[{event_type: a, forward: "http://127.0.0.1:9/a"}, {event_type: "*", accept: true}]`,
		"BOOMERANG_TEST_SOMETHING":                      "not a key: ignored",
	}
	c, err := loadConfig([]string{"--config", file}, mapEnv(env))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	e := c.Engine
	if e.Workers != 32 || e.Lease != 45*time.Second || c.LogFormat != "json" || !e.Callback.AllowPrivateNetworks {
		t.Errorf("got workers %d, lease %s, log_format %s, allow_private %v; want 32, 45s, json, true", e.Workers, e.Lease, c.LogFormat, e.Callback.AllowPrivateNetworks)
	}
	if e.RequestTimeout != 750*time.Millisecond {
		t.Errorf("request_timeout: got %s, want 750ms", e.RequestTimeout)
	}
	if e.Callback.Retry.MaxAttempts != 3 || e.Callback.Retry.RandomizationFactor >= 0 {
		t.Errorf("callback.retry: got %+v, want max_attempts 3 and no randomization", e.Callback.Retry)
	}
	if got := strings.Join(e.Auth.APIKeys, ","); got != "env-key-0123456789,other-key-0123456789" {
		t.Errorf("auth.api_keys: got %s, want the environment's (it wins over the file)", got)
	}
	if got := e.Callback.AllowedPorts; len(got) != 2 || got[0] != 443 || got[1] != 8443 {
		t.Errorf("callback.allowed_ports: got %v, want [443 8443]", got)
	}
	if len(e.Auth.AdminKeys) != 1 || e.Auth.AdminKeys[0] != "admin-key-0123456789" {
		t.Errorf("auth.admin_keys: got %v", e.Auth.AdminKeys)
	}
	if len(c.Routes) != 2 || c.Routes[0].Forward != "http://127.0.0.1:9/a" || !c.Routes[1].Accept {
		t.Errorf("routes: got %+v", c.Routes)
	}

	for name, val := range map[string]string{
		"BOOMERANG_WORKERS":  "many",
		"BOOMERANG_LEASE":    "5",
		"BOOMERANG_ROUTES":   "[{event_type: a, acept: true}]",
		"BOOMERANG_API_KEYS": "renamed-key-0123456789",
	} {
		_, err := loadConfig(nil, mapEnv(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: got error %v, want one naming the variable", name, val, err)
		}
	}
}

func TestLoadConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "addr: file:1\nredis_url: redis://file\n")
	other := writeConfig(t, "addr: other:1\n")
	empty := writeConfig(t, "")
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantAddr  string
		wantRedis string
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", ""},
		{"empty file", []string{"--config", empty}, nil, "127.0.0.1:8080", ""},
		{"file", []string{"--config", file}, nil, "file:1", "redis://file"},
		{"config from env", nil, map[string]string{envConfig: file}, "file:1", "redis://file"},
		{"config flag over env", []string{"--config", other}, map[string]string{envConfig: file}, "other:1", ""},
		{"env over file", []string{"--config", file},
			map[string]string{"BOOMERANG_ADDR": "env:1", "BOOMERANG_REDIS_URL": "redis://env"}, "env:1", "redis://env"},
		{"flag over env", []string{"--config", file, "--addr", "flag:1", "--redis-url", "rediss://flag"},
			map[string]string{"BOOMERANG_ADDR": "env:1", "BOOMERANG_REDIS_URL": "redis://env"}, "flag:1", "rediss://flag"},
		{"empty flag over env", []string{"-redis-url="}, map[string]string{"BOOMERANG_REDIS_URL": "redis://env"}, "127.0.0.1:8080", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConfig(tc.args, mapEnv(tc.env))
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if c.Addr != tc.wantAddr {
				t.Errorf("addr: got %q, want %q", c.Addr, tc.wantAddr)
			}
			if c.Engine.RedisURL != tc.wantRedis {
				t.Errorf("redis_url: got %q, want %q", c.Engine.RedisURL, tc.wantRedis)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string   // written to a file passed with --config unless empty
		args []string // more arguments
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown field", "addr: x\nworkerz: 3\n", nil, nil, []string{"field workerz not found"}},
		{"unknown route field", "routes: [{event_type: a, accept: true, forwrad: x}]\n", nil, nil, []string{"field forwrad not found"}},
		{"bad duration", "lease: 5x\n", nil, nil, []string{"line 1: cannot unmarshal !!str `5x` into time.Duration"}},
		{"duration without unit", "routes: [{event_type: a, forward: 'http://h/', timeout: 5}]\n", nil, nil, []string{"cannot unmarshal !!int `5` into time.Duration"}},
		{"forward and accept", "routes: [{event_type: a, forward: 'http://h/', accept: true}]\n", nil, nil,
			[]string{"routes[0]: set exactly one of forward or accept"}},
		{"neither forward nor accept", "routes: [{event_type: a, accept: true}, {event_type: b}]\n", nil, nil,
			[]string{"routes[1]: set exactly one of forward or accept"}},
		{"relative forward", "routes: [{event_type: a, accept: true}, {event_type: b, forward: /users}]\n", nil, nil,
			[]string{"routes[1].forward: must be an absolute http or https URL"}},
		{"link-local forward", "routes: [{event_type: a, forward: 'http://169.254.169.254/latest'}]\n", nil, nil,
			[]string{"routes[0].forward: 169.254.169.254 is a link-local address"}},
		{"aws ipv6 metadata forward", "routes: [{event_type: a, forward: 'http://[fd00:ec2::254]/latest'}]\n", nil, nil,
			[]string{"routes[0].forward: fd00:ec2::254 is a cloud metadata address"}},
		{"non-canonical ipv4 forward", "routes: [{event_type: a, forward: 'http://127.1:8080/'}]\n", nil, nil,
			[]string{`routes[0].forward: host "127.1" is not a canonical IPv4 address`}},
		{"ftp forward", "routes: [{event_type: a, forward: 'ftp://h/x'}]\n", nil, nil,
			[]string{"routes[0].forward: must be an absolute http or https URL"}},
		{"forward without host", "routes: [{event_type: a, forward: 'http:///x'}]\n", nil, nil,
			[]string{"routes[0].forward: must be an absolute http or https URL"}},
		{"bad event type", "routes: [{event_type: a, accept: true}, {event_type: b, accept: true}, {event_type: 'user created', accept: true}]\n", nil, nil,
			[]string{"routes[2].event_type: has ' ' at byte 4"}},
		{"missing event type", "routes: [{accept: true}]\n", nil, nil, []string{"routes[0].event_type: is required"}},
		{"metrics apart but off", "metrics_addr: 127.0.0.1:9090\nmetrics_disabled: true\n", nil, nil,
			[]string{"metrics_addr: must be left out when metrics_disabled is true"}},
		{"metrics event types", "metrics_max_event_types: 20000\n", nil, nil,
			[]string{"metrics_max_event_types: must be between 1 and 10000, got 20000"}},
		{"two routes for one type", "routes: [{event_type: '*', accept: true}, {event_type: a, accept: true}, {event_type: a, accept: true}]\n", nil, nil,
			[]string{`routes[2].event_type: "a" has a route already, routes[1]`}},
		{"explicit workers 0", "workers: 0\n", nil, nil, []string{"workers: must not be 0; leave it out for the default"}},
		{"explicit empty key prefix", "key_prefix: ''\n", nil, nil, []string{"key_prefix: must not be empty; leave it out for the default"}},
		{"explicit lease 0", "lease: 0s\n", nil, nil, []string{"lease: must not be 0s; leave it out for the default"}},
		{"explicit request timeout 0", "request_timeout: 0s\n", nil, nil, []string{"request_timeout: must not be 0s; leave it out for the default"}},
		{"negative request timeout", "request_timeout: -1s\n", nil, nil, []string{"request_timeout: must be positive, got -1s"}},
		{"explicit backlog target 0", "backlog_target: 0\n", nil, nil, []string{"backlog_target: must be positive, or -1"}},
		{"bad log format", "log_format: xml\n", nil, nil, []string{`log_format: must be text or json, got "xml"`}},
		{"too many workers", "callback: {workers: 5000}\n", nil, nil, []string{"callback.workers: must be between 1 and 4096, got 5000"}},
		{"body too small", "max_body_bytes: 10\n", nil, nil, []string{"max_body_bytes: must be between 1024 and 67108864, got 10"}},
		{"short lease", "lease: 500ms\n", nil, nil, []string{"lease: must be at least 1s, got 500ms"}},
		{"bad key prefix", "key_prefix: 'a{b}'\n", nil, nil, []string{`key_prefix: must be 1 to 64 letters, digits or . _ : -, got "a{b}"`}},
		{"bad log level", "log_level: verbose\n", nil, nil, []string{`log_level: must be debug, info, warn or error, got "verbose"`}},
		{"explicit retry max_attempts 0", "retry: {max_attempts: 0}\n", nil, nil, []string{"retry.max_attempts: must not be 0; leave it out for the default"}},
		{"route retry multiplier", "routes: [{event_type: a, accept: true, retry: {multiplier: 0.5}}]\n", nil, nil,
			[]string{"routes[0].retry.multiplier: must be at least 1, got 0.5"}},
		{"callback retry", "callback: {retry: {randomization_factor: 2}}\n", nil, nil,
			[]string{"callback.retry.randomization_factor: must be at most 1, got 2"}},
		{"bad redis_url scheme in file", "redis_url: http://h:6379\n", nil, nil, []string{"redis_url: scheme must be redis, rediss, unix, redis+cluster"}},
		{"bad redis_url scheme in env", "", nil, map[string]string{"BOOMERANG_REDIS_URL": "localhost:6379"},
			[]string{"redis_url: scheme must be redis, rediss, unix, redis+cluster"}},
		{"bad redis_url scheme in flag", "", []string{"--redis-url", "tcp://h"}, nil,
			[]string{"redis_url: scheme must be redis, rediss, unix, redis+cluster"}},
		{"blank api key", "auth: {api_keys: ['                    ']}\n", nil, nil,
			[]string{"auth.api_keys[0]: must be at least 16 characters, without leading or trailing spaces"}},
		{"all problems at once", "workers: 0\nlog_level: loud\nroutes: [{event_type: a}]\n", nil, nil,
			[]string{"workers: must not be 0", "log_level: must be", "routes[0]: set exactly one"}},
		{"callback method", "callback: {method: PUT}\n", nil, nil, []string{`callback.method: must be GET or POST, got "PUT"`}},
		{"callback method lower case", "callback: {method: get}\n", nil, nil, []string{`callback.method: must be GET or POST, got "get"`}},
		{"callback format", "callback: {format: xml}\n", nil, nil, []string{`callback.format: must be json or cloudevents, got "xml"`}},
		{"callback GET with cloudevents", "callback: {method: GET, format: cloudevents}\n", nil, nil,
			[]string{"callback.format: cloudevents needs method POST: a GET callback has no body"}},
		{"callback method in env", "", nil, map[string]string{"BOOMERANG_CALLBACK_METHOD": "DELETE"}, []string{`callback.method: must be GET or POST, got "DELETE"`}},
		{"explicit empty callback method", "callback: {method: ''}\n", nil, nil, []string{"callback.method: must not be empty; leave it out for the default"}},
		{"cloudevents source", "callback: {cloudevents_source: 'two words'}\n", nil, nil, []string{"callback.cloudevents_source: must be a URI-reference"}},
		{"route callback method", "routes: [{event_type: a, accept: true}, {event_type: b, accept: true, callback: {method: post}}]\n", nil, nil,
			[]string{`routes[1].callback.method: must be GET or POST, got "post"`}},
		{"route callback format", "routes: [{event_type: a, accept: true, callback: {format: cloudevent}}]\n", nil, nil,
			[]string{`routes[0].callback.format: must be json or cloudevents, got "cloudevent"`}},
		{"route GET with cloudevents", "routes: [{event_type: a, accept: true, callback: {method: GET, format: cloudevents}}]\n", nil, nil,
			[]string{"routes[0].callback.format: cloudevents needs method POST"}},
		{"route callback other key", "routes: [{event_type: a, accept: true, callback: {timeout: 1s}}]\n", nil, nil,
			[]string{"field timeout not found"}},
		{"unknown flag", "", []string{"--verbose"}, nil, []string{"flag provided but not defined: -verbose"}},
		{"positional argument", "", []string{"serve"}, nil, []string{`unexpected argument "serve"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			var path string
			if tc.yaml != "" {
				path = writeConfig(t, tc.yaml)
				args = append([]string{"--config", path}, args...)
			}
			_, err := loadConfig(args, mapEnv(tc.env))
			if err == nil {
				t.Fatalf("got nil error, want one containing %q", tc.want)
			}
			msg := err.Error()
			if path != "" && !strings.HasPrefix(msg, "config "+path+": ") {
				t.Errorf("got error %q, want it to start with %q", msg, "config "+path+": ")
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got error %q, want it to contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := loadConfig(nil, mapEnv(map[string]string{envConfig: path}))
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	if want := "config " + path + ": "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got error %q, want it to start with %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("got error %v, want errors.Is fs.ErrNotExist", err)
	}
}

func TestLoadConfigRedisURLNotEchoed(t *testing.T) {
	_, err := loadConfig([]string{"--redis-url", "redis://:s3cret@h:badport"}, mapEnv(nil))
	if err == nil {
		t.Fatal("got nil error, want one")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("got error %q, want it not to contain the password", err)
	}
}

func TestLoadConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			_, err := loadConfig([]string{arg}, mapEnv(nil))
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("got error %v, want flag.ErrHelp", err)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var buf bytes.Buffer
	usage(&buf)
	for _, want := range []string{"-addr", "-redis-url", "-config", "-version", "BOOMERANG_ADDR", "BOOMERANG_REDIS_URL", envConfig, "BOOMERANG_CALLBACK_ALLOW_PRIVATE_NETWORKS", "docs/configuration.md"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("got usage %q, want it to contain %q", buf.String(), want)
		}
	}
}

func TestLoadConfigSecrets(t *testing.T) {
	good := "whsec_" + strings.Repeat("QUJD", 8)
	path := writeConfig(t, "callback: {signing_secrets: ["+good+"]}\nretention: 24h\n")
	env := map[string]string{"BOOMERANG_AUTH_ADMIN_KEYS": "admin-key-0123456789"}
	c, err := loadConfig([]string{"--config", path}, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Engine.Auth.AdminKeys) != 1 || len(c.Engine.Callback.SigningSecrets) != 1 || c.Engine.Retention != 24*time.Hour {
		t.Errorf("got admin %v, secrets %d, retention %s", c.Engine.Auth.AdminKeys, len(c.Engine.Callback.SigningSecrets), c.Engine.Retention)
	}

	bad := map[string]string{"BOOMERANG_AUTH_API_KEYS": "short", "BOOMERANG_CALLBACK_SIGNING_SECRETS": "whsec_not*base64*at*all*here"}
	_, err = loadConfig(nil, mapEnv(bad))
	if err == nil {
		t.Fatal("bad secrets: got no error")
	}
	for _, want := range []string{"auth.api_keys[0]: must be at least 16", "callback.signing_secrets[0]: must be"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	for _, secret := range []string{"short", "not*base64"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q repeats a secret", err)
		}
	}
}

// The full example of docs/configuration.md loads as written, so the
// document cannot drift from the loader.
func TestDocumentedExampleLoads(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "## Full example")
	if !ok {
		t.Fatal("docs/configuration.md has no \"## Full example\" section")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	yaml, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("the full example has no yaml block")
	}
	c, err := loadConfig([]string{"--config", writeConfig(t, yaml)}, mapEnv(nil))
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	if c.Engine.Flow.MaxInFlight != 16 || len(c.Engine.Destinations) != 1 || len(c.Routes) != 3 || c.Routes[1].Callback.Method != event.CallbackGET {
		t.Errorf("got flow %+v, %d destinations, routes %+v; want the example's", c.Engine.Flow, len(c.Engine.Destinations), c.Routes)
	}
}

// How callbacks are sent: the top level's callback.method, format and
// cloudevents_source (also from the environment), and each route's
// callback block, which names only what it changes.
func TestLoadConfigCallbackOptions(t *testing.T) {
	file := writeConfig(t, `
callback: {method: GET, cloudevents_source: /boomerang/eu-1}
routes:
  - {event_type: legacy, accept: true}
  - {event_type: modern, forward: "http://127.0.0.1:9/m", callback: {method: POST, format: cloudevents}}
  - {event_type: "*", accept: true, callback: {format: json}}
`)
	c, err := loadConfig([]string{"--config", file}, mapEnv(nil))
	if err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	cb := c.Engine.Callback
	if cb.Method != event.CallbackGET || cb.Format != "" || cb.CloudEventsSource != "/boomerang/eu-1" {
		t.Errorf("callback: got method %q, format %q, source %q; want GET, unset (json), /boomerang/eu-1", cb.Method, cb.Format, cb.CloudEventsSource)
	}
	want := []callback.Options{{}, {Method: event.CallbackPOST, Format: event.CallbackCloudEvents}, {Format: event.CallbackJSON}}
	if len(c.Routes) != len(want) {
		t.Fatalf("routes: got %d, want %d", len(c.Routes), len(want))
	}
	for i, r := range c.Routes {
		if r.Callback != want[i] {
			t.Errorf("routes[%d].callback: got %+v, want %+v", i, r.Callback, want[i])
		}
	}

	c, err = loadConfig(nil, mapEnv(map[string]string{"BOOMERANG_CALLBACK_METHOD": "POST", "BOOMERANG_CALLBACK_FORMAT": "cloudevents"}))
	if err != nil {
		t.Fatalf("from the environment: got error %v, want nil", err)
	}
	if cb := c.Engine.Callback; cb.Method != event.CallbackPOST || cb.Format != event.CallbackCloudEvents {
		t.Errorf("from the environment: got method %q, format %q; want POST, cloudevents", cb.Method, cb.Format)
	}
}
