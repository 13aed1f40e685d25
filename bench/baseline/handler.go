package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
)

// maxBodyBytes is the largest POST /event body accepted.
const maxBodyBytes = 1 << 20

// incoming has the shape of Boomerang's event (handler/ingest.go).
type incoming struct {
	ID        string            `json:"id,omitempty"`
	EventType string            `json:"event_type"`
	Timestamp json.RawMessage   `json:"timestamp,omitempty"`
	Payload   json.RawMessage   `json:"payload,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	Callback  *struct {
		SuccessURL string `json:"success_url"`
		FailURL    string `json:"fail_url"`
	} `json:"callback,omitempty"`
}

// accepted is the 202 answer.
type accepted struct {
	EventID string `json:"event_id"`
	Status  string `json:"status"`
}

// problem is a 4xx or 5xx answer.
type problem struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// Keys. The {hash tag} keeps both in one Redis Cluster slot, as a pipeline
// of a real server would need.
func eventKey(prefix, id string) string { return "{" + prefix + "}:ev:" + id }
func queueKey(prefix string) string     { return "{" + prefix + "}:q" }

// ids makes unique event ids: a random per-process prefix and a counter.
type ids struct {
	prefix string
	n      atomic.Uint64
}

func newIDs() *ids {
	var b [6]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return &ids{prefix: "bl_" + hex.EncodeToString(b[:]) + "_"}
}

func (g *ids) next() string { return g.prefix + strconv.FormatUint(g.n.Add(1), 10) }

// bufs recycles request body buffers; a body is only referenced until the
// pipeline that writes it returns.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// newHandler returns the Gin engine: POST /event and GET /healthz, with no
// middleware at all.
func newHandler(rdb redis.Cmdable, prefix string) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	gen := newIDs()
	q := queueKey(prefix)
	r.POST("/event", func(c *gin.Context) {
		buf := bufs.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 64<<10 {
				buf.Reset()
				bufs.Put(buf)
			}
		}()
		buf.Reset()
		if _, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes)); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				c.JSON(http.StatusRequestEntityTooLarge, problem{Error: "body is over 1 MiB", Field: "body"})
				return
			}
			c.JSON(http.StatusBadRequest, problem{Error: "cannot read body", Field: "body"})
			return
		}
		body := buf.Bytes()
		var in incoming
		if err := json.Unmarshal(body, &in); err != nil {
			c.JSON(http.StatusBadRequest, problem{Error: "body is not a valid event", Field: "body"})
			return
		}
		if in.EventType == "" {
			c.JSON(http.StatusBadRequest, problem{Error: "is required", Field: "event_type"})
			return
		}
		id := in.ID
		if id == "" {
			id = gen.next()
		}
		now := time.Now().UnixMilli()
		_, err := rdb.Pipelined(c.Request.Context(), func(p redis.Pipeliner) error {
			p.Set(c.Request.Context(), eventKey(prefix, id), body, 0)
			p.ZAdd(c.Request.Context(), q, redis.Z{Score: float64(now), Member: id})
			return nil
		})
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, problem{Error: "redis unavailable"})
			return
		}
		c.JSON(http.StatusAccepted, accepted{EventID: id, Status: "queued"})
	})
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return r
}
