package callback_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/callback"
	"github.com/boomerang-events/boomerang/event"
)

func TestCallbackInfoCheck(t *testing.T) {
	tests := []struct {
		name         string
		info         callback.CallbackInfo
		allowPrivate bool
		field        string // the field at fault, "" if the URLs are accepted
		msg          string // in the error's Msg
	}{
		{"public", callback.CallbackInfo{SuccessURL: "https://example.com/ok", FailURL: "https://example.com/fail"}, false, "", ""},
		{"none", callback.CallbackInfo{}, false, "", ""},
		{"loopback allowed", callback.CallbackInfo{SuccessURL: "http://127.0.0.1:8080/ok"}, true, "", ""},
		{"loopback refused", callback.CallbackInfo{SuccessURL: "http://127.0.0.1:8080/ok"}, false, "callback.success_url", "a loopback address"},
		{"non-canonical ipv4", callback.CallbackInfo{SuccessURL: "http://127.1/ok"}, true, "callback.success_url", `host "127.1" is not a canonical IPv4 address`},
		{"nat64 metadata", callback.CallbackInfo{SuccessURL: "https://example.com/ok", FailURL: "http://[64:ff9b::a9fe:a9fe]/"}, true, "callback.fail_url", "embeds 169.254.169.254, a link-local address"},
		{"GET", callback.CallbackInfo{SuccessURL: "https://example.com/ok", Method: event.CallbackGET}, false, "", ""},
		{"bad method", callback.CallbackInfo{SuccessURL: "https://example.com/ok", Method: "PATCH"}, false, "callback.method", "must be GET or POST"},
		{"GET with cloudevents", callback.CallbackInfo{SuccessURL: "https://example.com/ok", Method: event.CallbackGET, Format: event.CallbackCloudEvents},
			false, "callback.format", "a GET callback has no body"},
		{"aws ipv6 metadata", callback.CallbackInfo{FailURL: "http://[fd00:ec2::254]/latest/"}, true, "callback.fail_url", "a cloud metadata address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.info.Check(tt.allowPrivate)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				return
			}
			var fe *event.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got error %v, want an *event.FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("got field %q, want %q", fe.Field, tt.field)
			}
			if !strings.Contains(fe.Msg, tt.msg) || strings.HasPrefix(fe.Msg, "outbound: ") {
				t.Errorf("got message %q, want one containing %q without the outbound: prefix", fe.Msg, tt.msg)
			}
		})
	}
}
