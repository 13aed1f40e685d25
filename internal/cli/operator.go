package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// The operator commands talk to a running server's HTTP API:
//
//	boomerang stats
//	boomerang events ls [--status S] [--type T] [--since TIME] [--until TIME] [--limit N]
//	boomerang events show ID
//	boomerang events cancel ID
//	boomerang dead-letters ls [--type T] [--kind K] [--limit N]
//	boomerang dead-letters retry (--all [--type T] [--kind K] | --ids a,b)
//	boomerang dead-letters redeliver (--all [--type T] [--kind K] | --ids a,b)
//	boomerang callbacks redeliver ID
//
// each with --server URL (default http://127.0.0.1:8080), --key KEY
// (default $BOOMERANG_API_KEY) and --json (the API's JSON instead of a
// table). TIME is RFC 3339 (2026-11-25T12:00:00Z) or a duration back
// from now (90m, 24h); K is event or callback.

// envAPIKey is the variable the operator commands read their key from.
const envAPIKey = "BOOMERANG_API_KEY"

// defaultServer is the server the operator commands talk to by default.
const defaultServer = "http://127.0.0.1:8080"

// errUsage is an operator command line that names no command or misuses
// one; the message says which.
var errUsage = errors.New("usage")

// isCommand reports whether args name an operator command rather than
// the server's flags.
func isCommand(args []string) bool {
	return len(args) > 0 && slices.Contains([]string{"stats", "events", "dead-letters", "callbacks"}, args[0])
}

// operator is one operator command's connection and output.
type operator struct {
	server, key string
	json        bool
	out         io.Writer
	http        *http.Client
}

// command runs the operator command of args, writing its output to out;
// it returns the exit code: 0, 1 for an error, 2 for a bad command line.
func command(ctx context.Context, args []string, getenv func(string) string, out, errw io.Writer) int {
	err := runCommand(ctx, args, getenv, out)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(errw, "boomerang:", err)
		return 2
	default:
		fmt.Fprintln(errw, "boomerang:", err)
		return 1
	}
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	name := args[0]
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && name != "stats" {
		name += " " + args[1]
		args = args[1:]
	}
	args = args[1:]
	fs := flag.NewFlagSet("boomerang "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	op := &operator{out: out, http: &http.Client{Timeout: 30 * time.Second}}
	fs.StringVar(&op.server, "server", defaultServer, "the server's base URL")
	fs.StringVar(&op.key, "key", getenv(envAPIKey), "the API key (default $"+envAPIKey+")")
	fs.BoolVar(&op.json, "json", false, "print the API's JSON")
	status := fs.String("status", "", "only events of this status")
	typ := fs.String("type", "", "only events of this event type")
	limit := fs.Int("limit", 50, "the most listed")
	all := fs.Bool("all", false, "every dead letter (of --type)")
	ids := fs.String("ids", "", "comma-separated event ids")
	kind := fs.String("kind", "", "only dead letters of this kind: event or callback")
	var since, until timeFlag
	fs.Var(&since, "since", "only events accepted at or after this time (RFC 3339, or a duration back from now)")
	fs.Var(&until, "until", "only events accepted before this time (RFC 3339, or a duration back from now)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", errUsage, name, err)
	}
	op.server = strings.TrimRight(op.server, "/")
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	allow := func(want int, flags ...string) error {
		if len(pos) != want {
			return fmt.Errorf("%w: %s takes %d argument(s), got %d", errUsage, name, want, len(pos))
		}
		for f := range given {
			if f != "server" && f != "key" && f != "json" && !slices.Contains(flags, f) {
				return fmt.Errorf("%w: %s has no flag --%s", errUsage, name, f)
			}
		}
		return nil
	}
	switch name {
	case "stats":
		if err := allow(0); err != nil {
			return err
		}
		return op.stats(ctx)
	case "events ls":
		if err := allow(0, "status", "type", "since", "until", "limit"); err != nil {
			return err
		}
		return op.eventsList(ctx, listFilter{status: *status, typ: *typ, since: since.String(), until: until.String()}, *limit)
	case "events show":
		if err := allow(1); err != nil {
			return err
		}
		return op.eventShow(ctx, pos[0])
	case "events cancel":
		if err := allow(1); err != nil {
			return err
		}
		return op.cancel(ctx, pos[0])
	case "dead-letters ls":
		if err := allow(0, "type", "kind", "limit"); err != nil {
			return err
		}
		if err := checkKind(*kind); err != nil {
			return err
		}
		return op.deadList(ctx, *typ, *kind, *limit)
	case "dead-letters retry", "dead-letters redeliver":
		if err := allow(0, "all", "type", "kind", "ids"); err != nil {
			return err
		}
		action := strings.TrimPrefix(name, "dead-letters ")
		switch {
		case *all == (*ids != ""):
			return fmt.Errorf("%w: %s needs either --all or --ids", errUsage, name)
		case *ids != "" && (given["type"] || given["kind"]):
			return fmt.Errorf("%w: %s: --type and --kind go with --all", errUsage, name)
		case *all:
			if err := checkKind(*kind); err != nil {
				return err
			}
			filter := map[string]any{"event_type": *typ}
			if *kind != "" {
				filter["kind"] = *kind
			}
			return op.bulk(ctx, action, map[string]any{"filter": filter})
		default:
			return op.bulk(ctx, action, map[string]any{"ids": strings.Split(*ids, ",")})
		}
	case "callbacks redeliver":
		if err := allow(1); err != nil {
			return err
		}
		return op.action(ctx, "/callback/"+url.PathEscape(pos[0])+"/redeliver")
	}
	return fmt.Errorf("%w: unknown command %q (stats, events ls|show|cancel, dead-letters ls|retry|redeliver, callbacks redeliver)", errUsage, name)
}

