# Shardline. `make demo` runs the word count on local stand-ins; `make test`
# runs every test. Both install what they need (Go modules, the pinned npm
# stand-ins under .cache/).
GO        ?= go
BIN       := bin
STANDINS  := $(BIN)/standins
TEST_TIMEOUT ?= 15m

# Lambda: provided.al2023 bootstraps, static, -tags lambda.norpc.
ARCH      ?= arm64
LAMBDA_GO := CGO_ENABLED=0 GOOS=linux $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: FORCE all build lambda test unit lint bench fuzz demo up down env clean tidy-check \
	build-PollerFunction build-WordCountFunction

all: build

# The commit for `poller version` (the go command does not stamp it in a
# git worktree, nor with GOFLAGS=-buildvcs=false).
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- 2>/dev/null || echo -modified)

build:
	$(GO) build -ldflags "-X main.commit=$(COMMIT)" -o $(BIN)/poller ./poller

# The stand-ins' command, run as a binary so Ctrl-C reaches it alone.
$(BIN)/standins: FORCE
	@$(GO) build -o $(BIN)/standins ./shared/standin/cmd/standins

FORCE:

# Both functions for both architectures, under bin/lambda/<fn>/<arch>/bootstrap.
lambda:
	@for fn in poller wordcount; do for arch in arm64 amd64; do \
	  echo "bin/lambda/$$fn/$$arch/bootstrap"; \
	  GOARCH=$$arch $(LAMBDA_GO) -o $(BIN)/lambda/$$fn/$$arch/bootstrap ./functions/$$fn || exit 1; \
	done; done

# `sam build` (BuildMethod: makefile) calls these with ARTIFACTS_DIR set.
# The architecture follows ARCH (default arm64, as template.yaml's default):
# `ARCH=amd64 sam build --parameter-overrides Architecture=x86_64`.
build-PollerFunction:
	GOARCH=$(ARCH) $(LAMBDA_GO) -o $(ARTIFACTS_DIR)/bootstrap ./functions/poller

build-WordCountFunction:
	GOARCH=$(ARCH) $(LAMBDA_GO) -o $(ARTIFACTS_DIR)/bootstrap ./functions/wordcount

# Every test: unit tests, the de-aggregation fuzz seeds, and the integration
# tests against kinesis-mock and DynamoDB Local started by the tests.
test: lint
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only (no stand-ins).
unit:
	$(GO) test -race -short -count=1 ./...

lint: tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v cfn-lint >/dev/null || { echo "cfn-lint is needed to check template.yaml (it is on this project's machines)"; exit 1; }
	cfn-lint template.yaml

tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go mod tidy would change go.mod/go.sum:"; $(GO) mod tidy -diff; exit 1; }

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -timeout 30m ./...

# Shardline beside harlow/kinesis-consumer and vmware-go-kcl-v2 on the same
# stand-ins (a module of its own: shared/bench/peers; see its README).
.PHONY: bench-peers
bench-peers:
	cd shared/bench/peers && $(GO) run ./cmd/compare

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDeaggregate -fuzztime=60s ./shared/kpl/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeGetRecords$$' -fuzztime=60s ./shared/fetch/
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeGetRecordsJSON$$' -fuzztime=60s ./shared/fetch/

# Local stand-ins for users: start, print the endpoints, stop.
up: $(BIN)/standins
	@$(STANDINS) up -streams words:4

down: $(BIN)/standins
	@$(STANDINS) down

env: $(BIN)/standins
	@$(STANDINS) env

# The main job on local stand-ins: a 4-shard stream, the word producer
# (1000 lines/s, 10 numbers each, KPL-aggregated) and a poller running
# wordcount. Ctrl-C stops everything.
demo: build $(BIN)/standins
	@$(STANDINS) demo -poller $(BIN)/poller

clean:
	rm -rf $(BIN)

# The chaos test alone for five minutes (`make test` runs 90 s of it): three
# pollers under load while one is killed with -9, one is stopped with
# SIGSTOP, a shard is split and two are merged; audited for loss and order.
# One function, built and run once under AWS's runtime interface emulator
# with template.yaml's variables and events/env.json's overrides:
# `make invoke FN=WordCountFunction EVENT=events/kinesis.json`, or
# `make up` then `make invoke FN=PollerFunction EVENT=events/schedule.json`.
.PHONY: invoke start-lambda
invoke: $(BIN)/standins
	@$(STANDINS) invoke -fn $(FN) -event $(EVENT)

# The template's functions on one Invoke endpoint, as `sam local
# start-lambda`: `poller -target-function WordCountFunction
# -lambda-endpoint http://127.0.0.1:3001`. Ctrl-C stops.
start-lambda: $(BIN)/standins
	@$(STANDINS) start-lambda $(if $(PORT),-port $(PORT))

.PHONY: chaos
chaos:
	SHARDLINE_CHAOS_DURATION=5m $(GO) test -race -count=1 -timeout 30m -run TestChaos -v ./poller/
