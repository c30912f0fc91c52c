#!/usr/bin/env bash
# Makes sure what the tests and `gatehouse dev` need is on this machine: Go, the
# PostgreSQL server binaries (initdb, pg_ctl) unless TEST_DATABASE_URL is set, and for
# `deps.sh test` Debian's Chromium and PgBouncer. As root it installs missing Debian packages; otherwise it
# prints the exact command to run.
set -euo pipefail

missing=()
if ! command -v go >/dev/null 2>&1; then
  echo "Go 1.26 is required: https://go.dev/dl/ (or /usr/local/go/bin on PATH)" >&2
  exit 1
fi
have_pg_bins() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
if [ -z "${TEST_DATABASE_URL:-}" ] && ! have_pg_bins; then
  missing+=(postgresql)
fi
# The browser tests drive Debian's Chromium (`make dev` does not need it).
if [ "${1:-}" = "test" ] && ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
# The PgBouncer tests (transaction mode in front of the test server) run Debian's pgbouncer.
if [ "${1:-}" = "test" ] && ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  missing+=(pgbouncer)
fi
# A postgres system user owns private clusters started as root; the postgresql package creates it.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "missing system packages; run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
