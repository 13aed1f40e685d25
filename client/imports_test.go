package client

import (
	"go/build"
	"strings"
	"testing"
)

// The client is for producers' programs: it imports none of the server's
// code (Gin, Redis, store, internal packages), only event and small
// libraries.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{
		"github.com/boomerang-events/boomerang/event",
		"github.com/cenkalti/backoff/v4",
		"github.com/standard-webhooks/standard-webhooks/libraries/go",
	}
	for _, imp := range pkg.Imports {
		if !strings.Contains(imp, ".") { // the standard library
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || imp == a
		}
		if !ok {
			t.Errorf("client imports %s; allowed beyond the standard library: %v", imp, allowed)
		}
	}
}
