package handler_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/handler"
	"github.com/boomerang-events/boomerang/internal/outbound"
	"github.com/boomerang-events/boomerang/internal/redistest"
	"github.com/boomerang-events/boomerang/internal/wire"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// gzipBomb is 10 MiB of zeros, gzipped to about 10 KB.
func gzipBomb(t testing.TB) []byte {
	t.Helper()
	return gzipped(t, make([]byte, 10<<20))
}

// maxBombAlloc is the most serving the bomb with a 1 MiB limit may
// allocate: reading up to the limit takes about 2 MiB (4.3 MiB with -race),
// while reading the content whole would take at least its 10 MiB.
const maxBombAlloc = 6 << 20

// serveBomb sends the bomb to h and returns the answer, the bytes
// allocated meanwhile and the compressed bytes read.
func serveBomb(t *testing.T, h http.Handler, path string, bomb []byte) (*httptest.ResponseRecorder, uint64, int) {
	t.Helper()
	body := &countingReader{r: bytes.NewReader(bomb)}
	req := httptest.NewRequest(http.MethodPost, path, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	rec := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h.ServeHTTP(rec, req)
	runtime.ReadMemStats(&after)
	return rec, after.TotalAlloc - before.TotalAlloc, body.n
}

// TestPostEventContentEncoding sends POST /event bodies in every
// Content-Encoding: gzip and identity are read (a gzip body is stored as
// its plain twin), a gzip bomb stops at max_body_bytes without using the
// memory of its content, a body labelled gzip that is not gzip is a 400
// naming the body, and any other encoding a 415 naming the accepted ones.
func TestPostEventContentEncoding(t *testing.T) {
	redistest.Run(t, func(t *testing.T, b redistest.Backend) {
		st, err := store.New(b.Client, store.Config{Prefix: b.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		srv := handler.NewServer(st, handler.ServerConfig{MaxBodyBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		t.Cleanup(srv.Close)
		h := srv.Handler()
		post := func(body []byte, encodings ...string) (int, map[string]any) {
			t.Helper()
			req := httptest.NewRequest(http.MethodPost, "/event", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for _, e := range encodings {
				req.Header.Add("Content-Encoding", e)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var ans map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				t.Fatalf("answer %d is not JSON: %q", rec.Code, rec.Body)
			}
			return rec.Code, ans
		}
		plain := []byte(`{"id":"enc-gzip","event_type":"user_created","payload":{"user_id":"42","name":"zoë"}}`)

		t.Run("gzip is stored as the plain body", func(t *testing.T) {
			if code, ans := post(gzipped(t, plain), "gzip"); code != http.StatusAccepted || ans["event_id"] != "enc-gzip" {
				t.Fatalf("gzip: got %d %v, want 202", code, ans)
			}
			want, err := wire.Parse(plain, "", outbound.Policy{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Body(t.Context(), "enc-gzip")
			if err != nil || !bytes.Equal(got, want.Body) {
				t.Errorf("stored body: got %q (%v), want %q", got, err, want.Body)
			}
			// The plain twin is the same event: a repeat, not a conflict.
			if code, ans := post(plain); code != http.StatusOK || ans["event_id"] != "enc-gzip" {
				t.Errorf("plain repeat of the gzip body: got %d %v, want 200 with the record", code, ans)
			}
		})
		t.Run("identity and GZIP spelled otherwise", func(t *testing.T) {
			for _, tc := range []struct {
				id, encoding string
				gzip         bool
			}{{"enc-identity", "identity", false}, {"enc-upper", " GZIP ", true}, {"enc-x-gzip", "x-gzip", true}} {
				body := []byte(`{"id":"` + tc.id + `","event_type":"a"}`)
				if tc.gzip {
					body = gzipped(t, body)
				}
				if code, ans := post(body, tc.encoding); code != http.StatusAccepted {
					t.Errorf("Content-Encoding %q: got %d %v, want 202", tc.encoding, code, ans)
				}
			}
		})
		t.Run("gzip bomb", func(t *testing.T) {
			bomb := gzipBomb(t)
			rec, alloc, read := serveBomb(t, h, "/event", bomb)
			t.Logf("bomb of %d bytes (10 MiB decompressed): %d, %d KiB allocated, %d compressed bytes read", len(bomb), rec.Code, alloc>>10, read)
			if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "1048576 bytes") {
				t.Errorf("got %d %s, want 413 naming the limit", rec.Code, rec.Body)
			}
			if alloc > maxBombAlloc {
				t.Errorf("serving the bomb allocated %d KiB, want at most %d KiB, under its 10 MiB", alloc>>10, maxBombAlloc>>10)
			}
			if read >= len(bomb) {
				t.Errorf("read all %d compressed bytes, want reading to stop at the limit", read)
			}
		})
		for _, tc := range []struct {
			name     string
			body     []byte
			encoding []string
			want     int
			wantMsg  string
		}{
			{"garbage labelled gzip", []byte("\x1f\x8bnot really gzip at all"), []string{"gzip"}, 400, "not valid gzip"},
			{"plain body labelled gzip", plain, []string{"gzip"}, 400, "not valid gzip"},
			{"truncated gzip", gzipped(t, plain)[:20], []string{"gzip"}, 400, "not valid gzip"},
			{"empty body labelled gzip", nil, []string{"gzip"}, 400, "not valid gzip"},
			{"br", plain, []string{"br"}, 415, "gzip or identity"},
			{"deflate", plain, []string{"deflate"}, 415, "gzip or identity"},
			{"a list", gzipped(t, plain), []string{"gzip, identity"}, 415, "gzip or identity"},
			{"two headers", gzipped(t, plain), []string{"gzip", "gzip"}, 415, "gzip or identity"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, ans := post(tc.body, tc.encoding...)
				msg, _ := ans["error"].(string)
				if code != tc.want || !strings.Contains(msg, tc.wantMsg) {
					t.Errorf("got %d %v, want %d with an error containing %q", code, ans, tc.want, tc.wantMsg)
				}
				if code == 400 && ans["field"] != "body" {
					t.Errorf("400 names field %v, want body", ans["field"])
				}
			})
		}
		// Only the events answered 202 were recorded.
		snaps, _, err := st.List(t.Context(), store.ListOptions{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps) != 4 {
			t.Errorf("recorded %d events, want 4 (enc-gzip, enc-identity, enc-upper, enc-x-gzip)", len(snaps))
		}
	})
}

// TestGinEventHandlerContentEncoding: the library's handler reads bodies
// as POST /event does (one helper), before the business logic sees them.
func TestGinEventHandlerContentEncoding(t *testing.T) {
	var got []string // user ids the business logic saw
	fn := func(c *gin.Context, msg event.EventMessage[payload]) error {
		got = append(got, msg.GetPayload().UserID)
		return nil
	}
	r := gin.New()
	r.POST("/event", handler.NewGinEventHandler(fn, &fakeHandler{}, handler.WithMaxBodyBytes(1<<20)))
	bomb := gzipBomb(t)
	for _, tc := range []struct {
		name     string
		body     []byte
		encoding string
		want     int
		wantSeen bool
	}{
		{"gzip", gzipped(t, []byte(seedEvent)), "gzip", 200, true},
		{"identity", []byte(seedEvent), "identity", 200, true},
		{"garbage labelled gzip", []byte(seedEvent), "gzip", 400, false},
		{"br", []byte(seedEvent), "br", 415, false},
		{"gzip bomb", bomb, "gzip", 413, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			var rec *httptest.ResponseRecorder
			if tc.name == "gzip bomb" {
				var alloc uint64
				var read int
				rec, alloc, read = serveBomb(t, r, "/event", tc.body)
				if alloc > maxBombAlloc || read >= len(bomb) {
					t.Errorf("bomb: %d KiB allocated and %d of %d compressed bytes read, want well under 10 MiB and reading stopped", alloc>>10, read, len(bomb))
				}
			} else {
				req := httptest.NewRequest(http.MethodPost, "/event", bytes.NewReader(tc.body))
				req.Header.Set("Content-Encoding", tc.encoding)
				rec = httptest.NewRecorder()
				r.ServeHTTP(rec, req)
			}
			if rec.Code != tc.want {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if seen := len(got) == 1 && got[0] == "12345"; seen != tc.wantSeen {
				t.Errorf("business logic saw %v, want it called: %v", got, tc.wantSeen)
			}
		})
	}
}
