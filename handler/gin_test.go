package handler_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/retry"
	"github.com/cenkalti/backoff/v4"
	"github.com/gin-gonic/gin"
)

func init() { gin.SetMode(gin.TestMode) }

type payload struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

// fakeHandler is an event.EventHandler that records its calls.
type fakeHandler struct {
	beforeErr error
	afterErr  error
	calls     []string
	result    error
	attempts  []event.Attempt
}

var _ event.EventHandler[payload] = (*fakeHandler)(nil)

func (f *fakeHandler) UnmarshalEventMessage(data []byte) (event.EventMessage[payload], error) {
	f.calls = append(f.calls, "unmarshal")
	return event.BaseEventMessageUnmarshaller[payload](data)
}

func (f *fakeHandler) BeforeHandle(ctx context.Context, msg event.EventMessage[payload]) error {
	f.calls = append(f.calls, "before")
	return f.beforeErr
}

func (f *fakeHandler) AfterHandle(ctx context.Context, msg event.EventMessage[payload], result error) error {
	f.calls = append(f.calls, "after")
	f.result = result
	f.attempts = event.AttemptsFromContext(ctx)
	return f.afterErr
}

const seedEvent = `{"event_type":"user_created","timestamp":"2024-08-20T05:21:19.143357839Z",
 "payload":{"user_id":"12345","username":"johndoe"},"metadata":{"source":"user_service","version":"1.0"}}`

