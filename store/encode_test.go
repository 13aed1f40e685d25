package store

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// strs are strings of every kind the encoders must write as encoding/json
// does: plain, empty, escapes, HTML, control characters, UTF-8, invalid
// UTF-8, U+2028.
var strs = []string{"", "plain", "evt_01JDQ8Z3K4M5N6P7Q8R9S0T1V2", "http://127.0.0.1:8080/ok?a=1&b=<2>", `quote " and \ backslash`,
	"tab\tnew\nline\r", "\x00\x01\x1f", "é ü 日本 🚀", "bad \xff\xfe utf8", "line sep \u2028 \u2029", "HTTP 503: upstream <down>"}

func randTime(r *rand.Rand) time.Time {
	switch r.IntN(4) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	case 2:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).UTC()
	default:
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*(r.IntN(27)-13)))
	}
}

func randRecord(r *rand.Rand) Record {
	s := func() string { return strs[r.IntN(len(strs))] }
	rec := Record{ID: s(), EventType: s(), Status: event.Status(1 + r.IntN(5)), Run: r.IntN(3), Attempts: r.IntN(9) - 1,
		LastError: s(), BodyHash: s(), SuccessURL: s(), FailURL: s(), TraceParent: s(), TraceState: s(), OrderingKey: s(),
		CallbackMethod: event.CallbackMethod(s()), CallbackFormat: event.CallbackFormat(s()),
		AcceptedAt: randTime(r), UpdatedAt: randTime(r), FirstAttemptAt: randTime(r), NextAttemptAt: randTime(r), CompletedAt: randTime(r), DeliverAt: randTime(r)}
	for range r.IntN(4) {
		rec.History = append(rec.History, Attempt{Run: r.IntN(3), Number: r.IntN(5), StartedAt: randTime(r),
			Duration: time.Duration(r.Int64N(1e10)), Outcome: event.Status(1 + r.IntN(5)), Error: s(), Note: s()})
	}
	return rec
}

func randCallback(r *rand.Rand) Callback {
	s := func() string { return strs[r.IntN(len(strs))] }
	cb := Callback{ID: s(), EventID: s(), URL: s(), Method: event.CallbackMethod(s()), Format: event.CallbackFormat(s()), Status: event.CallbackStatus(1 + r.IntN(5)), Attempts: r.IntN(9),
		LastResponseStatus: []int{0, 200, 503}[r.IntN(3)], LastError: s(), CreatedAt: randTime(r), QueuedAt: randTime(r),
		UpdatedAt: randTime(r), NextAttemptAt: randTime(r), DeliveredAt: randTime(r), EventType: s(),
		EventStatus: event.Status(r.IntN(6)), EventAttempts: r.IntN(9), EventError: s(), CompletedAt: randTime(r),
		EventAcceptedAt: randTime(r), TraceParent: s(), TraceState: s()}
	for range r.IntN(4) {
		cb.History = append(cb.History, Delivery{Number: r.IntN(5), StartedAt: randTime(r), Duration: time.Duration(r.Int64N(1e10)),
			ResponseStatus: []int{0, 204, 500}[r.IntN(3)], Outcome: event.CallbackStatus(1 + r.IntN(5)), Error: s(), Note: s()})
	}
	return cb
}

// The hand-written encoders write exactly encoding/json's bytes, and fail
// where it fails (a status with no name).
func TestEncodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		rec := randRecord(r)
		got, gerr := marshalRecord(&rec)
		want, werr := json.Marshal(rec)
		if (gerr != nil) != (werr != nil) || !bytes.Equal(got, want) && werr == nil {
			t.Fatalf("record %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
		cb := randCallback(r)
		got, gerr = marshalCallback(&cb)
		want, werr = json.Marshal(cb)
		if (gerr != nil) != (werr != nil) || !bytes.Equal(got, want) && werr == nil {
			t.Fatalf("callback %d:\n got %s (%v)\nwant %s (%v)", i, got, gerr, want, werr)
		}
	}
}

// Every field of the four types is written: a field added to one of them
// and not to its encoder shows here, as a zero-value-only field would not
// in the random test.
func TestEncodersKnowEveryField(t *testing.T) {
	for _, tc := range []struct {
		typ    reflect.Type
		fields int
	}{
		{reflect.TypeFor[Record](), 21}, {reflect.TypeFor[Attempt](), 7},
		{reflect.TypeFor[Callback](), 23}, {reflect.TypeFor[Delivery](), 7},
	} {
		if n := tc.typ.NumField(); n != tc.fields {
			t.Errorf("%s has %d fields; marshalRecord and marshalCallback (encode.go) know %d: add the new ones there, then here", tc.typ, n, tc.fields)
		}
	}
}
