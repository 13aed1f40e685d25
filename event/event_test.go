package event_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/boomerang-events/boomerang/event"
)

// httpStatuser is how handler.NewGinEventHandler picks an answer's status.
type httpStatuser interface{ HTTPStatus() int }

var (
	_ event.EventMessage[UserCreatedPayload] = (*event.BaseEventMessage[UserCreatedPayload])(nil)
	_ event.EventHandler[UserCreatedPayload] = fakeHandler{}
	_ httpStatuser                           = (*event.FieldError)(nil)
	_ httpStatuser                           = (*event.DuplicateError)(nil)
)

// fakeHandler is the smallest EventHandler: it decodes the base fields and
// does nothing around the business logic.
type fakeHandler struct{}

func (fakeHandler) BeforeHandle(context.Context, event.EventMessage[UserCreatedPayload]) error {
	return nil
}

func (fakeHandler) AfterHandle(context.Context, event.EventMessage[UserCreatedPayload], error) error {
	return nil
}

func (fakeHandler) UnmarshalEventMessage(data []byte) (event.EventMessage[UserCreatedPayload], error) {
	return event.BaseEventMessageUnmarshaller[UserCreatedPayload](data)
}

// seedJSON is the example event of the original package's documentation.
const seedJSON = `{
  "event_type": "user_created",
  "timestamp": "2024-08-20T05:21:19.143357839Z",
  "payload": {
    "user_id": "12345",
    "username": "johndoe"
  },
  "metadata": {
    "source": "user_service",
    "version": "1.0"
  }
}`

var allStatuses = []struct {
	s    event.Status
	name string
}{
	{event.StatusQueued, "queued"},
	{event.StatusProcessing, "processing"},
	{event.StatusRetrying, "retrying"},
	{event.StatusSucceeded, "succeeded"},
	{event.StatusFailed, "failed"},
	{event.StatusCanceled, "canceled"},
}

func TestStatusJSONRoundTrip(t *testing.T) {
	type doc struct {
		Status event.Status `json:"status"`
	}
	for _, tt := range allStatuses {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.name {
				t.Errorf("String: got %q, want %q", got, tt.name)
			}
			data, err := json.Marshal(doc{tt.s})
			if err != nil {
				t.Fatalf("Marshal: got error %v, want nil", err)
			}
			if want := `{"status":"` + tt.name + `"}`; string(data) != want {
				t.Errorf("Marshal: got %s, want %s", data, want)
			}
			var back doc
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal(%s): got error %v, want nil", data, err)
			}
			if back.Status != tt.s {
				t.Errorf("Unmarshal(%s): got %v, want %v", data, back.Status, tt.s)
			}
			if got, err := event.ParseStatus(tt.name); err != nil || got != tt.s {
				t.Errorf("ParseStatus(%q): got (%v, %v), want (%v, nil)", tt.name, got, err, tt.s)
			}
		})
	}
}

func TestStatusInvalid(t *testing.T) {
	for _, s := range []event.Status{0, event.StatusCanceled + 1, 255} {
		t.Run(fmt.Sprintf("marshal %d", s), func(t *testing.T) {
			if data, err := json.Marshal(struct{ S event.Status }{s}); err == nil {
				t.Errorf("Marshal(Status(%d)): got %s, want an error", s, data)
			}
			if got, want := s.String(), fmt.Sprintf("Status(%d)", s); got != want {
				t.Errorf("String: got %q, want %q", got, want)
			}
		})
	}
	for _, name := range []string{"", "Queued", "QUEUED", "done", " queued", "Status(1)", "none", "delivered"} {
		t.Run(fmt.Sprintf("parse %q", name), func(t *testing.T) {
			if got, err := event.ParseStatus(name); err == nil {
				t.Errorf("ParseStatus(%q): got %v, want an error", name, got)
			}
			s := event.StatusProcessing
			if err := json.Unmarshal([]byte(fmt.Sprintf("%q", name)), &s); err == nil {
				t.Errorf("Unmarshal(%q): got %v, want an error", name, s)
			}
		})
	}
	t.Run("unmarshal number", func(t *testing.T) {
		var s event.Status
		if err := json.Unmarshal([]byte(`1`), &s); err == nil {
			t.Errorf("Unmarshal(1): got %v, want an error", s)
		}
	})
}

