package boomerang_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// consoleMarkup is the error of the events that fail in the browser test:
// markup that would run a script if the console rendered it as HTML.
const consoleMarkup = "<img src=x onerror=alert(1)>"

// stepTimeout bounds each step of the browser test.
const stepTimeout = 20 * time.Second

// TestConsoleInABrowser drives the web console at /ui in a headless
// Chromium against a running engine with API keys and admin keys: the key
// form, the overview with its throughput and latency from /metrics, the
// events filtered by status and time range, an event's attempts and trace
// id, and a bulk retry of dead letters, which asks for an admin key and
// then succeeds; the dead letters by kind. Errors holding markup must
// render as text. An engine that serves its metrics elsewhere gets a
// panel that says so. It runs on miniredis, and on $REDIS_URL
// when set, with screenshots in $CONSOLE_SCREENSHOTS/<backend> (else a
// temporary directory). It skips when Chromium is not installed, unless
// CI=true.
func TestConsoleInABrowser(t *testing.T) {
	chrome := findChromium()
	if chrome == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed, and CI must run the browser test (apt-get install chromium)")
		}
		t.Skip("chromium is not installed (apt-get install chromium): skipping the browser test")
	}
	shots := os.Getenv("CONSOLE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		dir := filepath.Join(shots, filepath.Base(t.Name()))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		consoleInABrowser(t, b, chrome, dir)
	})
}

