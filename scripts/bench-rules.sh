#!/usr/bin/env bash
# Benchmark of issue 11 (governance rules): the same import of N assessments
# into a fresh database without rules and with 100 enabled rules (one per
# recommendation, each on one of the 20 subscriptions, every fifth also
# matching Critical findings), wall time of each and their ratio. Rules
# assign what they match in the import's own transactions.
#
#   scripts/bench-rules.sh [N] [ROUNDS]     (default 1000000 and 3)
#
# Rounds alternate without/with on fresh databases; the medians and their
# ratio are printed (these machines are shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
rounds="${2:-3}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/steward" ./cmd/steward
go run ./scripts/benchtool gen -n "$n" > "$work/findings.jsonl"
echo "file: $(du -h "$work/findings.jsonl" | cut -f1), $n assessments"

{
  echo "rules:"
  for i in $(seq 0 99); do
    printf -- "  - name: rule-%03d\n    priority: %d\n    scope: /subscriptions/sub-%02d\n    when:\n      - {recommendation: [rec-%03d]}\n" "$i" "$i" $((i % 20)) "$i"
    if [ $((i % 5)) = 0 ]; then echo "      - {severity: [Critical], cloud: [azure]}"; fi
    echo "    owner: {tag: owner, fallback: secops@example.com}"
    echo "    due_in_days: 14"
  done
} > "$work/rules.yaml"

run() { # $1: kind (without or with100), $2: rules file or empty
  local db="$work/$1.db" port=$((20000 + RANDOM % 20000))
  "$work/steward" serve --addr "127.0.0.1:$port" --db "$db" --log-level error &
  pid=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  STEWARD_TOKEN="$("$work/steward" tokens create --db "$db" --name bench --role owner 2>/dev/null)"
  export STEWARD_TOKEN
  if [ -n "$2" ]; then
    "$work/steward" rules apply --server "http://127.0.0.1:$port" -f "$2" --yes >/dev/null
  fi
  local start end
  start=$(date +%s.%N)
  "$work/steward" import --server "http://127.0.0.1:$port" -o json "$work/findings.jsonl" > "$work/$1.json"
  end=$(date +%s.%N)
  echo "$1: $(echo "$end - $start" | bc) s, rule assignments: $(grep -o '"rule_assignments": *[0-9]*' "$work/$1.json" | grep -o '[0-9]*$')"
  echo "$end - $start" | bc >> "$work/$1.secs"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -f "$db" "$db-wal" "$db-shm" "$db.lock" "$work/steward.key" "$work/steward.token"
  rm -rf "$work/steward-spool"
}
median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for _ in $(seq "$rounds"); do
  run without ""
  run with100 "$work/rules.yaml"
done
without=$(median "$work/without.secs")
with=$(median "$work/with100.secs")
echo "median of $rounds: without $without s, with 100 rules $with s, ratio $(echo "scale=3; $with / $without" | bc)"