func TestStatusTerminal(t *testing.T) {
	tests := []struct {
		s    event.Status
		want bool
	}{
		{event.StatusQueued, false},
		{event.StatusProcessing, false},
		{event.StatusRetrying, false},
		{event.StatusSucceeded, true},
		{event.StatusFailed, true},
		{event.StatusCanceled, true},
		{0, false},
		{event.StatusCanceled + 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.s.String(), func(t *testing.T) {
			if got := tt.s.Terminal(); got != tt.want {
				t.Errorf("%v.Terminal(): got %t, want %t", tt.s, got, tt.want)
			}
		})
	}
}

func TestCallbackStatusJSONRoundTrip(t *testing.T) {
	type doc struct {
		Callback event.CallbackStatus `json:"callback"`
	}
	tests := []struct {
		s    event.CallbackStatus
		name string
	}{
		{event.CallbackNone, "none"},
		{event.CallbackPending, "pending"},
		{event.CallbackRetrying, "retrying"},
		{event.CallbackDelivered, "delivered"},
		{event.CallbackFailed, "failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.name {
				t.Errorf("String: got %q, want %q", got, tt.name)
			}
			data, err := json.Marshal(doc{tt.s})
			if err != nil {
				t.Fatalf("Marshal: got error %v, want nil", err)
			}
			if want := `{"callback":"` + tt.name + `"}`; string(data) != want {
				t.Errorf("Marshal: got %s, want %s", data, want)
			}
			var back doc
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal(%s): got error %v, want nil", data, err)
			}
			if back.Callback != tt.s {
				t.Errorf("Unmarshal(%s): got %v, want %v", data, back.Callback, tt.s)
			}
		})
	}
}

func TestCallbackStatusInvalid(t *testing.T) {
	for _, s := range []event.CallbackStatus{0, event.CallbackFailed + 1, 255} {
		t.Run(fmt.Sprintf("marshal %d", s), func(t *testing.T) {
			if data, err := json.Marshal(struct{ S event.CallbackStatus }{s}); err == nil {
				t.Errorf("Marshal(CallbackStatus(%d)): got %s, want an error", s, data)
			}
			if got, want := s.String(), fmt.Sprintf("CallbackStatus(%d)", s); got != want {
				t.Errorf("String: got %q, want %q", got, want)
			}
		})
	}
	for _, name := range []string{"", "None", "DELIVERED", "sent", "queued", "succeeded"} {
		t.Run(fmt.Sprintf("unmarshal %q", name), func(t *testing.T) {
			s := event.CallbackPending
			if err := json.Unmarshal([]byte(fmt.Sprintf("%q", name)), &s); err == nil {
				t.Errorf("Unmarshal(%q): got %v, want an error", name, s)
			}
		})
	}
}

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		wantErr bool
	}{
		{"empty", "", true},
		{"one letter", "a", false},
		{"seed event type", "user_created", false},
		{"128 characters", strings.Repeat("a", 128), false},
		{"129 characters", strings.Repeat("a", 129), true},
		{"allowed punctuation", "Billing.invoice_paid:v2-beta", false},
		{"digits and upper case", "ABC123", false},
		{"generated id", event.NewID(), false},
		{"space", "user created", true},
		{"slash", "user/created", true},
		{"unicode", "usér", true},
		{"emoji", "user🎉", true},
		{"at sign", "user@created", true},
		{"tab", "user\tcreated", true},
		{"NUL", "user\x00", true},
		{"plus", "a+b", true},
	}
	fields := []struct {
		field    string
		validate func(string) error
	}{
		{"event_type", event.ValidateEventType},
		{"id", event.ValidateID},
	}
	for _, f := range fields {
		for _, tt := range tests {
			t.Run(f.field+"/"+tt.name, func(t *testing.T) {
				err := f.validate(tt.s)
				if !tt.wantErr {
					if err != nil {
						t.Errorf("validate(%q): got %v, want nil", tt.s, err)
					}
					return
				}
				if err == nil {
					t.Fatalf("validate(%q): got nil, want an error", tt.s)
				}
				var fe *event.FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("validate(%q): got %T, want *event.FieldError", tt.s, err)
				}
				if fe.Field != f.field {
					t.Errorf("Field: got %q, want %q", fe.Field, f.field)
				}
				if fe.Msg == "" {
					t.Error("Msg: got empty, want what is wrong")
				}
				if want := f.field + ": "; !strings.HasPrefix(err.Error(), want) {
					t.Errorf("Error: got %q, want it to start with %q", err, want)
				}
				if !errors.Is(err, event.ErrInvalid) {
					t.Errorf("errors.Is(%v, ErrInvalid): got false, want true", err)
				}
				if wrapped := fmt.Errorf("decode: %w", err); !errors.Is(wrapped, event.ErrInvalid) {
					t.Errorf("errors.Is(wrapped, ErrInvalid): got false, want true")
				}
				if got := fe.HTTPStatus(); got != 400 {
					t.Errorf("HTTPStatus: got %d, want 400", got)
				}
			})
		}
	}
}

