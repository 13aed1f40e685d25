package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/store"
)

// CloudEvents 1.0 over HTTP (the HTTP protocol binding, with the JSON event
// format) on POST /event. A CloudEvent becomes the Boomerang event of the
// same content, built as an incoming and validated and stored by the same
// code, so it is stored (and forwarded, and hashed for repeats) as
// Boomerang's canonical JSON:
//
//	id                     → id
//	type                   → event_type
//	time                   → timestamp
//	data                   → payload (JSON only)
//	source, subject        → metadata "source", "subject"
//	dataschema             → metadata "dataschema"
//	other attributes       → metadata under their name (integers and
//	                         booleans in their string form)
//	callbacksuccessurl     → callback.success_url
//	callbackfailurl        → callback.fail_url
//	partitionkey           → ordering_key (the CloudEvents partitioning
//	                         extension: events of one key run in order)
//	specversion            must be "1.0"; not stored
//	datacontenttype        must name JSON; not stored
//
// Attribute names are unique within a CloudEvent, so the metadata keys
// cannot collide: source, subject and dataschema are attributes of their
// own that no extension may take, and the callback attributes never reach
// the metadata. Where one attribute comes twice, a JSON member sent twice
// is read as encoding/json reads it (the last wins, as for Boomerang's
// JSON), and a ce- header sent twice is refused: joining its values would
// change them.

// Content-Types of the CloudEvents JSON event format.
const (
	// CloudEventsJSON is one CloudEvent in structured mode.
	CloudEventsJSON = "application/cloudevents+json"
	// CloudEventsBatchJSON is a JSON array of CloudEvents in batch mode.
	CloudEventsBatchJSON = "application/cloudevents-batch+json"
)

// Format is how a request carries its event.
type Format int

// The formats of FormatOf.
const (
	// Native is Boomerang's JSON (Parse).
	Native Format = iota
	// CloudEvent is one CloudEvent in structured mode (ParseCloudEvent).
	CloudEvent
	// CloudEventBinary is one CloudEvent in binary mode: its attributes in
	// ce-* headers, its data the body (ParseCloudEventBinary).
	CloudEventBinary
	// CloudEventBatch is a batch of CloudEvents (ParseCloudEventBatch).
	CloudEventBatch
)

// MediaTypeError is why a request's Content-Type is refused: the server
// answers it 415.
type MediaTypeError struct {
	Msg string // what the client reads
}

func (e *MediaTypeError) Error() string { return e.Msg }

// FormatOf tells how a request with header h carries its event, as the
// CloudEvents HTTP binding says to tell: a Content-Type of the CloudEvents
// JSON format is structured (or batch) mode, whatever other headers say;
// else a ce-specversion header is binary mode, whose data must be JSON
// (a JSON Content-Type, or none); else the body is Boomerang's JSON. The
// error is a *MediaTypeError.
func FormatOf(h http.Header) (Format, error) {
	ct := h.Get("Content-Type")
	mt := ""
	if ct != "" {
		mt, _, _ = mime.ParseMediaType(ct) // lowercased; "" when malformed
	}
	switch {
	case mt == CloudEventsJSON:
		return CloudEvent, nil
	case mt == CloudEventsBatchJSON:
		return CloudEventBatch, nil
	case mt == "application/cloudevents" || strings.HasPrefix(mt, "application/cloudevents+") || strings.HasPrefix(mt, "application/cloudevents-batch"):
		return 0, &MediaTypeError{fmt.Sprintf("CloudEvents must be in the JSON event format, Content-Type %s or %s; got %q",
			CloudEventsJSON, CloudEventsBatchJSON, truncate(ct, 64))}
	case len(h.Values("Ce-Specversion")) > 0:
		if !JSONContentType(ct) {
			return 0, &MediaTypeError{fmt.Sprintf("CloudEvents data must be JSON: in binary mode the Content-Type must be application/json or application/*+json (or absent), got %q",
				truncate(ct, 64))}
		}
		return CloudEventBinary, nil
	case !JSONContentType(ct):
		return 0, &MediaTypeError{"Content-Type must be application/json"}
	}
	return Native, nil
}

// ParseCloudEvent decodes and validates a CloudEvent in structured mode:
// body is one JSON object (application/cloudevents+json). It returns the
// Boomerang event of the same content, as Parse would for it. idemKey, the
// Idempotency-Key header, must equal the CloudEvent's id when set. The
// error is an *event.FieldError naming the CloudEvents attribute at fault
// (or the body).
func ParseCloudEvent(body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	if err := checkBody(body, "send the CloudEvent as a JSON object"); err != nil {
		return store.NewEvent{}, err
	}
	return parseStructured(body, idemKey, guard)
}

