package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// runCLI runs an operator command in-process and returns its exit code,
// output and error output.
func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errw bytes.Buffer
	code := command(context.Background(), args, mapEnv(env), &out, &errw)
	return code, out.String(), errw.String()
}

// The operator commands list, show, retry and redeliver through a running
// server's API, print tables or the API's JSON, and exit non-zero with a
// one-line message on errors.
func TestOperatorCommands(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		const admin = "admin-key-0123456789"
		// The first attempt of each "bad" event is refused for good; any
		// later one (a retry) gets a 500 and waits a minute to retry, so a
		// retried event stays in flight for the rest of the test.
		target := fakes.NewTarget(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusInternalServerError)
		})
		rcv := fakes.NewReceiver(t)
		slow := fast
		slow.InitialInterval, slow.MaxInterval, slow.MaxElapsedTime = time.Minute, time.Minute, time.Hour

		cfg := testConfig(b)
		cfg.Engine.Auth = boomerang.AuthConfig{AdminKeys: []string{admin}}
		cfg.Routes = []Route{{EventType: "ok", Accept: true}, {EventType: "bad", Forward: target.URL, Retry: slow}}
		base, _ := startServer(t, cfg)
		// One after the other, so that b2 fails after b1 (events of
		// different partitions run in no set order) and lists after it.
		for _, ev := range []struct{ id, body string }{
			{"e-ok", eventJSON("e-ok", "ok", rcv)}, {"b1", eventJSON("b1", "bad", nil)}, {"b2", eventJSON("b2", "bad", nil)},
		} {
			if code, ans := post(t, base, ev.body); code != http.StatusAccepted {
				t.Fatalf("POST /event: got %d %v, want 202", code, ans)
			}
			waitDone(t, base, ev.id, 10*time.Second)
		}
		env := map[string]string{}
		adminEnv := map[string]string{envAPIKey: admin}

		tests := []struct {
			name     string
			env      map[string]string
			args     []string
			wantCode int
			want     []string // lines, or parts of the output, in order
			wantErr  string
		}{
			{"events ls", env, []string{"events", "ls"}, 0,
				[]string{"ID    TYPE  STATUS     ATTEMPTS  CALLBACK", "b2    bad   failed     1         none", "e-ok  ok    succeeded  1         delivered"}, ""},
			{"events ls by status", env, []string{"events", "ls", "--status", "succeeded"}, 0, []string{"e-ok"}, ""},
			{"events ls by type", env, []string{"events", "ls", "--type", "bad", "--limit", "1"}, 0, []string{"b2"}, ""},
			{"events show", env, []string{"events", "show", "b1"}, 0,
				[]string{"id:", "b1", "status:", "failed", "ATTEMPT", "OUTCOME", "failed"}, ""},
			{"events show unknown", env, []string{"events", "show", "nope"}, 1, nil, `GET /events/nope: 404 Not Found: no event with id "nope"`},
			{"dead-letters ls", env, []string{"dead-letters", "ls", "--type", "bad"}, 0,
				[]string{"ID  TYPE  KIND   FAILED", "b2  bad   event", "b1  bad   event"}, ""},
			{"events ls of nothing as json", env, []string{"events", "ls", "--type", "nothing", "--json"}, 0,
				[]string{`"events": []`}, ""},
			{"dead-letters ls by kind", env, []string{"dead-letters", "ls", "--kind", "event"}, 0,
				[]string{"ID  TYPE  KIND   FAILED", "b2  bad   event", "b1  bad   event"}, ""},
			{"dead-letters ls bad kind", env, []string{"dead-letters", "ls", "--kind", "both"}, 2, nil, `--kind must be event or callback, not "both"`},
			{"retry all of another kind", adminEnv, []string{"dead-letters", "retry", "--all", "--type", "bad", "--kind", "callback"}, 0,
				[]string{"0       0               0        0"}, ""},
			{"kind with ids", adminEnv, []string{"dead-letters", "retry", "--ids", "b1", "--kind", "event"}, 2, nil, "--type and --kind go with --all"},
			{"events ls since", env, []string{"events", "ls", "--since", "1h"}, 0, []string{"b2", "b1", "e-ok"}, ""},
			{"events ls bad since", env, []string{"events", "ls", "--since", "yesterday"}, 2, nil, "invalid value \"yesterday\" for flag -since"},
			{"retry without key", env, []string{"dead-letters", "retry", "--ids", "b1"}, 1, nil,
				"POST /dead-letters/retry: 401 Unauthorized: missing or unknown API key (give --key or set BOOMERANG_API_KEY)"},
			{"retry ids", env, []string{"dead-letters", "retry", "--ids", "b1,nope", "--key", admin}, 0,
				[]string{"QUEUED  ALREADY QUEUED  SKIPPED  NOT FOUND", "1       0               0        1"}, ""},
			{"retry all", adminEnv, []string{"dead-letters", "retry", "--all", "--type", "bad"}, 0,
				[]string{"1       0               0        0"}, ""},
			{"retry ids again", adminEnv, []string{"dead-letters", "retry", "--ids", "b1,b2", "--json"}, 0,
				[]string{`"queued": 0`, `"already_queued": 2`}, ""},
			{"redeliver all", adminEnv, []string{"dead-letters", "redeliver", "--all"}, 0,
				[]string{"0       0               0        0"}, ""},
			{"callbacks redeliver", adminEnv, []string{"callbacks", "redeliver", "e-ok"}, 0, []string{"e-ok: queued"}, ""},
			{"callbacks redeliver no callback", adminEnv, []string{"callbacks", "redeliver", "b1"}, 1, nil, "409 Conflict: event has no callback to deliver"},
			{"stats", env, []string{"stats", "--server", base + "/"}, 0,
				[]string{"STATUS        EVENTS", "succeeded     1", "total         3", "dead letters  0", "DESTINATION", "http://127.0.0.1:"}, ""},
			{"no such command", env, []string{"events", "rm", "b1"}, 2, nil, `unknown command "events rm"`},
			{"both ids and all", adminEnv, []string{"dead-letters", "retry", "--all", "--ids", "b1"}, 2, nil, "needs either --all or --ids"},
			{"flag of another command", env, []string{"events", "show", "b1", "--all"}, 2, nil, "events show has no flag --all"},
			{"server down", env, []string{"stats", "--server", "http://127.0.0.1:1"}, 1, nil, "cannot reach the server at http://127.0.0.1:1"},
		}
		for _, tc := range tests {
			if tc.env == nil {
				tc.env = env
			}
			args := tc.args
			if !strings.Contains(strings.Join(args, " "), "--server") {
				args = append(args, "--server", base)
			}
			code, out, errOut := runCLI(t, tc.env, args...)
			if code != tc.wantCode {
				t.Errorf("%s: got exit %d (%q, %q), want %d", tc.name, code, out, errOut, tc.wantCode)
				continue
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("%s: got output\n%s\nwant %q (after what came before)", tc.name, out, w)
					break
				}
				rest = rest[i+len(w):]
			}
			if tc.wantErr != "" && (!strings.Contains(errOut, tc.wantErr) || strings.Count(errOut, "\n") != 1) {
				t.Errorf("%s: got error output %q, want one line with %q", tc.name, errOut, tc.wantErr)
			}
			if tc.wantErr == "" && errOut != "" {
				t.Errorf("%s: got error output %q, want none", tc.name, errOut)
			}
		}

		// Filters that match nothing print the header alone.
		for _, args := range [][]string{
			{"dead-letters", "ls", "--kind", "callback"},
			{"events", "ls", "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)},
			{"events", "ls", "--until", "1h"},
			{"events", "ls", "--type", "nosuch"},
		} {
			code, out, errOut := runCLI(t, env, append(args, "--server", base)...)
			if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ID ") {
				t.Errorf("%s: got exit %d, output %q (%q), want the header alone", strings.Join(args, " "), code, out, errOut)
			}
		}

		// --json prints the API's JSON.
		code, out, _ := runCLI(t, env, "events", "ls", "--status", "succeeded", "--json", "--server", base)
		var list struct {
			Events []struct {
				EventID string `json:"event_id"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Events) != 1 || list.Events[0].EventID != "e-ok" {
			t.Errorf("events ls --json: got %d %q (%v), want the e-ok event", code, out, err)
		}

		// events cancel: an event that has not started, then one that ran.
		if code, ans := post(t, base, `{"id":"later","event_type":"ok","delay":"1h"}`); code != http.StatusAccepted {
			t.Fatalf("POST a delayed event: got %d %v", code, ans)
		}
		if code, out, errOut := runCLI(t, env, "events", "cancel", "later", "--server", base); code != 0 || out != "later: canceled\n" {
			t.Errorf("events cancel later: got %d %q (%q), want later: canceled", code, out, errOut)
		}
		if code, _, errOut := runCLI(t, env, "events", "cancel", "e-ok", "--server", base); code != 1 || !strings.Contains(errOut, "409 Conflict: event e-ok is succeeded") {
			t.Errorf("events cancel e-ok: got %d %q, want exit 1 with the 409", code, errOut)
		}
	})
}

// Only the operator commands' names leave the server's command line to
// the operator commands.
func TestIsCommand(t *testing.T) {
	for _, args := range [][]string{nil, {"--version"}, {"--config", "stats"}, {"-addr", ":1"}} {
		if isCommand(args) {
			t.Errorf("isCommand(%q): got true, want false (run the server)", args)
		}
	}
	for _, args := range [][]string{{"stats"}, {"events", "ls"}, {"dead-letters"}, {"callbacks", "redeliver", "x"}} {
		if !isCommand(args) {
			t.Errorf("isCommand(%q): got false, want true", args)
		}
	}
}

// events ls passes its filters to GET /callback, which filters on the
// server, and asks for no more than --limit.
func TestEventsListFiltersOnServer(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"events":[{"event_id":"x1","event_type":"T","status":"failed"}]}`))
	}))
	defer srv.Close()
	since := "2026-11-25T12:00:00Z"
	code, out, errOut := runCLI(t, nil, "events", "ls", "--type", "T", "--status", "failed", "--since", since, "--until", "2026-11-26T00:00:00+01:00",
		"--limit", "7", "--server", srv.URL)
	if code != 0 || !strings.Contains(out, "x1") {
		t.Fatalf("got exit %d, output %q (%q), want x1 listed", code, out, errOut)
	}
	want := url.Values{"event_type": {"T"}, "status": {"failed"}, "since": {since}, "until": {"2026-11-25T23:00:00Z"}, "limit": {"7"}}.Encode()
	if len(got) != 1 || got[0] != want {
		t.Errorf("queries: got %q, want one: %q", got, want)
	}
}
