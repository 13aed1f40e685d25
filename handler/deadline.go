package handler

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"
)

// deadline bounds the rest of a request by d: the request's context ends
// after d, and with it the store calls made with that context, so a
// stalled Redis gets a 503 within d instead of a hung request. (A store
// call ends at its context's deadline only if the Redis client honours
// deadlines on the socket, as store.Open's does.)
func deadline(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
