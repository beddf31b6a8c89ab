# Shardline. `make demo` runs the word count on local stand-ins; `make test`
# runs every test. Both install what they need (Go modules, the pinned npm
# stand-ins under .cache/).
GO        ?= go
BIN       := bin
STANDINS  := $(BIN)/standins
TEST_TIMEOUT ?= 15m

# Lambda: provided.al2023 bootstraps, static, -tags lambda.norpc.
# ARCH: arm64 (template.yaml's default Architecture), amd64 or x86_64.
ARCH      ?= arm64
GOARCH_OF  = $(patsubst x86_64,amd64,$(ARCH))
LAMBDA_GO := CGO_ENABLED=0 GOOS=linux $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

# The Lambda functions are template.yaml's: every AWS::Serverless::Function
# whose Metadata names a GoPackage (the main package to build, from the
# module root). There is no list of them here: add a function to the
# template and `make lambda`, `sam build` (build-<LogicalId>) and `make
# invoke FN=<LogicalId>` know it. awk reads the layout template.yaml keeps
# (two spaces per level, GoPackage a plain or double-quoted path);
# functions/poller's TestTemplateAgrees checks that it finds what the Go
# reader (shared/standin/samtemplate) finds.
TEMPLATE  ?= template.yaml
FUNCTIONS_AWK = /^[A-Za-z]/ { sec = $$1; next } \
  sec != "Resources:" { next } \
  /^  [A-Za-z0-9]+:[ ]*$$/ { id = $$1; sub(/:$$/, "", id); ids[++n] = id; block = ""; next } \
  /^    [A-Za-z]/ { block = $$1 } \
  /^    Type:/ && $$2 == "AWS::Serverless::Function" { fn[id] = 1 } \
  block == "Metadata:" && /^      GoPackage:/ { v = $$2; gsub(/"/, "", v); pkg[id] = v } \
  END { for (i = 1; i <= n; i++) { f = ids[i]; if (!fn[f] || pkg[f] == "") continue; \
    if (want == "") print f, pkg[f]; else if (f == want) print pkg[f] } }
# "LogicalId GoPackage ..." of every function; the GoPackage of function $(1).
template_functions = $(shell awk -v want= '$(FUNCTIONS_AWK)' $(TEMPLATE))
go_package = $(shell awk -v want='$(1)' '$(FUNCTIONS_AWK)' $(TEMPLATE))

.PHONY: FORCE all build lambda test unit lint lint-go lint-template-if-there bench fuzz demo up down env clean tidy-check

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

# Every function of the template for both architectures, under
# bin/lambda/<LogicalId>/<arch>/bootstrap. (functions/poller, the generic
# poller with no handler of its own, is not in the template: `go build
# ./functions/poller` with the same flags builds it.)
lambda:
	@set -- $(template_functions); \
	test $$# -gt 0 || { echo "$(TEMPLATE): no AWS::Serverless::Function with a Metadata GoPackage"; exit 1; }; \
	while [ $$# -ge 2 ]; do id=$$1; pkg=$$2; shift 2; for arch in arm64 amd64; do \
	  echo "bin/lambda/$$id/$$arch/bootstrap ($$pkg)"; \
	  GOARCH=$$arch $(LAMBDA_GO) -o $(BIN)/lambda/$$id/$$arch/bootstrap $$pkg || exit 1; \
	done; done

# What the Makefiles find in TEMPLATE: "LogicalId GoPackage" per function.
.PHONY: template-functions
template-functions:
	@echo $(template_functions)

# `sam build` (BuildMethod: makefile, through functions/Makefile) calls
# build-<LogicalId> with ARTIFACTS_DIR set: it builds the function's
# GoPackage from TEMPLATE. The architecture follows ARCH (default arm64, as
# template.yaml's default): `ARCH=x86_64 sam build --parameter-overrides
# Architecture=x86_64`.
build-%:
	@test -n "$(ARTIFACTS_DIR)" || { echo "build-$*: ARTIFACTS_DIR is not set (sam build sets it)"; exit 1; }
	@test -n "$(call go_package,$*)" || { echo "build-$*: $(TEMPLATE) has no AWS::Serverless::Function $* with a Metadata GoPackage (it has: $(template_functions))"; exit 1; }
	GOARCH=$(GOARCH_OF) $(LAMBDA_GO) -o $(ARTIFACTS_DIR)/bootstrap $(call go_package,$*)

# Every test: unit tests, the de-aggregation fuzz seeds, and the integration
# tests against kinesis-mock and DynamoDB Local started by the tests.
test: lint-go lint-template-if-there
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

# Unit tests only (no stand-ins).
unit:
	$(GO) test -race -short -count=1 ./...

lint: lint-go
	@command -v cfn-lint >/dev/null || { echo "cfn-lint is needed to check template.yaml: pip install cfn-lint (it brings the SAM translator)"; exit 1; }
	cfn-lint template.yaml

lint-go: tidy-check
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# make test lints the template where cfn-lint is installed, and says so in
# one line where it is not (make lint requires it).
lint-template-if-there:
	@if command -v cfn-lint >/dev/null; then echo cfn-lint template.yaml; cfn-lint template.yaml; \
	  else echo "cfn-lint not found: template.yaml not linted (pip install cfn-lint; make lint requires it)"; fi

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
	$(GO) test -run='^$$' -fuzz='^FuzzEventStream$$' -fuzztime=60s ./shared/fetch/

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
	@$(STANDINS) demo -poller $(BIN)/poller $(if $(CONSUMER),-consumer $(CONSUMER))

clean:
	rm -rf $(BIN)

# The chaos test alone for five minutes (`make test` runs 90 s of it): three
# pollers under load while one is killed with -9, one is stopped with
# SIGSTOP, a shard is split and two are merged; audited for loss and order.
# One function of the template, built as sam build builds it and run once
# under AWS's runtime interface emulator with its variables and
# events/env.json's overrides; exits non-zero when the function returns an
# error. FN may be left out when the template has one function:
# `make invoke EVENT=events/kinesis.json`, or `make up` then
# `make invoke FN=HandlerFunction EVENT=events/poll-once.json`.
.PHONY: invoke start-lambda
invoke: $(BIN)/standins
	@test -n "$(EVENT)" || { echo "make invoke: EVENT=<file> is required (events/kinesis.json, events/poll-once.json, ...)"; exit 2; }
	@$(STANDINS) invoke -template $(TEMPLATE) $(if $(FN),-fn $(FN)) -event $(EVENT)

# The template's functions on one Invoke endpoint, as `sam local
# start-lambda`: `poller run -target-function HandlerFunction
# -lambda-endpoint http://127.0.0.1:3001`. Ctrl-C stops.
start-lambda: $(BIN)/standins
	@$(STANDINS) start-lambda -template $(TEMPLATE) $(if $(PORT),-port $(PORT))

.PHONY: chaos
chaos:
	SHARDLINE_CHAOS_DURATION=5m $(GO) test -race -count=1 -timeout 30m -run TestChaos -v ./poller/
