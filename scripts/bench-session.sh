#!/usr/bin/env bash
# Measures the session check (docs/performance.md): Gatehouse with its session cache,
# Gatehouse without it, and a bare net/http handler serving the same JSON from memory, all
# on this machine over loopback, 32 connections, 20 s each (DURATION, CONNS override).
# Starts `gatehouse dev` with a private PostgreSQL in a temporary directory and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-20s}"
CONNS="${CONNS:-32}"
work=$(mktemp -d /tmp/gatehouse-bench-XXXXXX)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/gatehouse-load" ./cmd/gatehouse-load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start_dev() { # $1: session cache size, $2: log level
  GATEHOUSE_SESSION_CACHE_SIZE="$1" GATEHOUSE_LOG_LEVEL="$2" \
    "$work/gatehouse" dev --addr "127.0.0.1:$port" --data-dir "$work/data" >"$work/dev.log" 2>&1 &
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.2
  done
  cat "$work/dev.log"; exit 1
}
stop_dev() { kill -INT %1; wait %1 || true; }
token() {
  curl -sf -H 'Host: acme.localhost' -H 'Content-Type: application/json' \
    -d '{"email":"user@acme.example","password":"demo-correct-horse-battery"}' \
    "http://127.0.0.1:$port/api/v1/login" | python3 -c 'import json,sys; print(json.load(sys.stdin)["session"]["token"])'
}
load() { "$work/gatehouse-load" -url "http://127.0.0.1:$port/api/v1/session" -host acme.localhost -c "$CONNS" -d "$DURATION" "$@"; }

echo "machine: $(nproc) cores, $(free -h | awk '/Mem:/{print $2}') RAM, $(go version | cut -d' ' -f3), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/gatehouse-load" -bare -token x -c "$CONNS" -d "$DURATION" -label "bare net/http"
start_dev 100000 info;  tok=$(token); load -token "$tok" -label "gatehouse cached";            stop_dev
start_dev 100000 warn;  tok=$(token); load -token "$tok" -label "gatehouse cached, no access log"; stop_dev
start_dev 0 info;       tok=$(token); load -token "$tok" -label "gatehouse uncached";          stop_dev