func TestNewGinEventHandler(t *testing.T) {
	fastRetry := handler.WithRetryPolicy(handler.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond})
	errBoom := errors.New("boom")
	tests := []struct {
		name         string
		body         string
		eh           *fakeHandler
		logic        func(n int) error // n is the attempt number
		opts         []handler.Option
		wantCode     int
		wantBody     string
		wantCalls    string
		wantAttempts int
	}{
		{name: "success", body: seedEvent, eh: &fakeHandler{}, logic: func(int) error { return nil },
			wantCode: 200, wantBody: `{"status":"success"}`, wantCalls: "unmarshal before after", wantAttempts: 1},
		{name: "retried until success", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic: func(n int) error {
				if n < 3 {
					return errBoom
				}
				return nil
			},
			wantCode: 200, wantBody: `{"status":"success"}`, wantCalls: "unmarshal before after", wantAttempts: 3},
		{name: "retries exhausted", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic:    func(int) error { return errBoom },
			wantCode: 500, wantBody: `{"error":"boom"}`, wantCalls: "unmarshal before after", wantAttempts: 3},
		{name: "permanent error", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic:    func(int) error { return backoff.Permanent(errBoom) },
			wantCode: 500, wantBody: `{"error":"boom"}`, wantCalls: "unmarshal before after", wantAttempts: 1},
		{name: "permanent error of retry", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic:    func(int) error { return retry.Permanent(errBoom) },
			wantCode: 500, wantBody: `{"error":"boom"}`, wantCalls: "unmarshal before after", wantAttempts: 1},
		// A panic is an error of its attempt, retried as the engine's
		// workers retry it.
		{name: "panic", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic:    func(int) error { panic("bad") },
			wantCode: 500, wantBody: `{"error":"business logic panicked: bad"}`, wantCalls: "unmarshal before after", wantAttempts: 3},
		{name: "panic then success", body: seedEvent, eh: &fakeHandler{}, opts: []handler.Option{fastRetry},
			logic: func(n int) error {
				if n == 1 {
					panic("bad")
				}
				return nil
			},
			wantCode: 200, wantBody: `{"status":"success"}`, wantCalls: "unmarshal before after", wantAttempts: 2},
		{name: "bad json", body: `{"event_type":`, eh: &fakeHandler{}, logic: func(int) error { return nil },
			wantCode: 400, wantCalls: "unmarshal"},
		{name: "before fails", body: seedEvent, eh: &fakeHandler{beforeErr: errBoom}, logic: func(int) error { return nil },
			wantCode: 500, wantBody: `{"error":"boom"}`, wantCalls: "unmarshal before"},
		{name: "before refuses a field", body: seedEvent, eh: &fakeHandler{beforeErr: &event.FieldError{Field: "event_type", Msg: "is required"}},
			logic: func(int) error { return nil }, wantCode: 400, wantBody: `{"error":"event_type: is required"}`, wantCalls: "unmarshal before"},
		{name: "duplicate of a success", body: seedEvent, eh: &fakeHandler{beforeErr: &event.DuplicateError{ID: "e1", Status: event.StatusSucceeded}},
			logic: func(int) error { return nil }, wantCode: 200, wantBody: `{"duplicate":true,"event_id":"e1","status":"success"}`, wantCalls: "unmarshal before"},
		{name: "after fails", body: seedEvent, eh: &fakeHandler{afterErr: errBoom}, logic: func(int) error { return nil },
			wantCode: 500, wantBody: `{"error":"boom"}`, wantCalls: "unmarshal before after", wantAttempts: 1},
		{name: "too large", body: `{"event_type":"a","payload":"` + strings.Repeat("x", 2048) + `"}`, eh: &fakeHandler{},
			opts: []handler.Option{handler.WithMaxBodyBytes(1024)}, logic: func(int) error { return nil }, wantCode: 413, wantCalls: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got event.EventMessage[payload]
			n := 0
			fn := func(c *gin.Context, msg event.EventMessage[payload]) error {
				got = msg
				n++
				return tc.logic(n)
			}
			r := gin.New()
			r.POST("/event", handler.NewGinEventHandler(fn, tc.eh, tc.opts...))
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(tc.body)))

			if w.Code != tc.wantCode {
				t.Errorf("status: got %d (%s), want %d", w.Code, w.Body, tc.wantCode)
			}
			if tc.wantBody != "" && w.Body.String() != tc.wantBody {
				t.Errorf("body: got %s, want %s", w.Body, tc.wantBody)
			}
			if calls := strings.Join(tc.eh.calls, " "); calls != tc.wantCalls {
				t.Errorf("calls: got %q, want %q", calls, tc.wantCalls)
			}
			if n != tc.wantAttempts || len(tc.eh.attempts) != tc.wantAttempts {
				t.Errorf("attempts: ran %d, reported %d, want %d", n, len(tc.eh.attempts), tc.wantAttempts)
			}
			if tc.wantAttempts > 0 && got.GetPayload().Username != "johndoe" {
				t.Errorf("payload: got %+v, want johndoe", got.GetPayload())
			}
			if tc.wantCode == 500 && tc.eh.afterErr == nil && tc.eh.beforeErr == nil && !errors.Is(tc.eh.result, errBoom) && !strings.Contains(w.Body.String(), "panicked") {
				t.Errorf("AfterHandle result: got %v, want boom", tc.eh.result)
			}
		})
	}
}

func TestGinEventHandlerKeepsPayloadTypes(t *testing.T) {
	// The decoded message is the typed one the business logic asked for.
	eh := &fakeHandler{}
	var meta map[string]string
	fn := func(c *gin.Context, msg event.EventMessage[payload]) error {
		meta = msg.GetMetadata()
		if msg.GetVersion() != "1.0" || msg.GetEventType() != "user_created" || msg.GetTimestamp().Year() != 2024 {
			t.Errorf("message: got %s %s %v", msg.GetVersion(), msg.GetEventType(), msg.GetTimestamp())
		}
		return nil
	}
	r := gin.New()
	r.POST("/event", handler.NewGinEventHandler(fn, eh))
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/event", strings.NewReader(seedEvent)))
	var out map[string]string
	json.Unmarshal(w.Body.Bytes(), &out)
	if w.Code != 200 || out["status"] != "success" || meta[event.MetadataKeySource] != "user_service" {
		t.Errorf("got %d %v, metadata %v", w.Code, out, meta)
	}
}