// consoleInABrowser is TestConsoleInABrowser on one Redis backend, with
// the browser at chrome, saving screenshots in shots.
func consoleInABrowser(t *testing.T, b redistest.Backend, chrome, shots string) {
	cfg := testConfig(b)
	cfg.Auth = boomerang.AuthConfig{APIKeys: []string{userKey}, AdminKeys: []string{adminKey}}
	eng := newEngine(t, cfg)
	if err := eng.Accept("ok"); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	failing.Store(true)
	err := boomerang.Handle(eng, "flaky", func(context.Context, event.EventMessage[json.RawMessage]) error {
		if failing.Load() {
			return boomerang.Permanent(errors.New(consoleMarkup))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start(t, eng)
	srv := httptest.NewServer(eng.Handler())
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("server URL: got %s, want one on 127.0.0.1", srv.URL)
	}

	// A callback receiver on 127.0.0.1 that fails until told otherwise.
	var refusing atomic.Bool
	refusing.Store(true)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refusing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(recv.Close)

	failed := []string{"flaky-1", "flaky-2", "flaky-3"}
	for _, id := range append([]string{"ok-1", "ok-2"}, failed...) {
		typ, _, _ := strings.Cut(id, "-")
		postConsoleEvent(t, srv.URL, `{"id":"`+id+`","event_type":"`+typ+`","payload":{"n":1,"note":"<script>alert(2)</script>"}}`)
	}
	postConsoleEvent(t, srv.URL, `{"id":"ok-cb","event_type":"ok","callback":{"success_url":"`+recv.URL+`/cb"}}`)
	for _, id := range failed {
		waitConsoleStatus(t, srv.URL, id, "event", "failed")
	}
	waitConsoleStatus(t, srv.URL, "ok-cb", "callback", "failed")

	// The browser: headless, no network but 127.0.0.1, a fresh profile.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Any host name but 127.0.0.1 resolves to nothing: the browser
		// cannot reach the network even if a page asked it to.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)

	// Dialogs: a confirm is accepted (and counted); an alert means markup
	// ran as script, which fails the test.
	var mu sync.Mutex
	var confirms, alerts []string
	dialogs := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for d, err := range dialogs {
			if err != nil {
				return
			}
			mu.Lock()
			if d.Type == page.DialogTypeConfirm {
				confirms = append(confirms, d.Message)
			} else {
				alerts = append(alerts, string(d.Type)+": "+d.Message)
			}
			mu.Unlock()
			chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: d.Type == page.DialogTypeConfirm})
		}
	}()

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	// until waits for the JavaScript expression cond to be true.
	until := func(name, cond string) {
		t.Helper()
		step(name, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(stepTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	}

	// Without a key the console asks for one.
	step("open /ui", chromedp.Navigate(srv.URL+"/ui"), chromedp.WaitVisible(chromedp.ID("login-key")))
	shot("01-key-form")
	step("enter the key",
		chromedp.SendKeys(chromedp.ID("login-key"), userKey),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("counter-failed")))
	until("overview counts the failed events", `document.querySelector("#counter-failed b").textContent === "3"`)
	until("overview counts the succeeded events", `document.querySelector("#counter-succeeded b").textContent === "3"`)
	until("overview shows the receiver's destination", `(() => {
		const r = document.querySelector("#destinations tr");
		return r && r.children[0].textContent === "`+recv.URL+`" && r.children[1].textContent !== "";
	})()`)
	// Throughput and latency: sampled from /metrics every refresh, so
	// events that finish while the overview is open show up as a rate and
	// as attempt durations.
	until("metrics sampled", `document.getElementById("metrics-status").dataset.state === "ok"`)
	for i := range 5 {
		postConsoleEvent(t, srv.URL, `{"id":"live-`+strconv.Itoa(i)+`","event_type":"ok"}`)
	}
	for i := range 5 {
		waitConsoleStatus(t, srv.URL, "live-"+strconv.Itoa(i), "event", "succeeded")
	}
	until("throughput shown", `parseFloat(document.getElementById("metric-events-avg").textContent) > 0 &&
		document.querySelectorAll("#chart-throughput polyline.line-events, #chart-throughput circle.line-events").length > 0`)
	until("latency shown", `/^[0-9.]+ \/ [0-9.]+$/.test(document.getElementById("metric-attempt-avg").textContent)`)
	p50p99 := evalJS[string](t, bctx, `document.getElementById("metric-attempt-avg").textContent`)
	var p50, p99 float64
	if _, err := fmt.Sscanf(p50p99, "%g / %g", &p50, &p99); err != nil || p50 <= 0 || p99 < p50 || p99 > 5000 {
		t.Errorf("attempt p50 / p99: got %q, want 0 < p50 <= p99 < 5000 ms", p50p99)
	}
	until("overview counts the live events", `document.querySelector("#counter-succeeded b").textContent === "8"`)
	shot("02-overview")

	// Events, filtered to the failed ones.
	step("events page", chromedp.Click(chromedp.ID("nav-events")), chromedp.WaitVisible(chromedp.ID("events-status")))
	step("filter failed", chromedp.SetValue(chromedp.ID("events-status"), "failed"), chromedp.Click(chromedp.ID("events-apply")))
	until("only failed events listed", `(() => {
		const rows = [...document.querySelectorAll("#events-rows tr.event-row")];
		return rows.length === 3 && rows.every(r => r.children[2].textContent === "failed");
	})()`)
	// The time range: from an hour ago keeps them, from an hour ahead or
	// until an hour ago keeps none.
	for _, tr := range []struct {
		name, since, until string
		want               int
	}{
		{"since an hour ago", "-1", "", 3},
		{"since an hour ahead", "1", "", 0},
		{"until an hour ago", "", "-1", 0},
		{"within two hours", "-1", "1", 3},
	} {
		step("time range "+tr.name, chromedp.Evaluate[chromedp.Void](`(() => {
			const at = (h) => {
				if (h === "") return "";
				const d = new Date(Date.now() + Number(h) * 3600e3);
				d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); // datetime-local is local time
				return d.toISOString().slice(0, 19);
			};
			document.getElementById("events-since").value = at(`+strconv.Quote(tr.since)+`);
			document.getElementById("events-until").value = at(`+strconv.Quote(tr.until)+`);
			document.getElementById("events-rows").replaceChildren();
		})()`), chromedp.Click(chromedp.ID("events-apply")))
		until("time range "+tr.name+" applied", `document.querySelectorAll("#events-rows tr").length > 0 &&
			document.querySelectorAll("#events-rows tr.event-row").length === `+strconv.Itoa(tr.want))
	}
	step("clear the time range", chromedp.Evaluate[chromedp.Void](`document.getElementById("events-since").value = "";
		document.getElementById("events-until").value = ""`), chromedp.Click(chromedp.ID("events-apply")))
	until("failed events listed again", `document.querySelectorAll("#events-rows tr.event-row").length === 3`)
	errText := evalJS[string](t, bctx, `document.querySelector("#events-rows tr.event-row td.error").textContent`)
	if errText != consoleMarkup {
		t.Errorf("last error cell: got %q, want the literal %q", errText, consoleMarkup)
	}
	if n := evalJS[int](t, bctx, `document.querySelectorAll("img").length`); n != 0 {
		t.Errorf("img elements on the events page: got %d, want 0: markup in an error was rendered as HTML", n)
	}
	shot("03-events-failed")

	// One event: its attempts, the markup as text.
	step("open flaky-1", chromedp.Click(chromedp.CSS(`#events-rows a[href="#/event/flaky-1"]`)))
	until("attempts listed", `document.querySelectorAll("#event-attempts tr.attempt-row").length >= 1`)
	attempt := evalJS[[]string](t, bctx, `[...document.querySelector("#event-attempts tr.attempt-row").children].map(c => c.textContent)`)
	if len(attempt) != 5 || attempt[0] != "1" || attempt[3] != "failed" || attempt[4] != consoleMarkup {
		t.Errorf("attempt row: got %q, want attempt 1, failed, error %q", attempt, consoleMarkup)
	}
	if n := evalJS[int](t, bctx, `document.querySelectorAll("img").length`); n != 0 {
		t.Errorf("img elements on the event page: got %d, want 0: markup in an error was rendered as HTML", n)
	}
	payload := evalJS[string](t, bctx, `document.getElementById("event-payload").textContent`)
	if !strings.Contains(payload, `"note": "<script>alert(2)</script>"`) || !strings.Contains(payload, `"n": 1`) {
		t.Errorf("payload: got %q, want it pretty-printed, its markup as text", payload)
	}
	if n := evalJS[int](t, bctx, `document.querySelectorAll("#event-payload *").length`); n != 0 {
		t.Errorf("elements inside the payload: got %d, want 0: the payload was rendered as HTML", n)
	}
	shot("04-event")

	// Dead letters: select them, retry in bulk, see them queued.
	step("dead letters page", chromedp.Click(chromedp.ID("nav-dead-letters")))
	until("dead letters listed", `document.querySelectorAll("#dl-rows .dl-select").length === 4`)
	for _, k := range []struct {
		kind string
		want int
	}{{"callback", 1}, {"event", 3}, {"", 4}} {
		step("kind "+k.kind, chromedp.SetValue(chromedp.ID("dl-kind"), k.kind),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("dl-rows").replaceChildren()`), chromedp.Click(chromedp.ID("dl-apply")))
		until("dead letters of kind "+k.kind, `(() => {
			const rows = [...document.querySelectorAll("#dl-rows tr.dl-row")];
			return document.querySelectorAll("#dl-rows tr").length > 0 && rows.length === `+strconv.Itoa(k.want)+` &&
				rows.every(r => `+strconv.Quote(k.kind)+` === "" || r.children[3].textContent === `+strconv.Quote(k.kind)+`);
		})()`)
	}
	step("filter flaky", chromedp.SendKeys(chromedp.ID("dl-type"), "flaky"), chromedp.Click(chromedp.ID("dl-apply")))
	until("flaky dead letters listed", `document.querySelectorAll("#dl-rows .dl-select").length === 3`)
	step("select the page", chromedp.Click(chromedp.ID("dl-all-page")))
	until("all selected", `document.querySelectorAll("#dl-rows .dl-select:checked").length === 3`)
	shot("05-dead-letters-selected")
	failing.Store(false)
	// The API key is no admin key: the console asks for one, keeps it for
	// the tab, and sends the retry again with it. A wrong one is asked again.
	step("retry", chromedp.Click(chromedp.ID("dl-retry")))
	step("admin key asked", chromedp.WaitVisible(chromedp.ID("admin-key")))
	shot("05b-admin-key-form")
	step("a wrong admin key", chromedp.SendKeys(chromedp.ID("admin-key"), "not-an-admin-key"), chromedp.Click(chromedp.ID("admin-submit")))
	until("admin key asked again", `!document.getElementById("admin-form").hidden &&
		document.getElementById("admin-reason").textContent.includes("unknown")`)
	step("the admin key", chromedp.SendKeys(chromedp.ID("admin-key"), adminKey), chromedp.Click(chromedp.ID("admin-submit")))
	until("retry answered", `document.getElementById("dl-result").dataset.queued === "3"`)
	if got := evalJS[string](t, bctx, `sessionStorage.getItem("boomerang-admin-key") + " " + sessionStorage.getItem("boomerang-api-key")`); got != adminKey+" "+userKey {
		t.Errorf("session keys (admin, API): got %q, want %q", got, adminKey+" "+userKey)
	}
	result := evalJS[string](t, bctx, `document.getElementById("dl-result").textContent`)
	t.Logf("bulk retry: %s", result)
	shot("06-dead-letters-retried")
	mu.Lock()
	if len(confirms) != 1 || !strings.Contains(confirms[0], "3 dead letter") {
		t.Errorf("confirm dialogs: got %q, want one asking to retry 3 dead letters", confirms)
	}
	mu.Unlock()
	for _, id := range failed {
		waitConsoleStatus(t, srv.URL, id, "event", "succeeded")
	}
	step("reload dead letters", chromedp.Click(chromedp.ID("dl-apply")))
	until("no flaky dead letters left", `document.querySelectorAll("#dl-rows .dl-select").length === 0`)

	// The callback's dead letter: redeliver every one matching the filter.
	step("clear the filter", chromedp.Evaluate[chromedp.Void](`document.getElementById("dl-type").value = ""`), chromedp.Click(chromedp.ID("dl-apply")))
	until("callback dead letter listed", `(() => {
		const rows = [...document.querySelectorAll("#dl-rows tr.dl-row")];
		return rows.length === 1 && rows[0].children[3].textContent === "callback";
	})()`)
	refusing.Store(false)
	// All matching the filter, of kind event: the callback's dead letter
	// is not one of them. Then of kind callback: it is, and the admin key
	// kept for the tab is used without asking again.
	step("redeliver all of kind event", chromedp.SetValue(chromedp.ID("dl-kind"), "event"),
		chromedp.Click(chromedp.ID("dl-all-filter")), chromedp.Click(chromedp.ID("dl-redeliver")))
	until("redeliver of kind event answered", `document.getElementById("dl-result").dataset.queued === "0"`)
	step("redeliver all of kind callback", chromedp.SetValue(chromedp.ID("dl-kind"), "callback"), chromedp.Click(chromedp.ID("dl-redeliver")))
	until("redeliver answered", `document.getElementById("dl-result").dataset.queued === "1"`)
	if !evalJS[bool](t, bctx, `document.getElementById("admin-form").hidden`) {
		t.Error("admin key form shown again: want the tab's admin key used")
	}
	waitConsoleStatus(t, srv.URL, "ok-cb", "callback", "delivered")
	step("open ok-cb", chromedp.Evaluate[chromedp.Void](`location.hash = "#/event/ok-cb"`))
	until("deliveries listed", `(() => {
		const rows = [...document.querySelectorAll("#event-deliveries tr.delivery-row")];
		return rows.length >= 2 && rows.some(r => r.children[4].textContent === "delivered");
	})()`)
	shot("07-callback-deliveries")
	step("events page again", chromedp.Click(chromedp.ID("nav-events")))
	step("filter by type", chromedp.SetValue(chromedp.ID("events-status"), ""), chromedp.SendKeys(chromedp.ID("events-type"), "flaky"),
		chromedp.Click(chromedp.ID("events-apply")))
	until("only flaky events listed", `(() => {
		const rows = [...document.querySelectorAll("#events-rows tr.event-row")];
		return rows.length === 3 && rows.every(r => r.children[1].textContent === "flaky");
	})()`)
	evalJS[string](t, bctx, `document.getElementById("events-type").value = ""`) // clear the type
	step("filter succeeded", chromedp.SetValue(chromedp.ID("events-status"), "succeeded"), chromedp.Click(chromedp.ID("events-apply")))
	until("retried events succeeded", `document.querySelectorAll("#events-rows tr.event-row").length === 11`)
	shot("08-events-succeeded")

	// Every event, five a page: the third page has the eleventh, the oldest.
	step("all events, 5 a page", chromedp.Evaluate[chromedp.Void](`document.getElementById("events-status").value = ""`),
		chromedp.SetValue(chromedp.ID("events-limit"), "5"), chromedp.Click(chromedp.ID("events-apply")))
	until("first page", `document.querySelectorAll("#events-rows tr.event-row").length === 5 && !document.getElementById("events-next").hidden`)
	step("next page", chromedp.Click(chromedp.ID("events-next")))
	until("second page", `document.querySelectorAll("#events-rows tr.event-row").length === 5 && !document.getElementById("events-next").hidden &&
		document.querySelector("#events-rows tr.event-row").children[0].textContent !== "live-4"`)
	step("third page", chromedp.Click(chromedp.ID("events-next")))
	until("third page shown", `(() => {
		const rows = [...document.querySelectorAll("#events-rows tr.event-row")];
		return rows.length === 1 && rows[0].children[0].textContent === "ok-1" && document.getElementById("events-next").hidden;
	})()`)

	// Looking up an id opens its page.
	step("look up flaky-2", chromedp.SendKeys(chromedp.ID("lookup-id"), "flaky-2"), chromedp.Click(chromedp.ID("lookup-go")))
	until("flaky-2 shown", `document.getElementById("event-id").textContent === "flaky-2" &&
		document.querySelector('#event-record dd[data-field="status"]').textContent === "succeeded" &&
		[...document.querySelectorAll("#event-attempts tr.attempt-row")].some(r => r.children[3].textContent === "succeeded")`)

	// The overview refreshes itself.
	step("overview", chromedp.Click(chromedp.ID("nav-overview")), chromedp.WaitVisible(chromedp.ID("counter-failed")))
	first := evalJS[string](t, bctx, `document.getElementById("overview-updated").textContent`)
	until("overview refreshed", `document.getElementById("overview-updated").textContent !== `+strconv.Quote(first))
	until("throughput drawn as a line", `document.querySelectorAll("#chart-throughput polyline.line-events").length > 0`)
	shot("08b-overview-later")

	// The markup never became an element, and nothing raised an alert.
	imgs := evalJS[int](t, bctx, `document.querySelectorAll("img").length`)
	if imgs != 0 {
		t.Errorf("img elements: got %d, want 0: markup in an error was rendered as HTML", imgs)
	}

	// An event with a trace shows its trace id.
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/event", strings.NewReader(`{"id":"traced","event_type":"ok"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+userKey)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	step("open traced", chromedp.Evaluate[chromedp.Void](`location.hash = "#/event/traced"`))
	until("trace id shown", `(() => {
		const dd = document.querySelector('#event-record dd[data-field="trace_id"]');
		return dd !== null && dd.textContent === "`+traceID+`";
	})()`)

	// A wrong key: the console asks again.
	evalJS[bool](t, bctx, `sessionStorage.setItem("boomerang-api-key", "wrong"); location.reload(); true`)
	step("key form again", chromedp.WaitVisible(chromedp.ID("login-key")))
	shot("09-key-form-again")

	// An engine whose metrics are served apart: the panel says so, and the
	// rest of the overview works.
	cfg2 := testConfig(b)
	cfg2.SeparateMetrics = true
	srv2 := httptest.NewServer(newEngine(t, cfg2).Handler())
	t.Cleanup(srv2.Close)
	step("open the other engine's console", chromedp.Navigate(srv2.URL+"/ui"), chromedp.WaitVisible(chromedp.ID("counter-failed")))
	until("metrics elsewhere", `document.getElementById("metrics-status").dataset.state === "unavailable" &&
		document.getElementById("metrics-status").textContent.includes("another address") &&
		document.getElementById("metrics-panel").hidden`)
	until("counters without metrics", `document.querySelector("#counter-failed b").textContent === "0"`)
	shot("10-metrics-elsewhere")

	mu.Lock()
	defer mu.Unlock()
	if len(confirms) != 3 || !strings.Contains(confirms[1], "every dead letter whose event failed") ||
		!strings.Contains(confirms[2], "every dead letter whose callback failed") {
		t.Errorf("confirm dialogs: got %q, want two more to redeliver every dead letter of kind event, then callback", confirms)
	}
	if len(alerts) != 0 {
		t.Errorf("dialogs: got %q, want no alert: markup ran as script", alerts)
	}
}

// evalJS evaluates expr in the page and returns its value.
func evalJS[T any](t *testing.T, bctx context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

// findChromium returns the path of a Chromium or Chrome, or "".
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func postConsoleEvent(t *testing.T, base, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/event", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+userKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /event %s: got %d, want 202", body, res.StatusCode)
	}
}

// waitConsoleStatus waits (10s at most) for the status of the event (of:
// "event") or of its callback (of: "callback").
func waitConsoleStatus(t *testing.T, base, id, of, want string) {
	t.Helper()
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/callback?event_id="+id, nil)
		req.Header.Set("Authorization", "Bearer "+userKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Status   string `json:"status"`
			Callback struct {
				Status string `json:"status"`
			} `json:"callback"`
		}
		err = json.NewDecoder(res.Body).Decode(&rec)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got = rec.Status
		if of == "callback" {
			got = rec.Callback.Status
		}
		if got == want {
			return
		}
	}
	t.Fatalf("%s of %s: got status %q after 10s, want %q", of, id, got, want)
}