// checkKind returns a usage error unless kind is "", event or callback.
func checkKind(kind string) error {
	if kind != "" && kind != "event" && kind != "callback" {
		return fmt.Errorf("%w: --kind must be event or callback, not %q", errUsage, kind)
	}
	return nil
}

// timeFlag is a time given as RFC 3339 or as a duration back from now,
// kept as the RFC 3339 the API takes ("" when not given).
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.UTC().Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(v string) error {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		f.t = t
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("not an RFC 3339 time (2026-11-25T12:00:00Z) or a duration back from now (90m)")
	}
	f.t = time.Now().Add(-d)
	return nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// apiError is an answer of the API other than 2xx.
type apiError struct {
	method, path string
	status       int
	msg          string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.method, e.path, e.status, http.StatusText(e.status), e.msg)
}

// call sends a request to the API and decodes its JSON answer into v
// (when not nil), returning the raw answer too.
func (op *operator) call(ctx context.Context, method, path string, body, v any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, op.server+path, rd)
	if err != nil {
		return nil, fmt.Errorf("--server: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if op.key != "" {
		req.Header.Set("Authorization", "Bearer "+op.key)
	}
	resp, err := op.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the server at %s: %v", op.server, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %v", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		if resp.StatusCode == http.StatusUnauthorized {
			e.Error += " (give --key or set " + envAPIKey + ")"
		}
		return nil, &apiError{method, path, resp.StatusCode, e.Error}
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, fmt.Errorf("%s %s: answer is not the API's JSON: %v", method, path, err)
		}
	}
	return raw, nil
}

// printJSON prints v indented.
func (op *operator) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(op.out, "%s\n", b)
	return err
}

