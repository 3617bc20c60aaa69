#!/usr/bin/env bash
# Benchmark of issue "Foundation": import N assessments through the CLI
# against a running server (wall time, rate, the server's peak RSS), then
# the latency of GET /api/v1/recommendations?limit=100 with them stored.
#
#   scripts/bench-import.sh [N]      (default 1000000)
#
# STEWARD_BIN=path runs that binary instead of building this checkout (to
# compare with an older build); BENCH_FILE=path keeps the generated file
# there and reuses it when it exists (generating 1M records takes a while).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

bin="${STEWARD_BIN:-$work/steward}"
[ -n "${STEWARD_BIN:-}" ] || go build -o "$bin" ./cmd/steward
file="${BENCH_FILE:-$work/findings.jsonl}"
[ -s "$file" ] || go run ./scripts/benchtool gen -n "$n" > "$file"
echo "file: $(du -h "$file" | cut -f1), $n assessments"

port=$((20000 + RANDOM % 20000))
"$bin" serve --addr "127.0.0.1:$port" --db "$work/steward.db" --log-level info 2>"$work/serve.log" &
pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
# Every API call needs a token: make one on the database file, as an
# operator makes the first.
STEWARD_TOKEN="$("$bin" tokens create --db "$work/steward.db" --name bench --role owner)"
export STEWARD_TOKEN

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # user + system clock ticks
cpu0=$(cpu)
start=$(date +%s.%N)
"$bin" import --server "http://127.0.0.1:$port" "$file" >/dev/null
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "import: ${secs}s, $(echo "$n / $secs" | bc) assessments/s (upload, parse, apply)"
echo "server peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MiB"}')"
# CPU time is steadier than wall time on a shared machine; an idle 2-core
# machine needs about the larger of (parse, apply), overlapped.
echo "server CPU during the import: $(echo "scale=1; ($(cpu) - $cpu0) / $(getconf CLK_TCK)" | bc)s"
# How long the server spent on the file (parse and apply; on SQLite the one
# writer is held for about as long, from the first chunk to the commit).
grep -o 'msg="file applied".*' "$work/serve.log" | grep -o 'took=[^ ]*' || true

# Summaries are recomputed by a job after the import; wait for it.
for _ in $(seq 600); do
  [ "$(curl -fsS -H "Authorization: Bearer $STEWARD_TOKEN" "http://127.0.0.1:$port/api/v1/recommendations?limit=1" | grep -c '"unhealthy":0,"healthy":0')" = 0 ] && break
  sleep 0.1
done
go run ./scripts/benchtool get -url "http://127.0.0.1:$port/api/v1/recommendations?limit=100" -n 2000
go run ./scripts/benchtool get -url "http://127.0.0.1:$port/api/v1/recommendations?limit=100&scope=/subscriptions/sub-03" -n 200
