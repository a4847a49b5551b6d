# Eddy — the two commands of the README, and the pieces they are made of.
GO ?= go
BIN := bin/eddy
# The scorer's AVX2/AVX-512 top-K kernels use Go 1.26's experimental
# simd/archsimd; without it a portable kernel (about 5x slower) is built.
export GOEXPERIMENT ?= simd
# Packages with goroutines of their own: their tests also run under -race.
RACE_DIRS := ingest stream internal cmd test drift features scorer learner connectors
RACE_PKGS := $(foreach d,$(RACE_DIRS),$(if $(wildcard $(d)),./$(d)/...))

.PHONY: run test build lint unit portable race integration-real bench clean

## run: the whole system on one machine (embedded broker, all roles, demo traffic)
run: build
	$(BIN) up --demo

## test: lint, unit and integration tests (embedded broker), race detector,
## and the integration suite against a real Kafka broker and kcat
test: lint unit portable race integration-real

build:
	$(GO) build -o $(BIN) ./cmd/eddy

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; \
	elif [ "$$EDDY_REQUIRE_REAL_PEERS" = 1 ]; then echo "staticcheck missing"; exit 1; \
	else echo "SKIPPED: staticcheck (not installed; scripts/install-ci-deps.sh installs it)"; fi

unit:
	$(GO) test -count=1 ./...

# -short: the dataset-sized tests already ran without -race in unit.
# The scorer and the batch trainer again without GOEXPERIMENT=simd: the
# portable kernels must stay correct.
portable:
	GOEXPERIMENT= $(GO) test -count=1 ./scorer/... ./learner/ials/

race:
	$(GO) test -race -short -count=1 $(RACE_PKGS)

integration-real:
	bash scripts/integration.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./event/ ./drift/ ./internal/recs/ ./internal/synth/ ./learner/ials/

clean:
	rm -rf bin