// table writes rows aligned in columns under header.
func (op *operator) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(op.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// eventRow is what the tables show of a record.
type eventRow struct {
	EventID     string    `json:"event_id"`
	EventType   string    `json:"event_type"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"last_error"`
	AcceptedAt  time.Time `json:"accepted_at"`
	CompletedAt time.Time `json:"completed_at"`
	Callback    struct {
		URL      string `json:"url"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
	} `json:"callback"`
	DeadLetter *struct {
		Kind     string    `json:"kind"`
		FailedAt time.Time `json:"failed_at"`
	} `json:"dead_letter"`
}

// maxPages bounds the pages a listing command reads.
const maxPages = 10

// listFilter is what GET /callback filters a listing by; "" leaves a
// field out.
type listFilter struct {
	status, typ, since, until string
}

// listEvents reads GET /callback, filtered on the server by f, until it
// has limit events or read maxPages pages; more tells whether the listing
// went on.
func (op *operator) listEvents(ctx context.Context, f listFilter, limit int) (evs []json.RawMessage, more bool, err error) {
	evs = []json.RawMessage{} // --json prints [], not null, for none
	cursor := ""
	for range maxPages {
		q := url.Values{"limit": {strconv.Itoa(min(limit-len(evs), 1000))}}
		for k, v := range map[string]string{"status": f.status, "event_type": f.typ, "since": f.since, "until": f.until} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Events     []json.RawMessage `json:"events"`
			NextCursor string            `json:"next_cursor"`
		}
		if _, err := op.call(ctx, http.MethodGet, "/callback?"+q.Encode(), nil, &page); err != nil {
			return nil, false, err
		}
		evs = append(evs, page.Events...)
		if page.NextCursor == "" {
			return evs, false, nil
		}
		if len(evs) >= limit {
			return evs[:limit], true, nil
		}
		cursor = page.NextCursor
	}
	return evs, true, nil
}

func (op *operator) eventsList(ctx context.Context, f listFilter, limit int) error {
	if limit < 1 {
		return fmt.Errorf("%w: --limit must be at least 1", errUsage)
	}
	evs, _, err := op.listEvents(ctx, f, limit)
	if err != nil {
		return err
	}
	if op.json {
		return op.printJSON(map[string]any{"events": evs})
	}
	rows := make([][]string, 0, len(evs))
	for _, e := range evs {
		var r eventRow
		json.Unmarshal(e, &r)
		rows = append(rows, []string{r.EventID, r.EventType, r.Status, strconv.Itoa(r.Attempts), r.Callback.Status,
			stamp(r.AcceptedAt), oneLine(r.LastError)})
	}
	return op.table([]string{"ID", "TYPE", "STATUS", "ATTEMPTS", "CALLBACK", "ACCEPTED", "LAST ERROR"}, rows)
}

func (op *operator) eventShow(ctx context.Context, id string) error {
	var r struct {
		eventRow
		History []struct {
			Attempt    int       `json:"attempt"`
			StartedAt  time.Time `json:"started_at"`
			DurationMS float64   `json:"duration_ms"`
			Outcome    string    `json:"outcome"`
			Error      string    `json:"error"`
		} `json:"history"`
	}
	raw, err := op.call(ctx, http.MethodGet, "/events/"+url.PathEscape(id), nil, &r)
	if err != nil {
		return err
	}
	if op.json {
		_, err := op.out.Write(append(raw, '\n'))
		return err
	}
	fields := [][]string{
		{"id", r.EventID}, {"type", r.EventType}, {"status", r.Status}, {"attempts", strconv.Itoa(r.Attempts)},
		{"last error", oneLine(r.LastError)}, {"accepted", stamp(r.AcceptedAt)}, {"completed", stamp(r.CompletedAt)},
		{"callback", r.Callback.Status + " " + r.Callback.URL}, {"callback attempts", strconv.Itoa(r.Callback.Attempts)},
	}
	tw := tabwriter.NewWriter(op.out, 0, 4, 2, ' ', 0)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", f[0], f[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.History) == 0 {
		return nil
	}
	fmt.Fprintln(op.out)
	rows := make([][]string, len(r.History))
	for i, h := range r.History {
		rows[i] = []string{strconv.Itoa(h.Attempt), stamp(h.StartedAt), strconv.FormatFloat(h.DurationMS, 'f', 1, 64), h.Outcome, oneLine(h.Error)}
	}
	return op.table([]string{"ATTEMPT", "STARTED", "MS", "OUTCOME", "ERROR"}, rows)
}

func (op *operator) deadList(ctx context.Context, typ, kind string, limit int) error {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if typ != "" {
		q.Set("event_type", typ)
	}
	if kind != "" {
		q.Set("kind", kind)
	}
	var page struct {
		DeadLetters []eventRow `json:"dead_letters"`
		NextCursor  string     `json:"next_cursor"`
	}
	raw, err := op.call(ctx, http.MethodGet, "/dead-letters?"+q.Encode(), nil, &page)
	if err != nil {
		return err
	}
	if op.json {
		_, err := op.out.Write(append(raw, '\n'))
		return err
	}
	rows := make([][]string, len(page.DeadLetters))
	for i, d := range page.DeadLetters {
		kind, failed := "", ""
		if d.DeadLetter != nil {
			kind, failed = d.DeadLetter.Kind, stamp(d.DeadLetter.FailedAt)
		}
		rows[i] = []string{d.EventID, d.EventType, kind, failed, d.Status, d.Callback.Status, oneLine(d.LastError)}
	}
	if err := op.table([]string{"ID", "TYPE", "KIND", "FAILED", "STATUS", "CALLBACK", "LAST ERROR"}, rows); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(op.out, "(more than %d; raise --limit)\n", limit)
	}
	return nil
}

// bulkCounts is the answer of POST /dead-letters/retry and /redeliver.
type bulkCounts struct {
	Queued        int            `json:"queued"`
	AlreadyQueued int            `json:"already_queued"`
	Skipped       int            `json:"skipped"`
	NotFound      int            `json:"not_found"`
	Reasons       map[string]int `json:"skipped_reasons,omitempty"`
	NextCursor    string         `json:"next_cursor,omitempty"`
}

// bulk POSTs body to /dead-letters/ACTION, again with each next_cursor
// until the filter is walked, and prints the summed counts.
func (op *operator) bulk(ctx context.Context, action string, body map[string]any) error {
	var sum bulkCounts
	for {
		var got bulkCounts
		if _, err := op.call(ctx, http.MethodPost, "/dead-letters/"+action, body, &got); err != nil {
			return err
		}
		sum.Queued += got.Queued
		sum.AlreadyQueued += got.AlreadyQueued
		sum.Skipped += got.Skipped
		sum.NotFound += got.NotFound
		for r, n := range got.Reasons {
			if sum.Reasons == nil {
				sum.Reasons = map[string]int{}
			}
			sum.Reasons[r] += n
		}
		if got.NextCursor == "" {
			break
		}
		body["cursor"] = got.NextCursor
	}
	if op.json {
		return op.printJSON(sum)
	}
	rows := [][]string{{strconv.Itoa(sum.Queued), strconv.Itoa(sum.AlreadyQueued), strconv.Itoa(sum.Skipped), strconv.Itoa(sum.NotFound)}}
	if err := op.table([]string{"QUEUED", "ALREADY QUEUED", "SKIPPED", "NOT FOUND"}, rows); err != nil {
		return err
	}
	reasons := make([]string, 0, len(sum.Reasons))
	for r := range sum.Reasons {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		fmt.Fprintf(op.out, "skipped %d: %s\n", sum.Reasons[r], r)
	}
	return nil
}

// action POSTs an operator action on one event and prints its answer.
func (op *operator) action(ctx context.Context, path string) error {
	var ans struct {
		Queued bool     `json:"queued"`
		Event  eventRow `json:"event"`
	}
	raw, err := op.call(ctx, http.MethodPost, path, nil, &ans)
	if err != nil {
		return err
	}
	if op.json {
		_, err := op.out.Write(append(raw, '\n'))
		return err
	}
	what := "queued"
	if !ans.Queued {
		what = "already under way"
	}
	_, err = fmt.Fprintf(op.out, "%s: %s (callback %s)\n", ans.Event.EventID, what, ans.Event.Callback.Status)
	return err
}

// cancel cancels an event that has not started (DELETE /events/{id}).
func (op *operator) cancel(ctx context.Context, id string) error {
	var r eventRow
	raw, err := op.call(ctx, http.MethodDelete, "/events/"+url.PathEscape(id), nil, &r)
	if err != nil {
		return err
	}
	if op.json {
		_, err := op.out.Write(append(raw, '\n'))
		return err
	}
	_, err = fmt.Fprintf(op.out, "%s: %s\n", r.EventID, r.Status)
	return err
}

// stats prints how many recent events are in each status (counted from
// GET /callback, at most maxPages pages of 1000), the dead letters, and
// the destinations' flow state.
func (op *operator) stats(ctx context.Context) error {
	evs, more, err := op.listEvents(ctx, listFilter{}, maxPages*1000)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, e := range evs {
		var r eventRow
		json.Unmarshal(e, &r)
		counts[r.Status]++
	}
	var dead struct {
		DeadLetters []json.RawMessage `json:"dead_letters"`
		NextCursor  string            `json:"next_cursor"`
	}
	if _, err := op.call(ctx, http.MethodGet, "/dead-letters?limit=1000", nil, &dead); err != nil {
		return err
	}
	var dests struct {
		Destinations []struct {
			Name                string `json:"destination"`
			State               string `json:"state"`
			ConsecutiveFailures int    `json:"consecutive_failures"`
			InFlight            int    `json:"in_flight"`
		} `json:"destinations"`
	}
	rawDests, err := op.call(ctx, http.MethodGet, "/destinations", nil, &dests)
	if err != nil {
		return err
	}
	atLeast := func(n int, more bool) string {
		if more {
			return strconv.Itoa(n) + "+"
		}
		return strconv.Itoa(n)
	}
	if op.json {
		return op.printJSON(map[string]any{
			"events_by_status": counts, "events_counted": len(evs), "events_truncated": more,
			"dead_letters": len(dead.DeadLetters), "dead_letters_truncated": dead.NextCursor != "",
			"destinations": json.RawMessage(rawDests),
		})
	}
	fmt.Fprintf(op.out, "Recent events (still retained), by status%s:\n", map[bool]string{true: ", counted in the newest " + strconv.Itoa(len(evs)), false: ""}[more])
	rows := [][]string{}
	for _, s := range []string{"queued", "processing", "retrying", "succeeded", "failed"} {
		rows = append(rows, []string{s, strconv.Itoa(counts[s])})
	}
	rows = append(rows, []string{"total", atLeast(len(evs), more)}, []string{"dead letters", atLeast(len(dead.DeadLetters), dead.NextCursor != "")})
	if err := op.table([]string{"STATUS", "EVENTS"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(op.out)
	fmt.Fprintln(op.out, "Destinations:")
	rows = rows[:0]
	for _, d := range dests.Destinations {
		rows = append(rows, []string{d.Name, d.State, strconv.Itoa(d.ConsecutiveFailures), strconv.Itoa(d.InFlight)})
	}
	return op.table([]string{"DESTINATION", "STATE", "FAILURES", "IN FLIGHT"}, rows)
}

// stamp formats t for a table, "-" when unset.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine keeps a table cell on one line and short.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}
