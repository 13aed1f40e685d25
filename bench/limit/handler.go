package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boomerang-events/boomerang/internal/loopback"
	"github.com/gin-gonic/gin"
)

// callbackTimeout bounds one callback POST.
const callbackTimeout = 5 * time.Second

// queueSize is how many callbacks may wait in memory for a sender; beyond
// it POST /event answers 503, as a server out of room would.
const queueSize = 1 << 20

// message is the part of the event JSON the limit server reads. The
// payload and the metadata are decoded as Boomerang decodes them (the
// payload kept raw, the metadata as strings).
type message struct {
	ID        string            `json:"id"`
	EventType string            `json:"event_type"`
	Timestamp time.Time         `json:"timestamp"`
	Payload   json.RawMessage   `json:"payload"`
	Metadata  map[string]string `json:"metadata"`
	Callback  *struct {
		SuccessURL string `json:"success_url"`
		FailURL    string `json:"fail_url"`
	} `json:"callback"`
}

// job is one callback to send: its URL and its body, encoded once.
type job struct {
	url  string
	body []byte
}

// server is the keep-nothing POST /event handler and its sender pool.
type server struct {
	client  *http.Client
	senders int
	jobs    chan job

	closeOnce sync.Once
	sent      atomic.Int64 // callbacks sent
	failed    atomic.Int64 // of those, the ones that failed (not 2xx, or an error)
	full      atomic.Int64 // events refused because the queue was full
}

func newServer(client *http.Client, senders int) *server {
	return &server{client: client, senders: senders, jobs: make(chan job, queueSize)}
}

// newCallbackClient keeps up to senders connections per receiver, alive
// between callbacks, and dials loopback addresses only.
func newCallbackClient(senders int) *http.Client {
	return &http.Client{
		Timeout: callbackTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: callbackTimeout, Control: loopback.Only}).DialContext,
			MaxIdleConns:        senders,
			MaxIdleConnsPerHost: senders,
			// At most one connection per sender: a request issued while
			// the previous one's connection is still going back to the
			// idle pool waits for it instead of dialling another.
			MaxConnsPerHost: senders,
			IdleConnTimeout: time.Minute,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// handler returns the Gin engine: POST /event and GET /healthz, with
// gin.Recovery as Boomerang has.
func (s *server) handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/event", s.event)
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return r
}

// event decodes the event, queues its callback and answers 202.
func (s *server) event(c *gin.Context) {
	data, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "cannot read body"})
		return
	}
	var msg message
	if err := json.Unmarshal(data, &msg); err != nil || msg.ID == "" || msg.EventType == "" {
		c.JSON(http.StatusBadRequest, gin.H{"error": "invalid event: id and event_type are required"})
		return
	}
	if msg.Callback != nil && msg.Callback.SuccessURL != "" {
		j := job{url: msg.Callback.SuccessURL, body: callbackBody(msg.ID)}
		select {
		case s.jobs <- j:
		default:
			s.full.Add(1)
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": "callback queue full"})
			return
		}
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "accepted", "event_id": msg.ID})
}

// callbackBody is the callback's JSON, shaped like Boomerang's: the event
// id, its status and the attempts it took.
func callbackBody(id string) []byte {
	b := make([]byte, 0, 64+len(id))
	b = append(b, `{"event_id":`...)
	b = strconv.AppendQuote(b, id)
	return append(b, `,"status":"completed","attempts":1}`...)
}

// send runs the sender pool until the queue is closed and empty, or ctx
// ends.
func (s *server) send(ctx context.Context) {
	var wg sync.WaitGroup
	for range s.senders {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j, ok := <-s.jobs:
					if !ok {
						return
					}
					s.post(ctx, j)
				}
			}
		})
	}
	wg.Wait()
}

// close ends the queue: the senders stop once it is empty.
func (s *server) close() { s.closeOnce.Do(func() { close(s.jobs) }) }

// post sends one callback, once.
func (s *server) post(ctx context.Context, j job) {
	s.sent.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, bytes.NewReader(j.body))
	if err != nil {
		s.failed.Add(1)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		s.failed.Add(1)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.failed.Add(1)
	}
}