// parseStructured is ParseCloudEvent on a body already checked as not
// empty and valid UTF-8.
func parseStructured(body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(body, &members); err != nil {
		return store.NewEvent{}, decodeError(err)
	}
	if members == nil { // the body is null
		return store.NewEvent{}, &event.FieldError{Field: "body", Msg: "must be a JSON object, got null"}
	}
	ce := cloudEvent{attrs: make(map[string]string, len(members))}
	// In order, so that of several faults the same one is named each time.
	for _, name := range slices.Sorted(maps.Keys(members)) {
		raw := members[name]
		switch {
		case name == "data":
			ce.data = raw
			continue
		case name == "data_base64":
			return store.NewEvent{}, &event.FieldError{Field: name, Msg: "is not accepted: CloudEvents data must be JSON, sent as data"}
		case !attributeName(name):
			return store.NewEvent{}, badAttributeName(name)
		}
		v, ok, err := attributeValue(name, raw)
		if err != nil {
			return store.NewEvent{}, err
		}
		if ok {
			ce.attrs[name] = v
		}
	}
	return ce.event(idemKey, guard, len(body))
}

// ParseCloudEventBinary decodes and validates a CloudEvent in binary mode:
// its attributes are the ce-* headers of h, its data is body, and the
// Content-Type of h, which FormatOf has checked names JSON, is its
// datacontenttype. Header values are decoded as the HTTP binding says: a
// quoted string is unquoted, then one round of percent-decoding is done,
// and the result must be UTF-8; a '%' not followed by two hex digits is
// kept as it is, so that a value from a sender that does not
// percent-encode (the Go SDK, for one) survives unless it holds a %XX
// sequence. Otherwise as ParseCloudEvent.
func ParseCloudEventBinary(h http.Header, body []byte, idemKey string, guard outbound.Policy) (store.NewEvent, error) {
	ce := cloudEvent{attrs: map[string]string{}, binary: true}
	for _, key := range slices.Sorted(maps.Keys(h)) {
		lower := strings.ToLower(key)
		name, ok := strings.CutPrefix(lower, "ce-")
		if !ok {
			continue
		}
		switch {
		case !attributeName(name):
			return store.NewEvent{}, badAttributeName(name)
		case name == "data" || name == "datacontenttype":
			return store.NewEvent{}, &event.FieldError{Field: name, Msg: "is not a header in binary mode: the body is the data, and its Content-Type the datacontenttype"}
		}
		if _, dup := ce.attrs[name]; dup || len(h[key]) != 1 {
			return store.NewEvent{}, &event.FieldError{Field: name, Msg: "is sent in more than one ce-" + name + " header"}
		}
		v, ok := headerValue(h[key][0])
		if !ok {
			return store.NewEvent{}, &event.FieldError{Field: name, Msg: "is not UTF-8 once percent-decoded (ce-" + name + " header)"}
		}
		ce.attrs[name] = v
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if !utf8.Valid(body) {
			return store.NewEvent{}, &event.FieldError{Field: "data", Msg: "is not valid UTF-8"}
		}
		ce.data = body
	}
	return ce.event(idemKey, guard, len(body))
}

// cloudEvent is a CloudEvent as read from either mode: its context
// attributes in their string form, and its data.
type cloudEvent struct {
	attrs  map[string]string // every attribute present (not null), data aside
	data   json.RawMessage   // the data, JSON to be validated; nil when absent
	binary bool              // read from headers: a missing attribute is named as its header
}

// Attributes that are not metadata: read into the event's fields, or only
// checked.
var notMetadata = map[string]bool{
	"specversion": true, "id": true, "type": true, "time": true, "datacontenttype": true,
	callbackSuccessAttr: true, callbackFailAttr: true, partitionKeyAttr: true,
}

// The extension attributes that carry callback URLs.
const (
	callbackSuccessAttr = "callbacksuccessurl"
	callbackFailAttr    = "callbackfailurl"
	// partitionKeyAttr is the partitioning extension's attribute, the
	// event's ordering key.
	partitionKeyAttr = "partitionkey"
)

