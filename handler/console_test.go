package handler

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestConsoleFiles checks each /ui answer: the file, its type, and the
// headers that keep data from running as script (CSP, nosniff).
func TestConsoleFiles(t *testing.T) {
	r := gin.New()
	registerConsole(r)
	tests := []struct {
		name, method, path string
		code               int
		ctype              string
		contains           string
	}{
		{"index", "GET", "/ui", 200, "text/html", `<script src="/ui/app.js"`},
		{"index by name", "GET", "/ui/index.html", 200, "text/html", "<title>Boomerang console</title>"},
		{"slash", "GET", "/ui/", 200, "text/html", "<title>"},
		{"script", "GET", "/ui/app.js", 200, "text/javascript", "textContent"},
		{"style", "GET", "/ui/app.css", 200, "text/css", "body"},
		{"head", "HEAD", "/ui", 200, "text/html", ""},
		{"unknown", "GET", "/ui/nothing.js", 404, "application/json", "no such file"},
		{"escape", "GET", "/ui/../ui.go", 404, "application/json", "no such file"},
		{"go source", "GET", "/ui/ui.go", 404, "application/json", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
			if w.Code != tc.code {
				t.Fatalf("%s %s: got %d, want %d", tc.method, tc.path, w.Code, tc.code)
			}
			if got := w.Header().Get("Content-Type"); !strings.HasPrefix(got, tc.ctype) {
				t.Errorf("Content-Type: got %q, want %s", got, tc.ctype)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("body: got %.200q, want it to contain %q", w.Body.String(), tc.contains)
			}
			csp := w.Header().Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy: got %q, want default-src and style-src 'self' without unsafe-*", csp)
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q, want nosniff", got)
			}
		})
	}
}

// TestConsoleHasNoInlineCode keeps the console within its CSP: no inline
// script, no style or event-handler attributes, no innerHTML.
func TestConsoleHasNoInlineCode(t *testing.T) {
	for _, name := range []string{"index.html", "app.js"} {
		b, err := consoleFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", " onsubmit=", "innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q", name, bad)
			}
		}
	}
}
