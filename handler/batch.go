package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/tracing"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

// Defaults of the batch endpoint, POST /events.
const (
	// DefaultMaxBatchEvents is the most events one POST /events takes.
	DefaultMaxBatchEvents = 500
	// DefaultMaxBatchBytes bounds the body of POST /events, as sent and
	// decompressed; each item is also bounded by MaxBodyBytes.
	DefaultMaxBatchBytes = 16 << 20
)

// itemResult is the outcome of one item of a batch, in the order sent:
// Status is what POST /event would have answered for it alone.
type itemResult struct {
	Status    int    `json:"status"`
	EventID   string `json:"event_id,omitempty"`
	StatusURL string `json:"status_url,omitempty"`
	// Event is the record already stored, for a repeat (200).
	Event *recordView `json:"event,omitempty"`
	Error string      `json:"error,omitempty"`
	Field string      `json:"field,omitempty"`
}

// accepted is the result of an event recorded for the first time.
func accepted(id string) itemResult {
	return itemResult{Status: http.StatusAccepted, EventID: id, StatusURL: statusURL(id)}
}

func statusURL(id string) string { return "/callback?event_id=" + id }

// postEvents takes a JSON array of events, Boomerang's JSON or CloudEvents
// (application/cloudevents-batch+json, which POST /event hands here too:
// CloudEvents batch mode), and records the valid ones in one group commit. Items are independent: each gets the answer POST /event
// would have given it (202, 200 with the stored record for a repeat, 409,
// 400 naming the field, 413 over max_body_bytes), in order, in a 200
// {"results": [...]}. When the store does not answer, the answer is 503
// and the items it was recording say 503 with their event_id: their
// outcome is unknown, and sending them again is safe.
func (s *Server) postEvents(c *gin.Context) {
	reqCtx := tracing.Extract(c.Request.Context(), c.Request.Header)
	parse, err := batchItemParser(c.Request.Header)
	if err != nil {
		c.JSON(http.StatusUnsupportedMediaType, gin.H{"error": err.Error()})
		return
	}
	body, berr := readBody(c.Writer, c.Request, s.cfg.MaxBatchBytes)
	if berr != nil {
		berr.respond(c)
		return
	}
	items, err := splitArray(body, s.cfg.MaxBatchEvents)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errTooManyEvents) {
			status = http.StatusRequestEntityTooLarge
		}
		c.JSON(status, gin.H{"error": err.Error(), "field": "body"})
		return
	}
	parent, traceState := tracing.Save(reqCtx)
	results := make([]itemResult, len(items))
	evs := make([]store.NewEvent, 0, len(items))
	at := make([]int, 0, len(items)) // at[j]: the item of evs[j]
	for i, raw := range items {
		if int64(len(raw)) > s.cfg.MaxBodyBytes {
			results[i] = itemResult{Status: http.StatusRequestEntityTooLarge, Error: fmt.Sprintf("event is larger than max_body_bytes (%d bytes)", s.cfg.MaxBodyBytes)}
			continue
		}
		ev, err := parse(raw, "", s.guard)
		if err != nil {
			results[i] = fieldResult(err)
			continue
		}
		ev.Record.TraceParent, ev.Record.TraceState = parent, traceState
		evs = append(evs, ev)
		at = append(at, i)
	}
	s.recordBatch(c, reqCtx, evs, at, results)
}

// recordBatch records evs (the valid items of a batch, evs[j] being item
// at[j]) in one group commit, fills in their results and answers.
func (s *Server) recordBatch(c *gin.Context, reqCtx context.Context, evs []store.NewEvent, at []int, results []itemResult) {
	if len(evs) > 0 {
		s.pace.wait(reqCtx)
		ctx, cancel := context.WithTimeout(reqCtx, s.cfg.IngestTimeout)
		defer cancel()
		errs, err := s.enqueue(ctx, evs)
		if err != nil {
			ids := make([]string, len(evs))
			for j, ev := range evs {
				ids[j] = ev.Record.ID
				results[at[j]] = itemResult{Status: http.StatusServiceUnavailable, EventID: ev.Record.ID, Error: "outcome unknown; send again (safe: a repeat is recognised)"}
			}
			s.log.Warn("batch outcome unknown: store unavailable", "events", len(evs), tracing.LogAttr(reqCtx), "err", err)
			c.Header("Retry-After", retryAfterSeconds)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "event store unavailable: outcome unknown for the items marked 503; send them again (safe: a repeat is recognised)", "results": results})
			return
		}
		for j, ev := range evs {
			results[at[j]] = s.itemOutcome(ctx, ev, errs[j])
		}
	}
	c.JSON(http.StatusOK, gin.H{"results": results})
}

// itemOutcome is the result of recording ev, whose enqueue said res: nil
// when it was created, a *store.DuplicateError for a repeat of its id.
func (s *Server) itemOutcome(ctx context.Context, ev store.NewEvent, res error) itemResult {
	id := ev.Record.ID
	var dup *store.DuplicateError
	if !errors.As(res, &dup) {
		s.cfg.Observer.EventAccepted()
		return accepted(id)
	}
	if dup.Record.BodyHash != ev.Record.BodyHash {
		return itemResult{Status: http.StatusConflict, EventID: id, Error: "event " + id + " was already accepted with a different body"}
	}
	snap, err := s.st.Get(ctx, id)
	if err != nil { // gone by retention meanwhile, or Redis stopped answering
		return itemResult{Status: http.StatusServiceUnavailable, EventID: id, Error: "a repeat of a recorded event, whose record could not be read; send it again"}
	}
	v := newView(snap, false)
	return itemResult{Status: http.StatusOK, EventID: id, Event: &v}
}

// fieldResult is the 400 result of an item that failed validation.
func fieldResult(err error) itemResult {
	var fe *event.FieldError
	if errors.As(err, &fe) {
		return itemResult{Status: http.StatusBadRequest, Error: fe.Error(), Field: fe.Field}
	}
	return itemResult{Status: http.StatusBadRequest, Error: err.Error()}
}

// batchItemParser returns the parser of the items of a batch with header
// h: Boomerang's JSON (application/json), or CloudEvents in structured
// mode (application/cloudevents-batch+json, CloudEvents batch mode). The
// error, for any other Content-Type, is a *wire.MediaTypeError.
func batchItemParser(h http.Header) (func([]byte, string, outbound.Policy) (store.NewEvent, error), error) {
	format, err := wire.FormatOf(h)
	switch {
	case err != nil:
		return nil, err
	case format == wire.Native:
		return wire.Parse, nil
	case format == wire.CloudEventBatch:
		return wire.ParseCloudEvent, nil
	}
	return nil, &wire.MediaTypeError{Msg: "a batch is a JSON array of events: application/json, or application/cloudevents-batch+json for CloudEvents; send a single CloudEvent to POST /event"}
}

var errTooManyEvents = errors.New("too many events")

// splitArray returns the elements of the JSON array body, at most max of
// them, each as its raw bytes.
func splitArray(body []byte, max int) ([]json.RawMessage, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		return nil, errors.New("body: must be a JSON array of events")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return nil, fmt.Errorf("body: is not a valid JSON array: %w", err)
	}
	switch {
	case len(items) == 0:
		return nil, errors.New("body: the array holds no event")
	case len(items) > max:
		return nil, fmt.Errorf("body: %w: %d, at most %d per request (max_batch_events)", errTooManyEvents, len(items), max)
	}
	return items, nil
}
