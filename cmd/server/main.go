// Command server runs Boomerang: the HTTP API, the event workers and the
// callback dispatcher, on one Redis shared by any number of instances. It
// is cmd/boomerang under its earlier name, for scripts that build it.
//
//	server [--addr ADDR] [--redis-url URL] [--config FILE] [--version]
//
// docs/configuration.md describes the configuration.
package main

import "github.com/boomerang-events/boomerang/internal/cli"

func main() { cli.Main() }
