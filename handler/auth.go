package handler

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// keyring holds API keys as SHA-256 digests, so that comparing a presented
// key takes the same time whatever it is and whichever key it matches.
type keyring [][sha256.Size]byte

func newKeyring(keys []string) keyring {
	var kr keyring
	for _, k := range keys {
		if k != "" {
			kr = append(kr, sha256.Sum256([]byte(k)))
		}
	}
	return kr
}

// allows reports whether key is one of the ring's, in constant time.
func (kr keyring) allows(key string) bool {
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for _, k := range kr {
		ok |= subtle.ConstantTimeCompare(sum[:], k[:])
	}
	return ok == 1
}

// require returns a middleware that answers 401 unless the request has
// "Authorization: Bearer <key>" with a key of kr. An empty ring lets every
// request through.
func require(kr keyring) gin.HandlerFunc {
	return func(c *gin.Context) {
		if len(kr) == 0 {
			return
		}
		scheme, key, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !kr.allows(strings.TrimSpace(key)) {
			c.Header("WWW-Authenticate", `Bearer realm="boomerang"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "missing or unknown API key"})
		}
	}
}
