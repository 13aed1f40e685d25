package handler

import (
	"net/http"
	"time"

	"github.com/boomerang-events/boomerang/event"
	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

// deadLetterView is a dead letter as GET /dead-letters shows it.
type deadLetterView struct {
	recordView
	DeadLetter struct {
		Kind     string    `json:"kind"`
		FailedAt time.Time `json:"failed_at"`
	} `json:"dead_letter"`
}

func (s *Server) getDeadLetters(c *gin.Context) {
	opts := store.DeadOptions{Cursor: c.Query("cursor"), EventType: c.Query("event_type"), Kind: c.Query("kind")}
	var ok bool
	if opts.Limit, ok = parseLimit(c); !ok {
		return
	}
	if opts.Kind != "" && opts.Kind != "event" && opts.Kind != "callback" {
		c.JSON(http.StatusBadRequest, gin.H{"error": `kind: must be "event" or "callback"`, "field": "kind"})
		return
	}
	if opts.EventType != "" {
		if err := event.ValidateEventType(opts.EventType); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error(), "field": "event_type"})
			return
		}
	}
	dls, next, err := s.st.ListDead(c.Request.Context(), opts)
	if err != nil {
		s.storeError(c, "", err)
		return
	}
	views := make([]deadLetterView, len(dls))
	for i, d := range dls {
		views[i].recordView = newView(d.Snapshot, false)
		views[i].DeadLetter.Kind, views[i].DeadLetter.FailedAt = d.Kind, d.FailedAt
	}
	out := gin.H{"dead_letters": views}
	if next != "" {
		out["next_cursor"] = next
	}
	c.JSON(http.StatusOK, out)
}

// getDestinations lists the callback destinations with their flow state:
// breaker state, consecutive failures, deliveries in flight, next probe.
func (s *Server) getDestinations(c *gin.Context) {
	dests, err := s.st.Destinations(c.Request.Context(), s.cfg.Now())
	if err != nil {
		s.storeError(c, "", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"destinations": dests})
}

// retryEvent runs a failed event again. Asking again while it runs does
// nothing and answers the same.
func (s *Server) retryEvent(c *gin.Context) {
	id := c.Param("id")
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	queued, err := s.st.Retry(c.Request.Context(), s.cfg.Now(), id)
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	if queued {
		s.log.Info("event retry requested", "event_id", id)
	}
	s.respondAction(c, id, queued)
}

// redeliverCallback sends an event's callback again. Asking again while it
// is under way does nothing and answers the same.
func (s *Server) redeliverCallback(c *gin.Context) {
	id := c.Param("event_id")
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	queued, err := s.st.Redeliver(c.Request.Context(), s.cfg.Now(), id)
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	if queued {
		s.log.Info("callback redelivery requested", "event_id", id)
	}
	s.respondAction(c, id, queued)
}

// respondAction answers 202 with the record after an operator action;
// "queued" tells whether this request queued the work or found it under
// way.
func (s *Server) respondAction(c *gin.Context, id string, queued bool) {
	snap, err := s.st.Get(c.Request.Context(), id)
	if err != nil {
		s.storeError(c, id, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"queued": queued, "status_url": "/events/" + id, "event": newView(snap, false)})
}
