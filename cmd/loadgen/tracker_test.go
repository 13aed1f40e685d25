package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	type step struct {
		accept   bool // else a callback
		id, whid string
		at       int // ms since start
		measured bool
	}
	tests := []struct {
		name  string
		steps []step
		want  CallbackResult // Delay, Statuses and the rates are checked apart
		delay time.Duration  // the max delay
	}{
		{"accept then callback", []step{
			{accept: true, id: "a", at: 10, measured: true},
			{id: "a", whid: "w-a", at: 15},
		}, CallbackResult{Accepted: 1, Received: 1}, ms(5)},
		{"callback before its 202 counts as zero delay", []step{
			{id: "a", whid: "w-a", at: 9},
			{accept: true, id: "a", at: 10, measured: true},
		}, CallbackResult{Accepted: 1, Received: 1}, 0},
		{"same event twice", []step{
			{accept: true, id: "a", at: 10, measured: true},
			{id: "a", whid: "w-a", at: 15},
			{id: "a", whid: "w-a", at: 16},
			{id: "a", whid: "", at: 17},
		}, CallbackResult{Accepted: 1, Received: 1, Duplicates: 2}, ms(5)},
		{"webhook-id reused for another event", []step{
			{accept: true, id: "a", at: 10, measured: true},
			{accept: true, id: "b", at: 10, measured: true},
			{id: "a", whid: "w", at: 15},
			{id: "b", whid: "w", at: 16},
		}, CallbackResult{Accepted: 2, Received: 1, Lost: 1, Duplicates: 1}, ms(5)},
		{"lost and unmatched", []step{
			{accept: true, id: "a", at: 10, measured: true},
			{id: "zzz", whid: "w-z", at: 15},
		}, CallbackResult{Accepted: 1, Lost: 1, Unmatched: 1}, 0},
		{"warmup events are not measured", []step{
			{accept: true, id: "w", at: 1},
			{id: "w", whid: "w-w", at: 500},
			{accept: true, id: "a", at: 10, measured: true},
			{id: "a", whid: "w-a", at: 12},
		}, CallbackResult{Accepted: 1, Received: 1}, ms(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			tr := newTracker(start)
			for _, s := range tt.steps {
				if s.accept {
					tr.accept(s.id, ms(s.at), s.measured)
				} else {
					tr.callback(s.id, s.whid, "succeeded", ms(s.at))
				}
			}
			got := tr.result(start.Add(ms(5)), time.Second)
			if got.Accepted != tt.want.Accepted || got.Received != tt.want.Received || got.Lost != tt.want.Lost ||
				got.Duplicates != tt.want.Duplicates || got.Unmatched != tt.want.Unmatched {
				t.Errorf("got accepted %d received %d lost %d duplicates %d unmatched %d, want %d %d %d %d %d",
					got.Accepted, got.Received, got.Lost, got.Duplicates, got.Unmatched,
					tt.want.Accepted, tt.want.Received, tt.want.Lost, tt.want.Duplicates, tt.want.Unmatched)
			}
			if got := tr.delays.Max(); got != tt.delay {
				t.Errorf("got max delay %v, want %v", got, tt.delay)
			}
			if got.Statuses["succeeded"] != got.Received {
				t.Errorf("got statuses %v, want %d succeeded", got.Statuses, got.Received)
			}
			if p := tr.pending(); p != tt.want.Lost {
				t.Errorf("got %d pending, want %d", p, tt.want.Lost)
			}
		})
	}
}

func TestTrackerSustainedRate(t *testing.T) {
	start := time.Now()
	tr := newTracker(start)
	for i, id := range []string{"a", "b", "c", "d"} {
		tr.accept(id, time.Duration(i)*time.Millisecond, true)
		tr.callback(id, "w-"+id, "succeeded", 3*time.Second) // 1s after the load's end at 2s
	}
	got := tr.result(start.Add(2*time.Second), time.Second)
	if got.TailSeconds != 1 || got.SustainedEPS != 2 {
		t.Errorf("got tail %vs, sustained %v/s; want 1s, 4 events / 2s = 2/s", got.TailSeconds, got.SustainedEPS)
	}
}

func TestTrackerServeHTTP(t *testing.T) {
	tr := newTracker(time.Now())
	tr.accept("a", 0, true)
	tests := []struct {
		name, method, body string
		want               int
	}{
		{"callback", http.MethodPost, `{"event_id":"a","event_type":"x","status":"succeeded","attempts":1,"error":"","completed_at":"2026-01-01T00:00:00Z"}`, http.StatusOK},
		{"no event_id", http.MethodPost, `{"status":"succeeded"}`, http.StatusBadRequest},
		{"not json", http.MethodPost, `nope`, http.StatusBadRequest},
		{"get", http.MethodGet, ``, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/cb", strings.NewReader(tt.body))
			req.Header.Set("webhook-id", "cb_a_1")
			rec := httptest.NewRecorder()
			tr.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("got status %d, want %d", rec.Code, tt.want)
			}
		})
	}
	if got := tr.result(time.Now(), time.Second); got.Received != 1 || got.Malformed != 2 {
		t.Errorf("got received %d malformed %d, want 1 and 2", got.Received, got.Malformed)
	}
}
