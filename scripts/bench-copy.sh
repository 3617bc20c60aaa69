#!/usr/bin/env bash
# Benchmark of `steward migrate copy` (issue 14): N assessments imported
# into SQLite through the real import path (a server and the CLI, as
# bench-import.sh does), the server stopped, then the SQLite file copied
# into a fresh PostgreSQL database and verified. Prints the command's own
# report (per-table rows/s, the verification table) and the wall time.
#
#   PG_FSYNC=on scripts/with-postgres.sh scripts/bench-copy.sh [N] [BATCH]
#
# (default 1000000 and 10000). with-postgres.sh starts a throwaway
# PostgreSQL server and sets STEWARD_TEST_POSTGRES_URL; this script creates
# a database on it for the copy.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
batch="${2:-10000}"
: "${STEWARD_TEST_POSTGRES_URL:?run under scripts/with-postgres.sh}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/steward" ./cmd/steward
go run ./scripts/benchtool gen -n "$n" > "$work/findings.jsonl"
echo "file: $(du -h "$work/findings.jsonl" | cut -f1), $n assessments"

db="$work/steward.db"
port=$((20000 + RANDOM % 20000))
"$work/steward" serve --addr "127.0.0.1:$port" --db "$db" --log-level warn &
pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
STEWARD_TOKEN="$("$work/steward" tokens create --db "$db" --name bench --role owner)"
export STEWARD_TOKEN
start=$(date +%s.%N)
"$work/steward" import --server "http://127.0.0.1:$port" "$work/findings.jsonl" >/dev/null
echo "import into SQLite: $(echo "$(date +%s.%N) - $start" | bc)s"
# The summaries job runs after the import; let it finish before stopping.
for _ in $(seq 600); do
  [ "$(curl -fsS -H "Authorization: Bearer $STEWARD_TOKEN" "http://127.0.0.1:$port/api/v1/recommendations?limit=1" | grep -c '"unhealthy":0,"healthy":0')" = 0 ] && break
  sleep 0.1
done
kill -TERM "$pid"
wait "$pid" || true
pid=
echo "SQLite file: $(du -h "$db" | cut -f1)"

name="steward_copy_$$"
psql -q "$STEWARD_TEST_POSTGRES_URL" -c "CREATE DATABASE $name"
to="${STEWARD_TEST_POSTGRES_URL/\/postgres\?//$name?}"
echo "PostgreSQL fsync=$(psql -At "$to" -c 'show fsync')"
start=$(date +%s.%N)
"$work/steward" migrate copy --from "$db" --to "$to" --batch "$batch"
echo "migrate copy (open, copy, verify): $(echo "$(date +%s.%N) - $start" | bc)s"
echo "PostgreSQL database: $(psql -At "$to" -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"
psql -q "$STEWARD_TEST_POSTGRES_URL" -c "DROP DATABASE $name WITH (FORCE)"
