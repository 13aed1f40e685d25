package handler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/store"
)

// A filter walks at most maxBulkWalk dead letters per request and answers
// next_cursor; POSTing again with it finishes the walk, each dead letter
// queued once.
func TestBulkFilterStopsAndContinues(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		batch, walk := bulkBatch, maxBulkWalk
		bulkBatch, maxBulkWalk = 2, 4
		t.Cleanup(func() { bulkBatch, maxBulkWalk = batch, walk })

		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		const n = 7
		for i := range n {
			failEvent(t, st, fmt.Sprintf("d%d", i), now.Add(time.Duration(i)*time.Millisecond), nil)
		}
		srv := NewServer(st, ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer srv.Close()
		h := srv.Handler()

		queued, body := 0, `{"filter":{"event_type":"t"}}`
		for req := 1; ; req++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/dead-letters/retry", strings.NewReader(body)))
			var got bulkResult
			if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil {
				t.Fatalf("request %d: got %d %s", req, w.Code, w.Body)
			}
			queued += got.Queued
			if req == 1 && (got.Queued != maxBulkWalk || got.NextCursor == "") {
				t.Errorf("request 1: got %+v, want %d queued and a next_cursor", got, maxBulkWalk)
			}
			if got.NextCursor == "" {
				if req != 2 {
					t.Errorf("got the last answer at request %d, want 2", req)
				}
				break
			}
			if req == 3 {
				t.Fatalf("still a next_cursor after 3 requests: %+v", got)
			}
			body = `{"filter":{"event_type":"t"},"cursor":"` + got.NextCursor + `"}`
		}
		if queued != n {
			t.Errorf("got %d queued in all, want %d", queued, n)
		}
	})
}

// failEvent records event id as failed at now, with cb as its callback.
func failEvent(t *testing.T, st *store.Redis, id string, now time.Time, cb *store.Callback) {
	t.Helper()
	ctx := context.Background()
	errs, err := st.Enqueue(ctx, now, []store.NewEvent{{Record: store.Record{ID: id, EventType: "t", BodyHash: "h"}, Body: []byte(`{}`)}})
	if err != nil || errs[0] != nil {
		t.Fatalf("enqueue %s: %v %v", id, errs, err)
	}
	jobs, _, err := st.Events().Claim(ctx, now, time.Minute, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %v %v", id, jobs, err)
	}
	rec := jobs[0].Record
	rec.Status, rec.CompletedAt, rec.LastError = event.StatusFailed, now, "boom"
	if errs, err := st.Events().Finish(ctx, now, []store.Outcome{{Lease: jobs[0].Lease, Record: rec, Callback: cb}}); err != nil || errs[0] != nil {
		t.Fatalf("finish %s: %v %v", id, errs, err)
	}
}

// A failed event whose callback is still being delivered is skipped by
// retry, with the reason, and left as it is.
func TestBulkRetrySkipsBusyEvent(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		failEvent(t, st, "busy", now, &store.Callback{ID: "cb-busy", EventID: "busy", URL: "http://example.com/cb",
			Status: event.CallbackPending, QueuedAt: now, EventStatus: event.StatusFailed})
		srv := NewServer(st, ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		defer srv.Close()
		for _, body := range []string{`{"ids":["busy"]}`, `{"filter":{"kind":"event"}}`} {
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/dead-letters/retry", strings.NewReader(body)))
			var got bulkResult
			if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil ||
				got.Skipped != 1 || got.Reasons["callback_in_delivery"] != 1 || got.Queued != 0 {
				t.Errorf("%s: got %d %s, want 200 with 1 skipped: callback_in_delivery", body, w.Code, w.Body)
			}
		}
		snap, err := st.Get(context.Background(), "busy")
		if err != nil || snap.Record.Status != event.StatusFailed {
			t.Errorf("busy: got %s (%v), want still failed", snap.Record.Status, err)
		}
	})
}
