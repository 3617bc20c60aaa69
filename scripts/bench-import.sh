#!/usr/bin/env bash
# Benchmark of issue "Foundation": import N assessments through the CLI
# against a running server (wall time, rate, the server's peak RSS), then
# the latency of GET /api/v1/recommendations?limit=100 with them stored.
#
#   scripts/bench-import.sh [N]      (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/steward" ./cmd/steward
go run ./scripts/benchtool gen -n "$n" > "$work/findings.jsonl"
echo "file: $(du -h "$work/findings.jsonl" | cut -f1), $n assessments"

port=$((20000 + RANDOM % 20000))
"$work/steward" serve --addr "127.0.0.1:$port" --db "$work/steward.db" --log-level warn &
pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# Every API call needs a token: make one on the database file, as an
# operator makes the first.
STEWARD_TOKEN="$("$work/steward" tokens create --db "$work/steward.db" --name bench --role owner)"
export STEWARD_TOKEN

start=$(date +%s.%N)
"$work/steward" import --server "http://127.0.0.1:$port" "$work/findings.jsonl" >/dev/null
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "import: ${secs}s, $(echo "$n / $secs" | bc) assessments/s (upload, validate, apply)"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MiB"}')"

# Summaries are recomputed by a job after the import; wait for it.
for _ in $(seq 600); do
  [ "$(curl -fsS -H "Authorization: Bearer $STEWARD_TOKEN" "http://127.0.0.1:$port/api/v1/recommendations?limit=1" | grep -c '"unhealthy":0,"healthy":0')" = 0 ] && break
  sleep 0.1
done
go run ./scripts/benchtool get -url "http://127.0.0.1:$port/api/v1/recommendations?limit=100" -n 2000
go run ./scripts/benchtool get -url "http://127.0.0.1:$port/api/v1/recommendations?limit=100&scope=/subscriptions/sub-03" -n 200
