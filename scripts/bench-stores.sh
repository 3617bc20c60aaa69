#!/usr/bin/env bash
# Benchmark of issue 14 (PostgreSQL): the same work on SQLite and on
# PostgreSQL on this machine, one after the other: import N assessments
# through the CLI against a running server (wall time, rate, the server's
# peak RSS), then the latency of the recommendations API page and of the
# web UI's recommendations page with them stored.
#
#   PG_FSYNC=on scripts/with-postgres.sh scripts/bench-stores.sh [N] [REQUESTS]
#
# (default 1000000 and 500). with-postgres.sh starts a throwaway PostgreSQL
# server (PG_FSYNC=on: with fsync, as in production) and sets
# STEWARD_TEST_POSTGRES_URL; each backend gets a fresh database.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
requests="${2:-500}"
: "${STEWARD_TEST_POSTGRES_URL:?run under scripts/with-postgres.sh}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/steward" ./cmd/steward
go build -o "$work/benchtool" ./scripts/benchtool
"$work/benchtool" gen -n "$n" > "$work/findings.jsonl"
echo "file: $(du -h "$work/findings.jsonl" | cut -f1), $n assessments"

run() {
  local name="$1" db="$2"
  echo "== $name"
  local port=$((20000 + RANDOM % 20000))
  local base="http://127.0.0.1:$port"
  "$work/steward" serve --addr "127.0.0.1:$port" --db "$db" --log-level warn &
  pid=$!
  for _ in $(seq 100); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  STEWARD_TOKEN="$("$work/steward" tokens create --db "$db" --name bench --role owner)"
  export STEWARD_TOKEN
  local start end secs
  start=$(date +%s.%N)
  "$work/steward" import --server "$base" "$work/findings.jsonl" >/dev/null
  end=$(date +%s.%N)
  secs=$(echo "$end - $start" | bc)
  echo "import: ${secs}s, $(echo "$n / $secs" | bc) assessments/s (upload, validate, apply)"
  echo "server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MiB"}')"
  for _ in $(seq 1200); do
    [ "$(curl -fsS -H "Authorization: Bearer $STEWARD_TOKEN" "$base/api/v1/recommendations?limit=1" | grep -c '"unhealthy":0,"healthy":0')" = 0 ] && break
    sleep 0.1
  done
  printf '%-52s ' "GET /api/v1/recommendations?limit=100"
  "$work/benchtool" get -url "$base/api/v1/recommendations?limit=100" -n "$requests"
  printf '%-52s ' "GET /api/v1/recommendations?limit=100&scope=sub-03"
  "$work/benchtool" get -url "$base/api/v1/recommendations?limit=100&scope=/subscriptions/sub-03" -n "$requests"
  local cookie
  cookie="$(curl -fsS -o /dev/null -D - --data-urlencode "token=$STEWARD_TOKEN" "$base/signin" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\);.*/\1/p')"
  for page in /recommendations "/recommendations?scope=/subscriptions/sub-03" /recommendations/rec-002; do
    printf '%-52s ' "UI $page"
    "$work/benchtool" get -url "$base$page" -cookie "$cookie" -n "$requests"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  case "$db" in
  postgres://*) echo "database size: $(psql -qtA "$db" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")" ;;
  *) echo "database size: $(du -ch "$db" "$db-wal" 2>/dev/null | tail -1 | cut -f1)" ;;
  esac
}

run sqlite "$work/steward.db"
# Every process on a PostgreSQL database shares one secret key.
STEWARD_SECRET_KEY="$(openssl rand -base64 32)"
export STEWARD_SECRET_KEY
# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
run postgres "$(pg_new_database steward_bench)"
