// Package wire reads the event wire format: the original event package's
// JSON plus id and callback. One parser and validator serves the server's
// POST /event and the library's callback-aware event handler, so both
// accept the same events and store (and hash) the same bytes.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

// incoming is the JSON of POST /event: the original event package's fields
// plus id and callback. It is also the stored body, so a forward target
// receives what the producer sent, with its id.
type incoming struct {
	ID        string          `json:"id,omitempty"`
	EventType string          `json:"event_type"`
	Timestamp json.RawMessage `json:"timestamp,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Metadata  metadata        `json:"metadata,omitempty"`
	// OrderingKey puts the event in a sequence: events with the same key
	// run one at a time, in acceptance order. Part of the body.
	OrderingKey string        `json:"ordering_key,omitempty"`
	Callback    *callbackURLs `json:"callback,omitempty"`
	// DeliverAt (an RFC 3339 time) or Delay (a duration: a Go duration
	// string such as "90s", or a number of seconds) schedule the first
	// attempt. Not part of the stored body: when an event runs is not
	// what it is, and a repeat sent later with the same delay is the same
	// event.
	DeliverAt json.RawMessage `json:"deliver_at,omitempty"`
	Delay     json.RawMessage `json:"delay,omitempty"`
}

// MaxDelay bounds how far ahead an event may be scheduled (deliver_at,
// delay).
const MaxDelay = 90 * 24 * time.Hour

// metadata is the metadata of an event: string values. null means absent,
// for the object (as for any field) and for each value: a key whose value
// is null is dropped, so that the stored body never says "" where the
// producer sent null, and the same event with or without its nulls is one
// body. Any other value is refused (an *json.UnmarshalTypeError on field
// metadata).
type metadata map[string]string

// UnmarshalJSON decodes an object of strings and nulls, dropping the nulls.
func (m *metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]*string
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = nil
	for k, v := range raw {
		if v == nil {
			continue
		}
		if *m == nil {
			*m = make(metadata, len(raw))
		}
		(*m)[k] = *v
	}
	return nil
}

// callbackURLs is the callback object of an event: where its outcome is
// sent and, optionally, how (null or absent: as its route or the server
// says).
type callbackURLs struct {
	SuccessURL string               `json:"success_url"`
	FailURL    string               `json:"fail_url"`
	Method     event.CallbackMethod `json:"method,omitempty"`
	Format     event.CallbackFormat `json:"format,omitempty"`
}

// JSONContentType reports whether a Content-Type names JSON. An absent one
// is taken as JSON.
func JSONContentType(v string) bool {
	if v == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// Parse decodes and validates an event body, with encoding/json:
// bodies come from clients, and goccy/go-json (the store's codec for its own
// records) panics after a run of malformed inputs (TestParseEventMalformedRun).
// The stored body is written by appendJSON. idemKey is the
// Idempotency-Key header, the id when the body names none. The error is an
// *event.FieldError naming the field at fault.
func Parse(body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	if err := checkBody(body, "send the event as a JSON object"); err != nil {
		return store.NewEvent{}, err
	}
	var in incoming
	if err := json.Unmarshal(body, &in); err != nil {
		return store.NewEvent{}, decodeError(err)
	}
	return in.event(idemKey, guard, len(body))
}

// checkBody refuses a body that is empty (saying what to send: hint) or
// not UTF-8. JSON between systems is UTF-8 (RFC 8259); the decoder would
// replace bad bytes in some fields and keep them in others.
func checkBody(body []byte, hint string) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &event.FieldError{Field: "body", Msg: "is empty; " + hint}
	}
	if !utf8.Valid(body) {
		return &event.FieldError{Field: "body", Msg: "is not valid UTF-8"}
	}
	return nil
}

// event validates in and returns it as stored: with its id (idemKey, or a
// new one, when it has none), its timestamp and payload canonical, and its
// empty callback dropped. sizeHint is the length of the body it came from.
// The error is an *event.FieldError naming the field (of Boomerang's JSON)
// at fault.
func (in *incoming) event(idemKey string, guard outbound.Policy, sizeHint int) (store.NewEvent, error) {
	switch {
	case in.ID == "" && idemKey != "":
		in.ID = idemKey
	case in.ID != "" && idemKey != "" && in.ID != idemKey:
		return store.NewEvent{}, &event.FieldError{Field: "id", Msg: "differs from the Idempotency-Key header"}
	}
	if in.ID != "" {
		if err := event.ValidateID(in.ID); err != nil {
			return store.NewEvent{}, err
		}
	} else {
		in.ID = event.NewID()
	}
	if err := event.ValidateEventType(in.EventType); err != nil {
		return store.NewEvent{}, err
	}
	if err := checkTimestamp(in.Timestamp); err != nil {
		return store.NewEvent{}, err
	}
	if string(in.Timestamp) == "null" {
		in.Timestamp = nil
	}
	if in.OrderingKey != "" {
		if err := event.ValidateOrderingKey(in.OrderingKey); err != nil {
			return store.NewEvent{}, err
		}
	}
	deliverAt, delay, err := schedule(in.DeliverAt, in.Delay)
	if err != nil {
		return store.NewEvent{}, err
	}
	if len(in.Payload) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, in.Payload); err != nil {
			return store.NewEvent{}, &event.FieldError{Field: "payload", Msg: "is not valid JSON: " + err.Error()}
		}
		in.Payload = buf.Bytes()
	}
	rec := store.Record{ID: in.ID, EventType: in.EventType, OrderingKey: in.OrderingKey, DeliverAt: deliverAt}
	if cb := in.Callback; cb != nil {
		if err := CheckCallbackURLs(guard, cb.SuccessURL, cb.FailURL); err != nil {
			return store.NewEvent{}, err
		}
		if err := event.CheckCallback(cb.Method, cb.Format); err != nil {
			return store.NewEvent{}, err
		}
		rec.SuccessURL, rec.FailURL = cb.SuccessURL, cb.FailURL
		rec.CallbackMethod, rec.CallbackFormat = cb.Method, cb.Format
		if cb.SuccessURL == "" && cb.FailURL == "" {
			// Nothing to deliver: how it would be sent is moot.
			in.Callback = nil
			rec.CallbackMethod, rec.CallbackFormat = "", ""
		}
	}
	stored := in.appendJSON(make([]byte, 0, sizeHint+64))
	rec.BodyHash = store.HashBody(stored)
	return store.NewEvent{Record: rec, Body: stored, Delay: delay}, nil
}

// CheckInRequest refuses what an event run in the request (library mode,
// handler.NewGinEventHandler) cannot honour: an ordering key or a
// schedule, which need the engine's queue. The error is an
// *event.FieldError naming the field.
func CheckInRequest(ev store.NewEvent) error {
	const why = "is not supported when the event runs in the request (library mode); send it to an engine's POST /event"
	switch {
	case ev.Record.OrderingKey != "":
		return &event.FieldError{Field: "ordering_key", Msg: why}
	case !ev.Record.DeliverAt.IsZero():
		return &event.FieldError{Field: "deliver_at", Msg: why}
	case ev.Delay > 0:
		return &event.FieldError{Field: "delay", Msg: why}
	}
	return nil
}

// schedule reads deliver_at and delay, at most one of them: an absolute
// time, or a delay from when the event is recorded.
func schedule(at, delay json.RawMessage) (time.Time, time.Duration, error) {
	if string(at) == "null" {
		at = nil
	}
	if string(delay) == "null" {
		delay = nil
	}
	switch {
	case len(at) > 0 && len(delay) > 0:
		return time.Time{}, 0, &event.FieldError{Field: "delay", Msg: "give deliver_at or delay, not both"}
	case len(at) > 0:
		var s string
		if json.Unmarshal(at, &s) != nil {
			return time.Time{}, 0, &event.FieldError{Field: "deliver_at", Msg: "must be a string with an RFC 3339 time"}
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, 0, &event.FieldError{Field: "deliver_at", Msg: fmt.Sprintf("must be an RFC 3339 time such as 2026-12-02T15:04:05Z, got %q", truncate(s, 64))}
		}
		if off, bad := offsetOutOfRange(s); bad {
			return time.Time{}, 0, &event.FieldError{Field: "deliver_at", Msg: "offset must be from -23:59 to +23:59 (RFC 3339), got " + off}
		}
		if time.Until(t) > MaxDelay {
			return time.Time{}, 0, &event.FieldError{Field: "deliver_at", Msg: fmt.Sprintf("is more than %d days ahead", int(MaxDelay.Hours()/24))}
		}
		return t.UTC(), 0, nil
	case len(delay) > 0:
		var d time.Duration
		var s string
		var secs float64
		switch {
		case json.Unmarshal(delay, &s) == nil:
			var err error
			if d, err = time.ParseDuration(s); err != nil {
				return time.Time{}, 0, &event.FieldError{Field: "delay", Msg: fmt.Sprintf("must be a duration such as \"90s\" or \"1h30m\", or a number of seconds, got %q", truncate(s, 64))}
			}
		case json.Unmarshal(delay, &secs) == nil && secs <= MaxDelay.Seconds():
			d = time.Duration(secs * float64(time.Second))
		default:
			return time.Time{}, 0, &event.FieldError{Field: "delay", Msg: "must be a duration such as \"90s\", or a number of seconds, at most 90 days"}
		}
		if d < 0 || d > MaxDelay {
			return time.Time{}, 0, &event.FieldError{Field: "delay", Msg: fmt.Sprintf("must be from 0 to %d days, got %s", int(MaxDelay.Hours()/24), d)}
		}
		return time.Time{}, d, nil
	}
	return time.Time{}, 0, nil
}

// appendJSON appends the event as stored: its fields in order, the raw ones
// (timestamp, payload) as validated, metadata sorted by key, so that the
// same event always gives the same bytes and the same BodyHash. The
// callback's method and format are written only when the producer named
// them, so a body without them has the bytes, and the hash, it had before
// they existed. Written by hand: it was the largest single cost of ingest
// through a JSON encoder, which re-validates the raw fields it is handed.
func (in *incoming) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, in.ID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, in.EventType)
	if len(in.Timestamp) > 0 {
		b = append(b, `,"timestamp":`...)
		b = append(b, in.Timestamp...)
	}
	if len(in.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, in.Payload...)
	}
	if len(in.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		for i, k := range slices.Sorted(maps.Keys(in.Metadata)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, in.Metadata[k])
		}
		b = append(b, '}')
	}
	if in.OrderingKey != "" {
		b = append(b, `,"ordering_key":`...)
		b = appendString(b, in.OrderingKey)
	}
	if in.Callback != nil {
		b = append(b, `,"callback":{"success_url":`...)
		b = appendString(b, in.Callback.SuccessURL)
		b = append(b, `,"fail_url":`...)
		b = appendString(b, in.Callback.FailURL)
		if m := in.Callback.Method; m != "" {
			b = append(b, `,"method":`...)
			b = appendString(b, string(m))
		}
		if f := in.Callback.Format; f != "" {
			b = append(b, `,"format":`...)
			b = appendString(b, string(f))
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s, valid UTF-8, as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func checkTimestamp(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && !bytes.ContainsRune(raw, '\\') {
		s = string(raw[1 : len(raw)-1]) // a plain string token: no escapes to decode
	} else if json.Unmarshal(raw, &s) != nil {
		return &event.FieldError{Field: "timestamp", Msg: "must be a string with an RFC 3339 time"}
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return &event.FieldError{Field: "timestamp", Msg: fmt.Sprintf("must be an RFC 3339 time such as 2024-08-20T05:21:19Z, got %q", truncate(s, 64))}
	}
	if off, ok := offsetOutOfRange(s); ok {
		return &event.FieldError{Field: "timestamp", Msg: fmt.Sprintf("offset must be from -23:59 to +23:59 (RFC 3339), got %s", off)}
	}
	return nil
}

// offsetOutOfRange returns the numeric offset that ends s, a time that
// time.Parse took as RFC 3339, if its hours exceed 23 or its minutes 59.
// time.Parse accepts any two digits there (+24:00, +23:60, +99:00 in some
// versions); RFC 3339's time-numoffset does not.
func offsetOutOfRange(s string) (string, bool) {
	if len(s) < 6 {
		return "", false
	}
	off := s[len(s)-6:]
	if (off[0] != '+' && off[0] != '-') || off[3] != ':' {
		return "", false // "Z"
	}
	hh, err1 := strconv.Atoi(off[1:3])
	mm, err2 := strconv.Atoi(off[4:6])
	if err1 != nil || err2 != nil || hh > 23 || mm > 59 {
		return off, true
	}
	return "", false
}

// decodeError turns a json decoding error into a FieldError.
func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &event.FieldError{Field: "body", Msg: fmt.Sprintf("is not valid JSON: %s (at byte %d)", syn.Error(), syn.Offset)}
	case errors.As(err, &typ) && typ.Field == "":
		return &event.FieldError{Field: "body", Msg: "must be a JSON object, got " + typ.Value}
	case errors.As(err, &typ):
		return &event.FieldError{Field: typ.Field, Msg: fmt.Sprintf("must be %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)}
	default:
		return &event.FieldError{Field: "body", Msg: "is not valid JSON: " + err.Error()}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "map", "struct", "ptr":
		return "an object"
	default:
		return "a " + goKind
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// CheckCallbackURLs validates an event's callback URLs under guard (empty
// ones are absent). The error is an *event.FieldError naming the field at
// fault, callback.success_url or callback.fail_url.
func CheckCallbackURLs(guard outbound.Policy, successURL, failURL string) error {
	for _, u := range [...]struct{ field, url string }{
		{"callback.success_url", successURL},
		{"callback.fail_url", failURL},
	} {
		if u.url == "" {
			continue
		}
		if err := guard.CheckURL(u.url); err != nil {
			return &event.FieldError{Field: u.field, Msg: strings.TrimPrefix(err.Error(), "outbound: ")}
		}
	}
	return nil
}
