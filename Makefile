# sparkguard: build, test and check every module of the Go workspace.

SHELL   := /bin/bash
PKGS    := github.com/sparkguard/sparkguard/...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/sparkguard/sparkguard/platform/app.Version=$(VERSION)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"
# Pinned tools. buf and protoc-gen-go are pinned in proto/tools/go.mod.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BUF         := GOWORK=off go tool -modfile=tools/go.mod buf

.PHONY: all build test bench generate checkgenerate lint ci clean

all: build

## build: every binary into bin/
build:
	$(GOBUILD) -o bin/ingress ./services/ingress/cmd/ingress
	$(GOBUILD) -o bin/authz ./services/authz/cmd/authz
	$(GOBUILD) -o bin/responder ./services/responder/cmd/responder
	$(GOBUILD) -o bin/webexsim ./tools/webexsim/cmd/webexsim
	$(GOBUILD) -o bin/sparkguard ./cmd/sparkguard

## test: every module's tests (the workspace pattern covers them all), with -race
test:
	go test -race -count=1 -timeout 15m $(PKGS)

## bench: the benchmarks, each with its same-run baseline (docs/benchmarks.md)
bench:
	go test -run '^$$' -bench . -count 3 ./services/ingress/

## generate: the Go code of the bus schemas in proto/
generate:
	cd proto && $(BUF) lint && $(BUF) generate

## checkgenerate: fail when the committed generated code is not what the generator makes
checkgenerate: generate
	@if [ -n "$$(git status --porcelain -- proto)" ]; then \
		echo "generated code is out of date: run make generate and commit"; \
		git status --porcelain -- proto; git diff -- proto | head -50; exit 1; \
	fi

## lint: formatting, go vet and staticcheck over every module
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt'ed: $$unformatted"; exit 1; fi
	go vet $(PKGS)
	go run $(STATICCHECK) $(PKGS)

## ci: everything CI runs
ci: checkgenerate lint test build

clean:
	rm -rf bin
