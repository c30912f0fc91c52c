# Gatehouse. The two commands of the README:
#   make dev    run Gatehouse with its own PostgreSQL, a demo tenant, on http://acme.localhost:8080
#   make test   run every test (installs missing system packages when run as root)
SHELL := /bin/bash
GO    ?= go
ADDR  ?= 127.0.0.1:8080
DATA  ?= .gatehouse

.PHONY: dev test check generate build bench deps

dev: deps
	$(GO) run ./cmd/gatehouse dev --addr $(ADDR) --data-dir $(DATA)

test:
	@scripts/deps.sh test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# What CI checks besides the tests: formatting and committed sqlc output.
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) tool sqlc vet
	$(GO) tool sqlc diff

generate:
	$(GO) tool sqlc generate

build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

deps:
	@scripts/deps.sh
