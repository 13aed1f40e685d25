package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The store's records are encoded on every event's path (a settled
// record and its callback at ingest, the callback again after each
// delivery), so they have encoders of their own: the same bytes as
// encoding/json (TestEncodersMatchEncodingJSON compares them on random
// records), about four times faster and with one allocation. A field added
// to Record, Attempt, Callback or Delivery must be added here too; the test
// fails until it is.

// marshalRecord returns r's JSON, as json.Marshal(r) would.
func marshalRecord(r *Record) ([]byte, error) {
	b := make([]byte, 0, 768+192*len(r.History))
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"event_type":`...)
	b = appendString(b, r.EventType)
	b = append(b, `,"status":`...)
	if b, err = appendText(b, r.Status); err != nil {
		return nil, err
	}
	b = append(b, `,"run":`...)
	b = strconv.AppendInt(b, int64(r.Run), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.Attempts), 10)
	b = appendOptString(b, `,"last_error":`, r.LastError)
	b = append(b, `,"body_hash":`...)
	b = appendString(b, r.BodyHash)
	b = appendOptString(b, `,"success_url":`, r.SuccessURL)
	b = appendOptString(b, `,"fail_url":`, r.FailURL)
	b = appendOptString(b, `,"callback_method":`, string(r.CallbackMethod))
	b = appendOptString(b, `,"callback_format":`, string(r.CallbackFormat))
	b = appendOptString(b, `,"trace_parent":`, r.TraceParent)
	b = appendOptString(b, `,"trace_state":`, r.TraceState)
	b = appendOptString(b, `,"ordering_key":`, r.OrderingKey)
	for _, t := range []struct {
		key     string
		t       time.Time
		omitted bool
	}{
		{`,"accepted_at":`, r.AcceptedAt, false},
		{`,"updated_at":`, r.UpdatedAt, false},
		{`,"first_attempt_at":`, r.FirstAttemptAt, r.FirstAttemptAt.IsZero()},
		{`,"next_attempt_at":`, r.NextAttemptAt, r.NextAttemptAt.IsZero()},
		{`,"completed_at":`, r.CompletedAt, r.CompletedAt.IsZero()},
		{`,"deliver_at":`, r.DeliverAt, r.DeliverAt.IsZero()},
	} {
		if t.omitted {
			continue
		}
		b = append(b, t.key...)
		if b, err = appendTime(b, t.t); err != nil {
			return nil, err
		}
	}
	if len(r.History) > 0 {
		b = append(b, `,"history":[`...)
		for i := range r.History {
			if i > 0 {
				b = append(b, ',')
			}
			a := &r.History[i]
			b = append(b, '{')
			if a.Run != 0 {
				b = append(b, `"run":`...)
				b = strconv.AppendInt(b, int64(a.Run), 10)
				b = append(b, ',')
			}
			b = append(b, `"attempt":`...)
			b = strconv.AppendInt(b, int64(a.Number), 10)
			b = append(b, `,"started_at":`...)
			if b, err = appendTime(b, a.StartedAt); err != nil {
				return nil, err
			}
			b = append(b, `,"duration_ns":`...)
			b = strconv.AppendInt(b, int64(a.Duration), 10)
			b = append(b, `,"outcome":`...)
			if b, err = appendText(b, a.Outcome); err != nil {
				return nil, err
			}
			b = appendOptString(b, `,"error":`, a.Error)
			b = appendOptString(b, `,"note":`, a.Note)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// marshalCallback returns c's JSON, as json.Marshal(c) would.
func marshalCallback(c *Callback) ([]byte, error) {
	b := make([]byte, 0, 768+192*len(c.History))
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"event_id":`...)
	b = appendString(b, c.EventID)
	b = appendOptString(b, `,"url":`, c.URL)
	b = appendOptString(b, `,"method":`, string(c.Method))
	b = appendOptString(b, `,"format":`, string(c.Format))
	b = append(b, `,"status":`...)
	if b, err = appendText(b, c.Status); err != nil {
		return nil, err
	}
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(c.Attempts), 10)
	if c.LastResponseStatus != 0 {
		b = append(b, `,"last_response_status":`...)
		b = strconv.AppendInt(b, int64(c.LastResponseStatus), 10)
	}
	b = appendOptString(b, `,"last_error":`, c.LastError)
	for _, t := range []struct {
		key     string
		t       time.Time
		omitted bool
	}{
		{`,"created_at":`, c.CreatedAt, false},
		{`,"queued_at":`, c.QueuedAt, false},
		{`,"updated_at":`, c.UpdatedAt, false},
		{`,"next_attempt_at":`, c.NextAttemptAt, c.NextAttemptAt.IsZero()},
		{`,"delivered_at":`, c.DeliveredAt, c.DeliveredAt.IsZero()},
	} {
		if t.omitted {
			continue
		}
		b = append(b, t.key...)
		if b, err = appendTime(b, t.t); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"event_type":`...)
	b = appendString(b, c.EventType)
	if c.EventStatus != 0 {
		b = append(b, `,"event_status":`...)
		if b, err = appendText(b, c.EventStatus); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"event_attempts":`...)
	b = strconv.AppendInt(b, int64(c.EventAttempts), 10)
	b = appendOptString(b, `,"event_error":`, c.EventError)
	b = append(b, `,"completed_at":`...)
	if b, err = appendTime(b, c.CompletedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"event_accepted_at":`...)
	if b, err = appendTime(b, c.EventAcceptedAt); err != nil {
		return nil, err
	}
	b = appendOptString(b, `,"trace_parent":`, c.TraceParent)
	b = appendOptString(b, `,"trace_state":`, c.TraceState)
	if len(c.History) > 0 {
		b = append(b, `,"history":[`...)
		for i := range c.History {
			if i > 0 {
				b = append(b, ',')
			}
			d := &c.History[i]
			b = append(b, `{"attempt":`...)
			b = strconv.AppendInt(b, int64(d.Number), 10)
			b = append(b, `,"started_at":`...)
			if b, err = appendTime(b, d.StartedAt); err != nil {
				return nil, err
			}
			b = append(b, `,"duration_ns":`...)
			b = strconv.AppendInt(b, int64(d.Duration), 10)
			if d.ResponseStatus != 0 {
				b = append(b, `,"response_status":`...)
				b = strconv.AppendInt(b, int64(d.ResponseStatus), 10)
			}
			b = append(b, `,"outcome":`...)
			if b, err = appendText(b, d.Outcome); err != nil {
				return nil, err
			}
			b = appendOptString(b, `,"error":`, d.Error)
			b = appendOptString(b, `,"note":`, d.Note)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendString appends s as encoding/json writes a string. Most of what
// the store writes (ids, types, URLs, times' neighbours) needs no escape
// and is copied; anything else is left to encoding/json itself, so the
// escapes (HTML characters, control characters, invalid UTF-8, U+2028)
// are exactly its own.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendOptString appends key and s, unless s is empty (omitempty).
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendTime appends t as time.Time.MarshalJSON writes it, with its error
// for a year it cannot write.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return nil, fmt.Errorf("store: encode time %v: year outside of range [0,9999]", t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendText appends a status's name as a JSON string, with its
// MarshalText error for a status that has none (whose String is then
// "Status(n)" or "CallbackStatus(n)").
func appendText(b []byte, v interface {
	String() string
	MarshalText() ([]byte, error)
}) ([]byte, error) {
	name := v.String()
	if strings.IndexByte(name, '(') >= 0 {
		_, err := v.MarshalText()
		return nil, err
	}
	return appendString(b, name), nil
}
