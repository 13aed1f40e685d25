package handler

import (
	"errors"
	"net/http"
	"strconv"
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
	opts := store.DeadOptions{Cursor: c.Query("cursor"), EventType: c.Query("event_type")}
	var ok bool
	if opts.Limit, ok = parseLimit(c); !ok {
		return
	}
	if opts.EventType != "" {
		if err := event.ValidateEventType(opts.EventType); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error(), "field": "event_type"})
			return
		}
	}
	dls, next, err := s.st.ListDead(c.Request.Context(), opts)
	if s.listError(c, err) {
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

// retryEvent runs a failed event again. Asking again while it runs does
// nothing and answers the same.
func (s *Server) retryEvent(c *gin.Context) {
	id := c.Param("id")
	if event.ValidateID(id) != nil {
		s.notFound(c, id)
		return
	}
	queued, err := s.st.Retry(c.Request.Context(), s.cfg.Now(), id)
	if s.actionError(c, id, err) {
		return
	}
	if queued {
		s.log.Info("event retry requested", "event_id", id)
		s.cfg.OnEnqueue()
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
	if s.actionError(c, id, err) {
		return
	}
	if queued {
		s.log.Info("callback redelivery requested", "event_id", id)
		s.cfg.OnRedeliver()
	}
	s.respondAction(c, id, queued)
}

// actionError answers an operator action's error, if any, and reports
// whether it did.
func (s *Server) actionError(c *gin.Context, id string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		s.notFound(c, id)
	case errors.Is(err, store.ErrSucceeded), errors.Is(err, store.ErrBusy), errors.Is(err, store.ErrNoCallback), errors.Is(err, store.ErrContended):
		msg := err.Error()
		if len(msg) > 7 && msg[:7] == "store: " {
			msg = msg[7:]
		}
		c.JSON(http.StatusConflict, gin.H{"error": msg})
	default:
		s.unavailable(c, err)
	}
	return true
}

// respondAction answers 202 with the record after an operator action;
// "queued" tells whether this request queued the work or found it under
// way.
func (s *Server) respondAction(c *gin.Context, id string, queued bool) {
	snap, err := s.st.Get(c.Request.Context(), id)
	if err != nil {
		s.unavailable(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"queued": queued, "status_url": "/events/" + id, "event": newView(snap, false)})
}

func (s *Server) notFound(c *gin.Context, id string) {
	c.JSON(http.StatusNotFound, gin.H{"error": "no event with id " + strconv.Quote(truncate(id, 140))})
}
