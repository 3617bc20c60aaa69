#!/usr/bin/env bash
# Benchmark of issue 12 (web UI): with N assessments stored (default
# 1,000,000: 100 recommendations × 10,000 resources), the latency of the
# main pages as a signed-in browser asks for them, one request after
# another over loopback: the overview, the recommendations list (plain,
# filtered by severity, filtered by a subscription's scope and by
# /subscriptions, which holds every assessment) and two recommendations' pages
# (each: its first page of unhealthy, healthy and not applicable resources
# with their assignments).
#
#   scripts/bench-ui.sh [N] [REQUESTS]     (default 1000000 and 500)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
requests="${2:-500}"
work="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/steward" ./cmd/steward
go build -o "$work/benchtool" ./scripts/benchtool
"$work/benchtool" gen -n "$n" > "$work/findings.jsonl"
echo "file: $(du -h "$work/findings.jsonl" | cut -f1), $n assessments"

port=$((20000 + RANDOM % 20000))
base="http://127.0.0.1:$port"
"$work/steward" serve --addr "127.0.0.1:$port" --db "$work/steward.db" --log-level warn &
pid=$!
for _ in $(seq 50); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
STEWARD_TOKEN="$("$work/steward" tokens create --db "$work/steward.db" --name bench --role owner)"
export STEWARD_TOKEN
"$work/steward" import --server "$base" "$work/findings.jsonl" >/dev/null
for _ in $(seq 600); do
  [ "$(curl -fsS -H "Authorization: Bearer $STEWARD_TOKEN" "$base/api/v1/recommendations?limit=1" | grep -c '"unhealthy":0,"healthy":0')" = 0 ] && break
  sleep 0.1
done

# Sign in as a browser does and keep the session cookie.
cookie="$(curl -fsS -o /dev/null -D - --data-urlencode "token=$STEWARD_TOKEN" "$base/signin" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \([^;]*\);.*/\1/p')"
[ -n "$cookie" ] || { echo "sign-in failed" >&2; exit 1; }

for page in / /recommendations "/recommendations?severity=High" "/recommendations?scope=/subscriptions/sub-03" \
  "/recommendations?scope=/subscriptions" /recommendations/rec-002 /recommendations/rec-097; do
  printf '%-48s ' "$page"
  "$work/benchtool" get -url "$base$page" -cookie "$cookie" -n "$requests"
done
