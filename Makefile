# Boomerang. `make run` serves on the embedded in-memory Redis; `make test`
# runs every test (on miniredis, plus a real Redis when REDIS_URL is set).

GO ?= go

.PHONY: run test build vet

run:
	$(GO) run ./cmd/server --config config/dev.yaml

test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/boomerang ./cmd/server
