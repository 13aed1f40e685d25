package wire

import (
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/internal/outbound"
)

// benchEvent is the original package's example event with callbacks and a
// payload of about 200 bytes, as the load generator sends it.
var benchEvent = []byte(`{"id":"bench-000000001","event_type":"user_created","timestamp":"2024-08-20T05:21:19.143357839Z",
"payload":{"user_id":"12345","username":"johndoe","seq":1,"pad":"` + strings.Repeat("x", 150) + `"},
"metadata":{"source":"user_service","version":"1.0"},
"callback":{"success_url":"http://127.0.0.1:9000/cb","fail_url":"http://127.0.0.1:9000/cb"}}`)

func BenchmarkParseEvent(b *testing.B) {
	guard := outbound.Policy{AllowPrivate: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(benchEvent, "", guard); err != nil {
			b.Fatal(err)
		}
	}
}
