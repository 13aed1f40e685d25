# Boomerang. `make run` serves on the embedded in-memory Redis; `make test`
# runs every test: on miniredis, plus a real Redis when REDIS_URL is set.

GO ?= go
# The race detector needs a C compiler; without one the tests run without it.
RACE ?= $(shell command -v cc >/dev/null 2>&1 && echo -race)

# How long each fuzz target runs in `make fuzz`.
FUZZTIME ?= 10s

.PHONY: run test vet build fuzz chaos chaos-cluster bench bench-quick bench-scaling

run:
	$(GO) run ./cmd/boomerang --config config/dev.yaml

# Every test: the packages' (miniredis, plus $$REDIS_URL when set), then the
# chaos suite, which skips itself when redis-server is not installed (set
# CHAOS_REQUIRE=1 to make that a failure, as CI does).
test: vet
	$(GO) test $(RACE) -count=1 ./...
	$(GO) test -tags chaos -count=1 -timeout 15m ./chaos

vet:
	$(GO) vet ./...

build:
	$(GO) build -o bin/boomerang ./cmd/boomerang

# Each fuzz target for FUZZTIME, on top of its committed seed corpus.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzPostEvent$$' -fuzztime $(FUZZTIME) ./handler

# The fault-injection suite alone, verbose: real server processes on a
# private redis-server (redis-server on PATH). CHAOS_PROFILE=short (default,
# ~1.5 min) or full (~3.5 min); CHAOS_REPORT=FILE writes the summary.
chaos:
	$(GO) vet -tags chaos ./chaos
	$(GO) test -tags chaos -count=1 -timeout 15m -v ./chaos

# The fault-injection suite with each scenario on a private 3-master Redis
# Cluster (redis-server and redis-cli on PATH).
chaos-cluster:
	CHAOS_REDIS=cluster $(GO) test -tags chaos -count=1 -timeout 15m -v ./chaos

# Boomerang against the keep-nothing limit, the one-round-trip baseline and
# the seed-like server (docs/benchmarks.md), about two minutes. BENCH_FLAGS
# passes flags, such as --memory.
bench:
	$(GO) run ./bench/run $(BENCH_FLAGS)

# A smoke run of the benchmark (about 40 s): every phase runs and produces
# numbers; targets are printed, not enforced.
bench-quick:
	$(GO) run ./bench/run --quick

# Scaling out (docs/benchmarks.md, issue 11): 1, 2 and 4 Boomerang instances
# on one private redis-server and on a private 3-master Redis Cluster, with
# Redis commands and CPU per event per node; about 2.5 minutes. Needs
# redis-server and redis-cli. BENCH_FLAGS passes flags, such as --out FILE.
bench-scaling:
	$(GO) run ./bench/run --scaling $(BENCH_FLAGS)
