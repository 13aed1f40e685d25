package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/internal/fakes"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// A route's callback block in the file reaches the running server: the
// callbacks of its events are sent as it says, and the others as the
// top-level callback block says.
func TestRouteCallbackMethod(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		target := fakes.NewTarget(t, nil)
		var mu sync.Mutex
		methods := map[string]string{} // path to method
		rcv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			mu.Lock()
			methods[r.URL.Path] = r.Method + " " + r.Header.Get("Content-Type")
			mu.Unlock()
		}))
		t.Cleanup(rcv.Close)
		file := writeConfig(t, fmt.Sprintf(`
addr: "127.0.0.1:0"
redis_url: %q
key_prefix: %q
callback: {allow_private_networks: true, format: cloudevents}
routes:
  - {event_type: legacy, forward: %q, callback: {method: GET}}
  - {event_type: "*", accept: true}
`, b.URL, b.Prefix, target.URL))
		cfg, err := loadConfig([]string{"--config", file}, mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		base, _ := startServer(t, cfg)
		for _, ev := range []struct{ id, typ string }{{"l1", "legacy"}, {"o1", "other"}} {
			body := fmt.Sprintf(`{"id":%q,"event_type":%q,"callback":{"success_url":%q}}`, ev.id, ev.typ, rcv.URL+"/"+ev.typ)
			if code, out := post(t, base, body); code != http.StatusAccepted {
				t.Fatalf("POST %s: got %d %v, want 202", ev.id, code, out)
			}
		}
		want := map[string]string{"/legacy": "GET ", "/other": "POST application/cloudevents+json"}
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			got := fmt.Sprint(methods)
			mu.Unlock()
			if got == fmt.Sprint(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("callbacks: got %s, want %s", got, fmt.Sprint(want))
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