// event checks the CloudEvents rules, then builds the incoming of the same
// content and has it validated and encoded as any event is.
func (ce *cloudEvent) event(idemKey string, guard outbound.Policy, sizeHint int) (store.NewEvent, error) {
	switch v, ok := ce.attrs["specversion"]; {
	case !ok:
		return store.NewEvent{}, ce.missing("specversion")
	case v != "1.0":
		return store.NewEvent{}, &event.FieldError{Field: "specversion", Msg: fmt.Sprintf("must be \"1.0\", got %q", truncate(v, 64))}
	}
	for _, name := range []string{"id", "source", "type"} {
		if ce.attrs[name] == "" {
			return store.NewEvent{}, ce.missing(name)
		}
	}
	for _, name := range []string{"subject", "dataschema"} {
		if v, ok := ce.attrs[name]; ok && v == "" {
			return store.NewEvent{}, &event.FieldError{Field: name, Msg: "must not be empty when present"}
		}
	}
	if v, ok := ce.attrs["datacontenttype"]; ok && !JSONContentType(v) {
		return store.NewEvent{}, &event.FieldError{Field: "datacontenttype",
			Msg: fmt.Sprintf("must be application/json or application/*+json: CloudEvents data must be JSON, got %q", truncate(v, 64))}
	}
	in := incoming{ID: ce.attrs["id"], EventType: ce.attrs["type"], Payload: ce.data}
	if v, ok := ce.attrs["time"]; ok {
		in.Timestamp = appendString(nil, v)
	}
	success, hasSuccess := ce.attrs[callbackSuccessAttr]
	fail, hasFail := ce.attrs[callbackFailAttr]
	if hasSuccess || hasFail {
		in.Callback = &callbackURLs{SuccessURL: success, FailURL: fail}
	}
	in.OrderingKey = ce.attrs[partitionKeyAttr]
	for name, v := range ce.attrs {
		if notMetadata[name] {
			continue
		}
		if in.Metadata == nil {
			in.Metadata = make(metadata, len(ce.attrs))
		}
		in.Metadata[name] = v
	}
	ev, err := in.event(idemKey, guard, sizeHint)
	return ev, cloudEventsField(err)
}

// missing is the error of a required attribute that is absent or empty.
func (ce *cloudEvent) missing(name string) error {
	msg := "is required"
	if ce.binary {
		msg += ": send it as the ce-" + name + " header"
	}
	return &event.FieldError{Field: name, Msg: msg}
}

// cloudEventsNames are the CloudEvents attributes of the fields of
// Boomerang's JSON that incoming.event may name in its errors.
var cloudEventsNames = map[string]string{
	"event_type":           "type",
	"timestamp":            "time",
	"payload":              "data",
	"callback.success_url": callbackSuccessAttr,
	"callback.fail_url":    callbackFailAttr,
	"ordering_key":         partitionKeyAttr,
}

// cloudEventsField renames the field of a FieldError of Boomerang's JSON
// to the CloudEvents attribute it came from.
func cloudEventsField(err error) error {
	var fe *event.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	if name, ok := cloudEventsNames[fe.Field]; ok {
		return &event.FieldError{Field: name, Msg: fe.Msg}
	}
	return err
}

// attributeName reports whether s is a CloudEvents attribute name: ASCII
// lowercase letters and digits.
func attributeName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func badAttributeName(name string) error {
	if name == "" {
		return &event.FieldError{Field: "body", Msg: "names an attribute with an empty name"}
	}
	return &event.FieldError{Field: truncate(name, 64), Msg: "is not a CloudEvents attribute name: lowercase letters and digits only"}
}

// attributeValue reads the value of attribute name in structured mode, in
// its string form; ok is false for null, which is absent. The attributes
// of the specification, and the callback ones, are strings; an extension
// may also be an integer (a 32-bit one, as CloudEvents' Integer) or a
// boolean, read as the string binary mode would carry: "42", "true".
func attributeValue(name string, raw json.RawMessage) (v string, ok bool, err error) {
	switch kind := jsonValueKind(raw); {
	case kind == "null":
		return "", false, nil
	case kind == "a string":
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", false, &event.FieldError{Field: name, Msg: "is not a valid JSON string"}
		}
		return v, true, nil
	case specAttribute(name):
		return "", false, &event.FieldError{Field: name, Msg: "must be a string, got " + kind}
	case kind == "a boolean":
		return string(raw), true, nil
	case kind == "a number":
		if _, err := strconv.ParseInt(string(raw), 10, 32); err == nil {
			return string(raw), true, nil
		}
		return "", false, &event.FieldError{Field: name, Msg: "must be a string, a boolean or an integer of 32 bits, got " + truncate(string(raw), 32)}
	default:
		return "", false, &event.FieldError{Field: name, Msg: "must be a string, a boolean or an integer, got " + kind}
	}
}

// specAttribute reports whether name is an attribute whose value must be a
// string: those of the specification and the callback URLs.
func specAttribute(name string) bool {
	switch name {
	case "specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema",
		callbackSuccessAttr, callbackFailAttr:
		return true
	}
	return false
}

// jsonValueKind names the kind of a valid JSON value by its first byte.
func jsonValueKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// headerValue decodes the value of a ce-* header (HTTP binding 3.1.3.2): a
// double-quoted string is unquoted (backslash escapes included), then one
// round of percent-decoding is done. A '%' not followed by two hex digits
// is kept. ok is false when the result is not UTF-8.
func headerValue(v string) (_ string, ok bool) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		for i := 1; i < len(v)-1; i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v)-1 {
				i++
				c = v[i]
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if strings.IndexByte(v, '%') >= 0 {
		b := make([]byte, 0, len(v))
		for i := 0; i < len(v); i++ {
			if v[i] == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]) {
				b = append(b, unhex(v[i+1])<<4|unhex(v[i+2]))
				i += 2
				continue
			}
			b = append(b, v[i])
		}
		v = string(b)
	}
	return v, utf8.ValidString(v)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
