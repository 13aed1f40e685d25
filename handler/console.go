package handler

import (
	"net/http"
	"path"

	"github.com/boomerang-events/boomerang/handler/ui"
	"github.com/gin-gonic/gin"
)

// consoleCSP is the Content-Security-Policy of every /ui answer: scripts,
// styles and fetches from the server itself only, no inline script or
// style, so that data rendered by mistake as markup could run nothing.
const consoleCSP = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// consoleTypes are the content types of the console's files.
var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// registerConsole adds the web console: GET /ui (index.html) and
// GET /ui/{file}, and HEAD of both. Its routes need no API key: they are static files, and
// the console sends the key with each of its API calls.
func registerConsole(r gin.IRoutes) {
	r.GET("/ui", serveConsole)
	r.GET("/ui/*file", serveConsole)
	r.HEAD("/ui", serveConsole)
	r.HEAD("/ui/*file", serveConsole)
}

func serveConsole(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	name := path.Clean("/" + c.Param("file"))[1:]
	if name == "" {
		name = "index.html"
	}
	ctype, ok := consoleTypes[path.Ext(name)]
	if !ok {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such file"})
		return
	}
	b, err := consoleFile(name)
	if err != nil {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such file"})
		return
	}
	c.Data(http.StatusOK, ctype, b)
}

func consoleFile(name string) ([]byte, error) { return ui.Files.ReadFile(name) }
