package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// MaxCallbackBytes is the most of a callback's body Verify reads; a
// Boomerang callback is a few hundred bytes.
const MaxCallbackBytes = 64 << 10

// ErrSignature is the error of a callback whose Standard Webhooks headers
// are missing or malformed, whose webhook-timestamp is more than 5 minutes
// from now, or whose signatures match none of the secrets. Answer it with
// a 4xx other than 408 or 429: Boomerang then stops delivering it.
var ErrSignature = errors.New("client: bad callback signature")

// CallbackPayload is an event's outcome as Boomerang sends it to the
// event's success_url or fail_url.
type CallbackPayload struct {
	// WebhookID is the webhook-id header: the same on every redelivery of
	// one outcome, so drop duplicates by it.
	WebhookID string `json:"-"`
	EventID   string `json:"event_id"`
	// EventType is "" in a GET callback, which does not carry it.
	EventType string `json:"event_type"`
	Status    Status `json:"status"`
	// Attempts is the number of attempts the event took.
	Attempts int `json:"attempts"`
	// Error is the last error of a failed event.
	Error string `json:"error,omitempty"`
	// CompletedAt is when the event finished; zero in a GET callback.
	CompletedAt time.Time `json:"completed_at"`
}

// Verifier checks the signatures of callbacks, made with any of its
// secrets. It is safe for concurrent use.
type Verifier struct {
	secrets []*standardwebhooks.Webhook
}

// NewVerifier returns a Verifier of secrets: the server's
// callback.signing_secrets, each "whsec_" and base64. A callback passes
// when it is signed with any of them, so a new secret can be added before
// the old one is removed.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("client: verifier: no secret")
	}
	v := &Verifier{}
	for i, sec := range secrets {
		raw, ok := strings.CutPrefix(sec, "whsec_")
		if !ok || raw == "" {
			return nil, fmt.Errorf(`client: verifier: secret %d: must be "whsec_" then base64`, i)
		}
		wh, err := standardwebhooks.NewWebhook(sec)
		if err != nil { // its error would quote the secret: name it by position
			return nil, fmt.Errorf(`client: verifier: secret %d: must be "whsec_" then base64`, i)
		}
		v.secrets = append(v.secrets, wh)
	}
	return v, nil
}

// VerifyCallback verifies r with secrets, as NewVerifier and Verify do. A
// receiver that verifies many callbacks makes one Verifier instead.
func VerifyCallback(r *http.Request, secrets ...string) (*CallbackPayload, error) {
	v, err := NewVerifier(secrets...)
	if err != nil {
		return nil, err
	}
	return v.Verify(r)
}

// Verify checks the Standard Webhooks signature of r, a callback from
// Boomerang, with the Standard Webhooks library (webhook-id,
// webhook-timestamp within 5 minutes, webhook-signature), then returns its
// outcome. It reads at most MaxCallbackBytes of the body.
//
// A POST callback carries the outcome as a JSON body. A GET callback
// carries event_id, status and attempts as query parameters and no body,
// and its signature is over the empty body: it proves that Boomerang sent
// a callback with that webhook-id, not that the query was not changed on
// the way. Use HTTPS for GET callbacks, or confirm the outcome with
// Client.Get. The errors are ErrSignature for a signature that does not
// verify, and others for a body or query that is not a callback.
func (v *Verifier) Verify(r *http.Request) (*CallbackPayload, error) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		return nil, fmt.Errorf("client: verify callback: method %s, want POST or GET", r.Method)
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxCallbackBytes+1))
		if err != nil {
			return nil, fmt.Errorf("client: verify callback: read body: %w", err)
		}
		if len(b) > MaxCallbackBytes {
			return nil, fmt.Errorf("client: verify callback: body larger than %d bytes", MaxCallbackBytes)
		}
		body = b
	}
	if err := v.verify(body, r.Header); err != nil {
		return nil, err
	}
	p := &CallbackPayload{WebhookID: r.Header.Get(standardwebhooks.HeaderWebhookID)}
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		p.EventID, p.Status = q.Get("event_id"), Status(q.Get("status"))
		if s := q.Get("attempts"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("client: verify callback: attempts %q: not a number", s)
			}
			p.Attempts = n
		}
	} else if err := decodeCallback(r.Header.Get("Content-Type"), body, p); err != nil {
		return nil, fmt.Errorf("client: verify callback: body: %w", err)
	}
	if p.EventID == "" || p.Status == "" {
		return nil, errors.New("client: verify callback: no event_id or status: not a callback")
	}
	return p, nil
}

// verify checks body and h against each secret, and returns nil for the
// first that matches.
func (v *Verifier) verify(body []byte, h http.Header) error {
	var first error
	for _, wh := range v.secrets {
		err := wh.Verify(body, h)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return fmt.Errorf("%w: %w", ErrSignature, first)
}

// decodeCallback reads a POST callback's body into p: the callback object,
// or, for callback.format cloudevents (Content-Type
// application/cloudevents+json), a structured CloudEvent whose data is
// that object.
func decodeCallback(contentType string, body []byte, p *CallbackPayload) error {
	if mt, _, _ := mime.ParseMediaType(contentType); mt != "application/cloudevents+json" {
		return json.Unmarshal(body, p)
	}
	var ce struct {
		SpecVersion string          `json:"specversion"`
		Data        json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ce); err != nil {
		return err
	}
	if ce.SpecVersion != "1.0" || len(ce.Data) == 0 {
		return fmt.Errorf("a CloudEvent of specversion %q with no data: not a callback", ce.SpecVersion)
	}
	return json.Unmarshal(ce.Data, p)
}
