package handler

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPI is the OpenAPI 3.1 description of the Server's API. The contract
// test (openapi_test.go at the module root) drives every operation and
// status it lists against a running engine and validates each request and
// answer with it, so it cannot drift from the code.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 description of the API, as
// GET /openapi.json serves it.
func OpenAPI() []byte { return append([]byte(nil), openAPI...) }

// serveOpenAPI answers GET /openapi.json. It needs no API key: the
// description holds no secret.
func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", openAPI)
}
