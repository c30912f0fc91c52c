#!/usr/bin/env bash
# The performance report of docs/performance.md, with one command:
#
#   scripts/perf.sh            # or: make perf
#
# Starts `gatehouse dev` (its own private PostgreSQL, in a temporary directory) with the
# directory mailer, a second node on the same database with the session cache off, writes
# LOAD_TENANTS load tenants each with a SAML connection to a test IdP, and runs
# `gatehouse-load run` (session check vs a bare handler, login vs the argon2id bound, SAML
# ACS vs bare crewjam, sign-up + verify, the mix, the OpenID Provider's token endpoint vs
# two RS256 signatures and its userinfo and introspection vs a bare handler, webhooks: events
# per second from sign-ups to verified acknowledgements and sign-up with vs without an endpoint) and
# `gatehouse-load scale` (10 → 10,000 tenants, 1k → 1M users). Writes OUT/perf.json, OUT/perf.svg and OUT/perf.txt, and the
# memory per cached session from the session cache benchmark.
#
# Environment: OUT (default docs/perf), DURATION (20s per run), CONNS (32),
# LOAD_TENANTS (20), ACS_N (5000 sign-ins prepared for the ACS run), SCALE_TENANTS (10,100,1000,10000), SCALE_USERS (1000,10000,100000,1000000),
# PHASES (session,login,acs,signup,mix,oidc,webhooks), SCALE=0 to skip the scale run, SCALE_DURATION (10s), MEMBENCH=0 to skip the memory benchmark,
# PROFILES=DIR to capture the server's CPU and allocation profiles of the lean session check, login and timed ACS runs into DIR
# (through GATEHOUSE_PPROF_ADDR on loopback; off by default: profiling costs the server a few percent), with `go tool pprof -top` of each.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-docs/perf}"
DURATION="${DURATION:-20s}"
CONNS="${CONNS:-32}"
LOAD_TENANTS="${LOAD_TENANTS:-20}"
SCALE="${SCALE:-1}"
SCALE_TENANTS="${SCALE_TENANTS:-10,100,1000,10000}"
SCALE_USERS="${SCALE_USERS:-1000,10000,100000,1000000}"
SCALE_DURATION="${SCALE_DURATION:-10s}"
mkdir -p "$OUT"
scripts/deps.sh
work=$(mktemp -d /tmp/gatehouse-perf-XXXXXX)
chmod 755 "$work"
cleanup() {
  kill -INT $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/gatehouse-load" ./cmd/gatehouse-load
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)
port2=$(freeport)
pprof_args=()
if [ -n "${PROFILES:-}" ]; then
  mkdir -p "$PROFILES"
  pport=$(freeport)
  export GATEHOUSE_PPROF_ADDR="127.0.0.1:$pport"
  pprof_args=(-pprof-url "http://127.0.0.1:$pport" -profile-dir "$PROFILES" -acs-pprof-url "http://127.0.0.1:$pport" -acs-pprof-out "$PROFILES/acs")
fi
wait_ready() { # $1 port, $2 log
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    sleep 0.2
  done
  cat "$2"
  exit 1
}

export GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32 GATEHOUSE_LOG_LEVEL=warn
"$work/gatehouse-load" setup -idp "$work/idp" -tenants-dir "$work/tenants" -tenants "$LOAD_TENANTS"
GATEHOUSE_PPROF_ADDR=${pport:+127.0.0.1:$pport} "$work/gatehouse" dev --addr "127.0.0.1:$port" --data-dir "$work/data" --idp-addr '' >"$work/dev.out" 2>"$work/dev.log" &
wait_ready "$port" "$work/dev.log"
DATABASE_URL=$(sed -n "s/.*DATABASE_URL='\(.*\)'.*/\1/p" "$work/dev.out")
export DATABASE_URL
export GATEHOUSE_SECRET_KEY=$(cat "$work/data/secret.key")
"$work/gatehouse" tenants apply "$work/tenants" >/dev/null
# The second node works the same River queues as the first: it may reach the webhooks run's
# receiver on loopback too (gatehouse dev allows it; serve does not by default).
GATEHOUSE_PPROF_ADDR= GATEHOUSE_SESSION_CACHE_SIZE=0 GATEHOUSE_MAIL="dir:$work/data/mail" GATEHOUSE_PUBLIC_SCHEME=http GATEHOUSE_OUTBOUND_ALLOW_PRIVATE=true \
  "$work/gatehouse" serve --addr "127.0.0.1:$port2" >"$work/node2.log" 2>&1 &
wait_ready "$port2" "$work/node2.log"

{
  "$work/gatehouse-load" run -url "http://127.0.0.1:$port" -uncached-url "http://127.0.0.1:$port2" \
    -idp "$work/idp" -mailbox "$work/data/mail" -tenants "$LOAD_TENANTS" -c "$CONNS" -d "$DURATION" -acs-n "${ACS_N:-5000}" -phases "${PHASES:-session,login,acs,signup,mix,oidc,webhooks}" \
    "${pprof_args[@]}" -json "$OUT/perf.json" -svg "$OUT/perf.svg"
  if [ -n "${PROFILES:-}" ]; then
    for f in "$PROFILES"/*.pprof; do
      [ -e "$f" ] || continue
      case "$f" in
      *allocs.pprof) go tool pprof -top -nodecount=30 -sample_index=alloc_space "$f" >"${f%.pprof}.top.txt" 2>&1 ;;
      *) go tool pprof -top -nodecount=30 "$f" >"${f%.pprof}.top.txt" 2>&1 ;;
      esac
    done
    [ -f "$PROFILES/acs-cpu.pprof" ] && go tool pprof -top -cum -nodecount=80 "$PROFILES/acs-cpu.pprof" >"$PROFILES/acs-cpu.top-cum.txt" 2>/dev/null
    echo "profiles: $PROFILES"
  fi
  if [ "$SCALE" != 0 ]; then
    admin_url=${DATABASE_URL/gatehouse_app@/postgres@}
    "$work/gatehouse-load" scale -url "http://127.0.0.1:$port" -uncached-url "http://127.0.0.1:$port2" \
      -admin-db-url "$admin_url" -tenant-steps "$SCALE_TENANTS" -user-steps "$SCALE_USERS" -d "$SCALE_DURATION" \
      -json "$OUT/perf.json" -svg "$OUT/perf.svg"
  fi
  if [ "${MEMBENCH:-1}" != 0 ]; then
    echo "memory per cached session (go test ./internal/session -bench CacheMemory):"
    go test ./internal/session -run '^$' -bench CacheMemory -benchtime 1x | grep -E 'Benchmark'
  fi
} 2>&1 | tee "$OUT/perf.txt"
echo "wrote $OUT/perf.json, $OUT/perf.svg and $OUT/perf.txt"