func TestFieldErrorIsOnlyErrInvalid(t *testing.T) {
	err := event.ValidateID("")
	if other := errors.New("event: invalid event"); errors.Is(err, other) {
		t.Errorf("errors.Is(%v, another error with the same text): got true, want false", err)
	}
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idBits decodes the 128 bits of an id: hi holds the Unix milliseconds in
// its top 48 bits, then the first 16 of the 80 random bits; lo holds the
// other 64.
func idBits(t *testing.T, id string) (hi, lo uint64) {
	t.Helper()
	digits, ok := strings.CutPrefix(id, "evt_")
	if !ok || len(digits) != 26 {
		t.Fatalf("id %q: want evt_ and 26 digits", id)
	}
	if strings.IndexByte(crockford, digits[0]) > 7 {
		t.Fatalf("id %q: first digit %q holds more than 3 bits", id, digits[0])
	}
	for i := 0; i < len(digits); i++ {
		v := strings.IndexByte(crockford, digits[i])
		if v < 0 {
			t.Fatalf("id %q: %q at %d is not Crockford base32", id, digits[i], i)
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	return hi, lo
}

func TestNewID(t *testing.T) {
	const n = 1000
	before := time.Now().UnixMilli()
	seen := make(map[string]bool, n)
	for range n {
		id := event.NewID()
		if seen[id] {
			t.Fatalf("NewID: got %q twice, want unique ids", id)
		}
		seen[id] = true
		if !strings.HasPrefix(id, "evt_") {
			t.Errorf("NewID: got %q, want prefix evt_", id)
		}
		if len(id) != 30 {
			t.Errorf("len(%q): got %d, want 30", id, len(id))
		}
		if err := event.ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q): got %v, want nil", id, err)
		}
	}
	after := time.Now().UnixMilli()
	const randHi = 1<<16 - 1 // the random bits in hi
	var orHi, orLo uint64
	andHi, andLo := uint64(randHi), ^uint64(0)
	for id := range seen {
		hi, lo := idBits(t, id)
		if ms := int64(hi >> 16); ms < before || ms > after {
			t.Fatalf("time in %q: got %d ms, want within [%d, %d]", id, ms, before, after)
		}
		orHi, orLo = orHi|hi&randHi, orLo|lo
		andHi, andLo = andHi&hi, andLo&lo
	}
	// Each of the 80 random bits is set in about half the ids: one that is
	// the same in all 1000 is not random.
	if orHi != randHi || orLo != ^uint64(0) {
		t.Errorf("random bits never set: got %04x%016x, want none", randHi&^orHi, ^orLo)
	}
	if andHi != 0 || andLo != 0 {
		t.Errorf("random bits always set: got %04x%016x, want none", andHi, andLo)
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	for i := range 5 {
		a := event.NewID()
		time.Sleep(2 * time.Millisecond)
		b := event.NewID()
		if a >= b {
			t.Fatalf("round %d: got %q >= %q, want an id made 2ms later to sort after", i, a, b)
		}
	}
}

func TestBaseEventMessageUnmarshaller(t *testing.T) {
	msg, err := event.BaseEventMessageUnmarshaller[UserCreatedPayload]([]byte(seedJSON))
	if err != nil {
		t.Fatalf("BaseEventMessageUnmarshaller: got error %v, want nil", err)
	}
	if got, want := msg.GetEventType(), "user_created"; got != want {
		t.Errorf("GetEventType: got %q, want %q", got, want)
	}
	if got, want := msg.GetTimestamp(), time.Date(2024, 8, 20, 5, 21, 19, 143357839, time.UTC); !got.Equal(want) {
		t.Errorf("GetTimestamp: got %s, want %s", got, want)
	}
	if got, want := msg.GetPayload(), (UserCreatedPayload{UserID: "12345", Username: "johndoe"}); got != want {
		t.Errorf("GetPayload: got %+v, want %+v", got, want)
	}
	if got, want := msg.GetMetadata(), map[string]string{"source": "user_service", "version": "1.0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GetMetadata: got %v, want %v", got, want)
	}
	if got, want := msg.GetVersion(), "1.0"; got != want {
		t.Errorf("GetVersion: got %q, want %q", got, want)
	}
	if got, want := msg.GetMetadata()[event.MetadataKeySource], "user_service"; got != want {
		t.Errorf("metadata[MetadataKeySource]: got %q, want %q", got, want)
	}

	viaHandler, err := fakeHandler{}.UnmarshalEventMessage([]byte(seedJSON))
	if err != nil {
		t.Fatalf("UnmarshalEventMessage: got error %v, want nil", err)
	}
	if got, want := viaHandler.GetPayload().Username, "johndoe"; got != want {
		t.Errorf("payload via EventHandler: got %q, want %q", got, want)
	}
}

func TestBaseEventMessageUnmarshallerWithoutMetadata(t *testing.T) {
	msg, err := event.BaseEventMessageUnmarshaller[map[string]any]([]byte(`{"event_type":"ping","payload":{"n":1}}`))
	if err != nil {
		t.Fatalf("BaseEventMessageUnmarshaller: got error %v, want nil", err)
	}
	if got := msg.GetVersion(); got != "" {
		t.Errorf("GetVersion: got %q, want \"\"", got)
	}
	if got := msg.GetMetadata(); got != nil {
		t.Errorf("GetMetadata: got %v, want nil", got)
	}
	if got := msg.GetTimestamp(); !got.IsZero() {
		t.Errorf("GetTimestamp: got %s, want the zero time", got)
	}
	if got, want := msg.GetPayload(), map[string]any{"n": 1.0}; !reflect.DeepEqual(got, want) {
		t.Errorf("GetPayload: got %v, want %v", got, want)
	}
}

func TestBaseEventMessageUnmarshallerInvalid(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"truncated", `{"event_type":"user_created"`},
		{"not an object", `["user_created"]`},
		{"timestamp not RFC 3339", `{"event_type":"user_created","timestamp":"yesterday"}`},
		{"payload of the wrong type", `{"event_type":"user_created","payload":"johndoe"}`},
		{"metadata of the wrong type", `{"event_type":"user_created","metadata":{"version":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := event.BaseEventMessageUnmarshaller[UserCreatedPayload]([]byte(tt.data))
			if err == nil {
				t.Fatalf("BaseEventMessageUnmarshaller(%s): got nil error, want one", tt.data)
			}
			if msg != nil {
				t.Errorf("BaseEventMessageUnmarshaller(%s): got message %v with the error, want nil", tt.data, msg)
			}
		})
	}
}

func TestDuplicateError(t *testing.T) {
	tests := []struct {
		name       string
		err        *event.DuplicateError
		wantStatus int
		wantText   string
	}{
		{
			name:       "conflict",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusProcessing, Conflict: true},
			wantStatus: 409,
			wantText:   "event evt-1 was already accepted with a different body",
		},
		{
			name:       "conflict wins over succeeded",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusSucceeded, Conflict: true},
			wantStatus: 409,
			wantText:   "event evt-1 was already accepted with a different body",
		},
		{
			name:       "succeeded",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusSucceeded},
			wantStatus: 200,
			wantText:   "event evt-1 already succeeded",
		},
		{
			name:       "failed",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusFailed, LastError: "upstream answered 500"},
			wantStatus: 500,
			wantText:   "event evt-1 already failed: upstream answered 500",
		},
		{
			name:       "processing",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusProcessing},
			wantStatus: 409,
			wantText:   "event evt-1 is processing; try again later",
		},
		{
			name:       "queued",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusQueued},
			wantStatus: 409,
			wantText:   "event evt-1 is queued; try again later",
		},
		{
			name:       "retrying",
			err:        &event.DuplicateError{ID: "evt-1", Status: event.StatusRetrying},
			wantStatus: 409,
			wantText:   "event evt-1 is retrying; try again later",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.HTTPStatus(); got != tt.wantStatus {
				t.Errorf("HTTPStatus: got %d, want %d", got, tt.wantStatus)
			}
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error: got %q, want %q", got, tt.wantText)
			}
			var de *event.DuplicateError
			if wrapped := fmt.Errorf("before handle: %w", tt.err); !errors.As(wrapped, &de) || de != tt.err {
				t.Errorf("errors.As(wrapped): got %v, want %v", de, tt.err)
			}
		})
	}
}

// otherKey is a context key of another package.
type otherKey struct{}

func TestAttemptsContext(t *testing.T) {
	errBoom := errors.New("boom")
	start := time.Date(2024, 8, 20, 5, 21, 19, 0, time.UTC)
	attempts := []event.Attempt{
		{Number: 1, StartedAt: start, Duration: 30 * time.Millisecond, Err: errBoom},
		{Number: 2, StartedAt: start.Add(time.Second), Duration: 20 * time.Millisecond},
	}
	tests := []struct {
		name string
		ctx  context.Context
		want []event.Attempt
	}{
		{"bare context", context.Background(), nil},
		{"other values only", context.WithValue(context.Background(), otherKey{}, attempts), nil},
		{"round trip", event.ContextWithAttempts(context.Background(), attempts), attempts},
		{"through a derived context", func() context.Context {
			ctx, cancel := context.WithCancel(event.ContextWithAttempts(context.Background(), attempts))
			t.Cleanup(cancel)
			return ctx
		}(), attempts},
		{"innermost wins", event.ContextWithAttempts(
			event.ContextWithAttempts(context.Background(), attempts), attempts[:1]), attempts[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := event.AttemptsFromContext(tt.ctx)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AttemptsFromContext: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckCallback(t *testing.T) {
	tests := []struct {
		name      string
		method    event.CallbackMethod
		format    event.CallbackFormat
		wantField string // "" for valid
	}{
		{"neither", "", "", ""},
		{"GET", event.CallbackGET, "", ""},
		{"POST cloudevents", event.CallbackPOST, event.CallbackCloudEvents, ""},
		{"GET json", event.CallbackGET, event.CallbackJSON, ""},
		{"cloudevents alone", "", event.CallbackCloudEvents, ""},
		{"lower case get", "get", "", "callback.method"},
		{"PUT", "PUT", "", "callback.method"},
		{"xml", "", "xml", "callback.format"},
		{"CloudEvents capitalised", "", "CloudEvents", "callback.format"},
		{"GET cloudevents", event.CallbackGET, event.CallbackCloudEvents, "callback.format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := event.CheckCallback(tc.method, tc.format)
			var fe *event.FieldError
			switch {
			case tc.wantField == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.wantField != "" && (!errors.As(err, &fe) || fe.Field != tc.wantField):
				t.Errorf("got %v, want a FieldError on %s", err, tc.wantField)
			}
		})
	}
}
