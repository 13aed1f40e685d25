# Boomerang. `make run` serves on the embedded in-memory Redis; `make test`
# runs every test: on miniredis, plus a real Redis when REDIS_URL is set.

GO ?= go
# The race detector needs a C compiler; without one the tests run without it.
RACE ?= $(shell command -v cc >/dev/null 2>&1 && echo -race)

# How long each fuzz target runs in `make fuzz`.
FUZZTIME ?= 10s

.PHONY: run test vet build fuzz

run:
	$(GO) run ./cmd/server --config config/dev.yaml

test: vet
	$(GO) test $(RACE) -count=1 ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/boomerang ./cmd/server

# Each fuzz target for FUZZTIME, on top of its committed seed corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) ./handler
	$(GO) test -run '^$$' -fuzz '^FuzzPostEvent$$' -fuzztime $(FUZZTIME) ./handler
