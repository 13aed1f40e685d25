package handler

import (
	"errors"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/boomerang-events/boomerang/store"
	"github.com/gin-gonic/gin"
)

// storeErrors is the one table from the store's errors to the API's
// answers. An error not in it means Redis is unavailable: 503.
var storeErrors = []struct {
	err    error
	status int
	msg    string // what the client reads; "" for the not-found message
	field  string // the request field at fault, if any
}{
	{store.ErrNotFound, http.StatusNotFound, "", ""},
	{store.ErrSucceeded, http.StatusConflict, "event succeeded; there is nothing to retry", ""},
	{store.ErrNoCallback, http.StatusConflict, "event has no callback to deliver", ""},
	{store.ErrBusy, http.StatusConflict, "the event's callback is still being delivered", ""},
	{store.ErrContended, http.StatusConflict, "record changed while being updated; try again", ""},
	{store.ErrBadCursor, http.StatusBadRequest, "cursor: not a cursor this server issued", "cursor"},
}

// storeError answers err, an error of the store about event id (or a
// listing when id is empty).
func (s *Server) storeError(c *gin.Context, id string, err error) {
	for _, e := range storeErrors {
		if !errors.Is(err, e.err) {
			continue
		}
		body := gin.H{"error": e.msg}
		if e.err == store.ErrNotFound {
			body["error"] = "no event with id " + strconv.Quote(truncate(id, 140))
		}
		if e.field != "" {
			body["field"] = e.field
		}
		c.JSON(e.status, body)
		return
	}
	s.log.Warn("store unavailable", "path", c.FullPath(), "err", err)
	c.Header("Retry-After", retryAfterSeconds)
	c.JSON(http.StatusServiceUnavailable, gin.H{"error": "event store unavailable"})
}

// retryAfterSeconds is the Retry-After of a 503: Redis outages are
// usually short, and every request is safe to repeat.
const retryAfterSeconds = "1"

// notFound answers 404 for an id that cannot name an event.
func (s *Server) notFound(c *gin.Context, id string) { s.storeError(c, id, store.ErrNotFound) }

// truncate shortens s to at most n bytes, on a character boundary, marking
// the cut with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
