// Package ui holds the web console's static files (index.html, app.js,
// app.css), embedded in the binary and served by the handler at /ui.
package ui

import "embed"

// Files are the console's static files, at the root of the file system.
//
//go:embed index.html app.js app.css
var Files embed.FS
