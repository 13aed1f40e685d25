// Command boomerang runs Boomerang: the HTTP API, the event workers and the
// callback dispatcher, on one Redis shared by any number of instances.
//
//	go install github.com/boomerang-events/boomerang/cmd/boomerang@latest
//	boomerang [--addr ADDR] [--redis-url URL] [--config FILE]
//	boomerang --version
//
// docs/configuration.md describes the configuration.
package main

import "github.com/boomerang-events/boomerang/internal/cli"

func main() { cli.Main() }
