package boomerang_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/boomerang-events/boomerang"
	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/redistest"
)

// userCreated is the data of the CloudEvents the SDK sends.
type userCreated struct {
	UserID string `json:"user_id"`
}

// The official CloudEvents SDK for Go is a producer POST /event takes as
// it is: its HTTP client's events, in structured and in binary mode, are
// accepted (202), stored as the Boomerang events of the same content,
// shown by GET /events/{id}, run by typed logic that sees their metadata,
// and a resend (in either mode) is a repeat (200); data that is not JSON
// is refused.
func TestCloudEventsSDKInterop(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		const eventType = "com.example.user.created"
		eng := newEngine(t, testConfig(b))
		var mu sync.Mutex // guards seen
		seen := map[string]event.EventMessage[userCreated]{}
		err := boomerang.Handle(eng, eventType, func(ctx context.Context, msg event.EventMessage[userCreated]) error {
			mu.Lock()
			defer mu.Unlock()
			seen[msg.GetPayload().UserID] = msg
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(eng.Handler()) // on 127.0.0.1
		t.Cleanup(srv.Close)
		start(t, eng)

		client, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(srv.URL + "/event"))
		if err != nil {
			t.Fatal(err)
		}
		// send sends e in the encoding of ctx and returns the status
		// Boomerang answered.
		send := func(ctx context.Context, e cloudevents.Event) int {
			t.Helper()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			res := client.Send(ctx, e)
			var httpRes *cehttp.Result
			if !cloudevents.ResultAs(res, &httpRes) {
				t.Fatalf("send %s: got %v, want an HTTP answer", e.ID(), res)
			}
			return httpRes.StatusCode
		}
		newEvent := func(id, userID string) cloudevents.Event {
			e := cloudevents.NewEvent()
			e.SetID(id)
			e.SetSource("/users")
			e.SetType(eventType)
			e.SetSubject("user/" + userID + " zoë")
			e.SetTime(time.Date(2024, 8, 20, 5, 21, 19, 143357839, time.UTC))
			e.SetExtension("tenant", "acme")
			e.SetExtension("attempt", 2)
			if err := e.SetData(cloudevents.ApplicationJSON, userCreated{UserID: userID}); err != nil {
				t.Fatal(err)
			}
			return e
		}
		structured := cloudevents.WithEncodingStructured(context.Background())
		binary := cloudevents.WithEncodingBinary(context.Background())

		for _, tc := range []struct {
			mode     string
			ctx      context.Context
			id, user string
		}{
			{"structured", structured, "sdk-structured", "41"},
			{"binary", binary, "sdk-binary", "42"},
		} {
			t.Run(tc.mode, func(t *testing.T) {
				e := newEvent(tc.id, tc.user)
				if code := send(tc.ctx, e); code != http.StatusAccepted {
					t.Fatalf("first send: got %d, want 202", code)
				}
				// GET /events/{id}: the record and the payload.
				resp, err := http.Get(srv.URL + "/events/" + tc.id)
				if err != nil {
					t.Fatal(err)
				}
				var rec struct {
					EventType string          `json:"event_type"`
					Payload   json.RawMessage `json:"payload"`
				}
				err = json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || rec.EventType != eventType || string(rec.Payload) != `{"user_id":"`+tc.user+`"}` {
					t.Errorf("GET /events/%s: got %d %+v (%v), want type %s and the data as payload", tc.id, resp.StatusCode, rec, err, eventType)
				}
				// The body stored (and forwarded): Boomerang's JSON.
				body, err := eng.Store().Body(t.Context(), tc.id)
				want := `{"id":"` + tc.id + `","event_type":"` + eventType + `","timestamp":"2024-08-20T05:21:19.143357839Z",` +
					`"payload":{"user_id":"` + tc.user + `"},"metadata":{"attempt":"2","source":"/users","subject":"user/` + tc.user + ` zoë","tenant":"acme"}}`
				if err != nil || string(body) != want {
					t.Errorf("stored body:\ngot  %s (%v)\nwant %s", body, err, want)
				}
				// The same event again, in either mode: a repeat.
				if code := send(structured, e); code != http.StatusOK {
					t.Errorf("resend, structured: got %d, want 200", code)
				}
				if code := send(binary, e); code != http.StatusOK {
					t.Errorf("resend, binary: got %d, want 200", code)
				}
				// The same id with other data: a conflict.
				if code := send(tc.ctx, newEvent(tc.id, "other")); code != http.StatusConflict {
					t.Errorf("same id, other data: got %d, want 409", code)
				}
				// Typed logic ran it once, with its metadata.
				deadline := time.Now().Add(10 * time.Second)
				for {
					mu.Lock()
					msg := seen[tc.user]
					mu.Unlock()
					if msg != nil {
						md := msg.GetMetadata()
						if msg.GetEventType() != eventType || md["source"] != "/users" || md["subject"] != "user/"+tc.user+" zoë" || md["tenant"] != "acme" {
							t.Errorf("logic got type %q and metadata %v, want %s with source, subject and tenant", msg.GetEventType(), md, eventType)
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the logic did not run %s within 10s", tc.id)
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}

		t.Run("data that is not JSON", func(t *testing.T) {
			e := newEvent("sdk-text", "43")
			if err := e.SetData(cloudevents.TextPlain, "hello"); err != nil {
				t.Fatal(err)
			}
			if code := send(binary, e); code != http.StatusUnsupportedMediaType {
				t.Errorf("binary: got %d, want 415", code)
			}
			if code := send(structured, e); code != http.StatusBadRequest {
				t.Errorf("structured: got %d, want 400 (datacontenttype)", code)
			}
		})
	})
}
