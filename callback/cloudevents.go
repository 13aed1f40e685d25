package callback

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/boomerang-events/boomerang/store"
)

// A callback sent as a CloudEvent (format cloudevents) is a CloudEvents 1.0
// event in structured mode, JSON format:
//
//	Content-Type: application/cloudevents+json
//
//	{"specversion":"1.0","id":"cb_evt-1_1","source":"boomerang",
//	 "type":"boomerang.event.succeeded","subject":"evt-1",
//	 "time":"2026-12-02T09:00:00.5Z","datacontenttype":"application/json",
//	 "data":{"event_id":"evt-1","event_type":"user_created",...}}
//
// Its id is the callback's id, the webhook-id, so a redelivery is the same
// CloudEvent (source and id) and receivers drop duplicates by it; its type
// is CloudEventsTypePrefix and the event's status; its subject the event's
// id; its time when the event completed; its data the object a json
// callback sends (Payload). The signature headers cover this body.
const (
	// CloudEventsContentType is the Content-Type of a structured-mode
	// CloudEvent in JSON.
	CloudEventsContentType = "application/cloudevents+json"
	// CloudEventsTypePrefix and the event's status ("succeeded",
	// "failed") make a CloudEvent callback's type.
	CloudEventsTypePrefix = "boomerang.event."
	// DefaultCloudEventsSource is the source of CloudEvent callbacks when
	// Config.CloudEventsSource names none.
	DefaultCloudEventsSource = "boomerang"
)

// cloudEvent is a CloudEvent callback. It is built by hand, not with the
// CloudEvents SDK: a fixed object of eight attributes is less than the
// SDK would add to the binary. TestCloudEventsReceiver checks it with the
// SDK's own receiver.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// cloudEventBody returns the CloudEvent of cb from source, with data, the
// JSON body of cb (body).
func cloudEventBody(cb *store.Callback, source string, data []byte) ([]byte, error) {
	return json.Marshal(cloudEvent{
		SpecVersion: "1.0", ID: cb.ID, Source: source, Type: CloudEventsTypePrefix + cb.EventStatus.String(),
		Subject: cb.EventID, Time: cb.CompletedAt, DataContentType: "application/json", Data: data,
	})
}

// CheckCloudEventsSource reports whether s can be the source of CloudEvent
// callbacks: a non-empty URI-reference, such as "boomerang",
// "/boomerang/eu-1" or "https://events.example.com/boomerang".
func CheckCloudEventsSource(s string) error {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return errors.New("must be a URI-reference, not empty and without spaces or control characters")
	}
	if _, err := url.Parse(s); err != nil {
		return errors.New("must be a URI-reference")
	}
	return nil
}
