#!/usr/bin/env bash
# Measures `npm start` on PGlite: time until /healthz answers, and the server's RSS.
# Usage: bash bench/startup.sh [runs]   (odd runs: fresh data directory; even runs: restart on it)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
port=3917
printf '| run | data dir | ready (ms) | RSS at ready (MB) | RSS after 200 requests (MB) |\n|---|---|---|---|---|\n'
dir=""
for i in $(seq 1 "$runs"); do
  # Odd runs start on a fresh, empty data directory (initdb + migrations); even runs restart on it.
  if [ $((i % 2)) -eq 1 ]; then dir=$(mktemp -d); kind=fresh; else kind=existing; fi
  t0=$(date +%s%N)
  PORT=$port DATA_DIR="$dir" ORGSYNC_OPERATOR_TOKEN=bench-operator-token-000 LOG_LEVEL=warn npm start --silent >/dev/null 2>&1 &
  npm_pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; do sleep 0.02; done
  t1=$(date +%s%N)
  pid=$(ss -ltnpH "sport = :$port" | sed -E 's/.*pid=([0-9]+).*/\1/' | head -1)
  rss1=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  key=$(curl -s -XPOST "http://127.0.0.1:$port/api/v1/orgs" -H 'authorization: Bearer bench-operator-token-000' -H 'content-type: application/json' -d '{"name":"Bench"}' | sed -E 's/.*"id":"([^"]+)".*"adminKey":"([^"]+)".*/\1 \2/')
  org=${key% *}; k=${key#* }
  for j in $(seq 1 200); do
    curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/api/v1/orgs/$org/accounts" -H "authorization: Bearer $k" -H 'content-type: application/json' -d "{\"email\":\"u$j@bench.example\"}"
  done
  rss2=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$npm_pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  printf '| %s | %s | %d | %d | %d |\n' "$i" "$kind" $(( (t1 - t0) / 1000000 )) $(( rss1 / 1024 )) $(( rss2 / 1024 ))
  if [ "$kind" = existing ]; then rm -rf "$dir"; fi
done
