package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/boomerang-events/boomerang/internal/loopback"
	"github.com/gin-gonic/gin"
)

// callbackTimeout is the original handler's callback timeout: 2s, never
// retried.
const callbackTimeout = 2 * time.Second

// message is the original package's event JSON, plus the optional id and
// the callback block of its callback handler.
type message struct {
	ID        string            `json:"id,omitempty"`
	EventType string            `json:"event_type"`
	Timestamp time.Time         `json:"timestamp"`
	Payload   benchPayload      `json:"payload"`
	Metadata  map[string]string `json:"metadata"`
	Callback  *struct {
		SuccessURL string `json:"success_url"`
		FailURL    string `json:"fail_url"`
	} `json:"callback,omitempty"`
}

// benchPayload is the user-defined payload type T of the original
// EventMessage[T], shaped like cmd/loadgen's payload.
type benchPayload struct {
	Seq uint64 `json:"seq"`
	Pad string `json:"pad"`
}

// businessLogic is the no-op business function of the benchmark.
func businessLogic(*gin.Context, message) error { return nil }

// server is the seed-like POST /event handler and its callback sender.
type server struct {
	client *http.Client

	sent, failed atomic.Int64   // callbacks sent, and of those the ones that failed (not 2xx, or an error)
	inflight     sync.WaitGroup // the callback goroutines
}

func newServer(client *http.Client) *server { return &server{client: client} }

// newCallbackClient is the original's callback client: a 2s timeout and a
// new TCP connection per callback (keep-alives disabled). It dials loopback
// addresses only.
func newCallbackClient() *http.Client {
	return &http.Client{
		Timeout: callbackTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{Timeout: callbackTimeout, Control: loopback.Only}).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// handler returns the Gin engine: POST /event and GET /healthz. It has
// gin.Recovery but no request logger (the original's gin.Default logs every
// request; leaving that out only makes this server faster).
func (s *server) handler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/event", s.event)
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return r
}

// event decodes the event, runs the business function, fires the callback
// and answers at once.
func (s *server) event(c *gin.Context) {
	data, err := c.GetRawData()
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "cannot read body"})
		return
	}
	var msg message
	if err := json.Unmarshal(data, &msg); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "invalid event"})
		return
	}
	result := businessLogic(c, msg)
	if msg.Callback != nil {
		url := msg.Callback.SuccessURL
		if result != nil {
			url = msg.Callback.FailURL
		}
		if url != "" {
			s.inflight.Go(func() { s.sendCallback(url, msg.ID) })
		}
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "success", "event_id": msg.ID})
}

// sendCallback POSTs {"event_id": id} to url once; a timeout or any other
// failure is counted and dropped, never retried.
func (s *server) sendCallback(url, id string) {
	s.sent.Add(1)
	body, _ := json.Marshal(map[string]string{"event_id": id}) // a map of strings always marshals
	resp, err := s.client.Post(url, "application/json", bytes.NewReader(body))
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

// wait waits at most d for the callbacks in flight.
func (s *server) wait(d time.Duration) {
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
