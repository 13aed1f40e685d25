package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// Garbage in Redis gets an error, never a panic or a fatal error, however
// much of it comes (goccy/go-json, the store's codec before, read out of
// bounds on some of these under -race).
func TestDecodeGarbage(t *testing.T) {
	for i := 0; i < 20000; i++ {
		for _, s := range []string{`{"\`, `{"\u`, `{"\u12`, `{"a":"\`, `{"event_type":"\`, `"\`, `{"\\`,
			`{"id":"x","history":[{"\`, `{"status":"nope"}`, `[`, ``, `{"attempts":"x"}`} {
			var rec Record
			if err := decode([]byte(s), &rec); err == nil {
				t.Fatalf("%q: got no error", s)
			}
		}
	}
	rec := Record{ID: "e1", EventType: "t", Status: event.StatusRetrying, Run: 2, Attempts: 3, AcceptedAt: time.Unix(1700000000, 0).UTC()}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got Record
	if err := decode(data, &got); err != nil || got.ID != rec.ID || got.Status != rec.Status || !got.AcceptedAt.Equal(rec.AcceptedAt) || !got.CompletedAt.IsZero() {
		t.Errorf("round trip: got %+v, %v; want %+v", got, err, rec)
	}
}
