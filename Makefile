# Gatehouse. The two commands of the README:
#   make dev    run Gatehouse with its own PostgreSQL, a demo tenant, on http://acme.localhost:8080
#   make test   run every test (installs missing system packages when run as root)
SHELL := /bin/bash
GO    ?= go
ADDR  ?= 127.0.0.1:8080
DATA  ?= .gatehouse

.PHONY: dev test faults perf check generate build bench deps

dev: deps
	$(GO) run ./cmd/gatehouse dev --addr $(ADDR) --data-dir $(DATA)

test:
	@scripts/deps.sh test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

# Fault tests (opt-in; CI runs them; about 3 minutes): PostgreSQL restarted under a sign-up
# load, one of three nodes killed under load, a node with its clock 2 minutes ahead, SES down
# for a minute (500s, throttling, refused connections) under a sign-up load on two nodes
# (TestFaultSESOutage), and the LISTEN connections of two nodes killed again and again under
# a session-check load while sessions are revoked (TestFaultListenKilled). Short versions of
# the last two also run in `make test` (cmd/gatehouse TestRevocationAcrossProcesses,
# internal/mail TestSESOutageDelaysMail).
faults:
	@scripts/deps.sh
	set -o pipefail; GATEHOUSE_FAULTS=1 $(GO) test -count=1 -timeout 10m -run 'Fault' -v ./cmd/gatehouse \
	  | grep -E '^(--- |\s+faults.*_test.go|ok|FAIL|PASS)'

# The performance report of docs/performance.md (about 10 minutes; not part of CI):
# every hot path against its physical limit in the same run, the mix, 10 → 10,000 tenants
# and 1k → 1M users. Writes docs/perf/perf.{json,svg,txt}.
perf:
	scripts/perf.sh

# What CI checks besides the tests: formatting, imports (goimports, pinned as a tool in
# go.mod: grouped and sorted, none missing or unused) and committed sqlc output.
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')) || exit 1; \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@unimported=$$($(GO) tool goimports -local github.com/gatehouse-id/gatehouse -l $$(git ls-files '*.go')) || exit 1; \
	  if [ -n "$$unimported" ]; then echo "goimports needed (go tool goimports -local github.com/gatehouse-id/gatehouse -w FILE):"; echo "$$unimported"; exit 1; fi
	$(GO) tool sqlc vet
	$(GO) tool sqlc diff

generate:
	$(GO) tool sqlc generate

# `gatehouse version` names the version (git describe), the commit and its time: Go's own
# VCS stamping does not see git worktrees or a checkout without .git, so the linker sets them.
BIN      ?= bin/gatehouse
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
REVTIME  ?= $(shell TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd 2>/dev/null)
PKG      := github.com/gatehouse-id/gatehouse/internal
LDFLAGS  := -X $(PKG)/app.Version=$(VERSION) -X $(PKG)/cli.revision=$(REVISION) -X $(PKG)/cli.revisionTime=$(REVTIME)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/gatehouse

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

deps:
	@scripts/deps.sh
