# Boomerang. `make run` serves on the embedded in-memory Redis; `make test`
# runs every test: on miniredis, plus a real Redis when REDIS_URL is set.

GO ?= go
# The race detector needs a C compiler; without one the tests run without it.
RACE ?= $(shell command -v cc >/dev/null 2>&1 && echo -race)

# How much each fuzz target runs in `make fuzz`: a number of executions
# (about 10 s each on a 2-core machine), not a duration. With a duration, Go
# 1.26's fuzz coordinator can race its own deadline and fail the target with
# a bare "context deadline exceeded" having found nothing (go.dev/issue/75804,
# fixed in Go 1.27); a count has no deadline to race. FUZZTIME (a duration
# such as 5m, or a count such as 1000000x) overrides both.
FUZZ_PARSE ?= 100000x
FUZZ_POST ?= 30000x
FUZZ_CE ?= 50000x

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

# Each fuzz target on top of its committed seed corpus (see FUZZ_PARSE).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_PARSE)) ./internal/wire
	$(GO) test -run '^$$' -fuzz '^FuzzPostEvent$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_POST)) ./handler
	$(GO) test -run '^$$' -fuzz '^FuzzParseCloudEvent$$' -fuzztime $(or $(FUZZTIME),$(FUZZ_CE)) ./internal/wire

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
