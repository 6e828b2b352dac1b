# The two commands that matter: `make run` starts the whole system on embedded defaults,
# `make test` checks it. See README.md.
GO          ?= go
BIN         := bin/orchestrator
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The tests share one machine's PostgreSQL and build the Temporal server: two packages at once
# keeps memory and time in check on two cores.
TESTFLAGS   ?= -race -timeout 30m -p 2

.PHONY: run build test lint bench fuzz clean

run: build ## Start everything in one process: PostgreSQL, S3, Temporal + UI, workers, API
	./$(BIN) dev

build: ## Build bin/orchestrator
	$(GO) build -o $(BIN) ./cmd/orchestrator

test: ## go vet, the alert rules (promtool), then every test against real parts, with the race detector
	$(GO) vet ./...
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/alerts_test.yml
	$(GO) test $(TESTFLAGS) ./...

lint: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: ## Benchmarks and load runs; each prints a table
	@command -v wrk >/dev/null || { echo "make bench: the HTTP benchmarks' load generator is wrk (apt-get install wrk)" >&2; exit 1; }
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

FUZZTIME ?= 30s
fuzz: ## Fuzz the API's request decoders (FUZZTIME each; the seed corpora also run in make test)
	$(GO) test -run '^$$' -fuzz '^FuzzCommentRequest$$' -fuzztime $(FUZZTIME) ./api/fuzz/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMessageRequest$$' -fuzztime $(FUZZTIME) ./api/fuzz/

clean:
	rm -rf bin
