# Shardline. `make demo` runs the word count on local stand-ins; `make test`
# runs every test. Both install what they need (Go modules, the pinned npm
# stand-ins under .cache/).
GO        ?= go
BIN       := bin
STANDINS  := $(GO) run ./shared/standin/cmd/standins
TEST_TIMEOUT ?= 15m

.PHONY: all build test unit lint bench fuzz demo up down env clean tidy-check

all: build

build:
	$(GO) build -o $(BIN)/poller ./poller

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

tidy-check:
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go mod tidy would change go.mod/go.sum:"; $(GO) mod tidy -diff; exit 1; }

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDeaggregate -fuzztime=60s ./shared/kpl/

# Local stand-ins for users: start, print the endpoints, stop.
up:
	@$(STANDINS) up -streams words:4

down:
	@$(STANDINS) down

env:
	@$(STANDINS) env

# The main job on local stand-ins: a 4-shard stream, the word producer
# (1000 lines/s, 10 numbers each, KPL-aggregated) and a poller running
# wordcount. Ctrl-C stops everything.
demo: build
	@$(STANDINS) demo -poller $(BIN)/poller

clean:
	rm -rf $(BIN)
