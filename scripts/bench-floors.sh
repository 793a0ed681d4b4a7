#!/usr/bin/env bash
# Measures the performance scenarios of docs/benchmarks.md with `ssehub bench`:
# the hub pinned to CPU 0, the load generator to CPU 1 (taskset), loopback
# only, every run bounded in time. Usage:
#
#   scripts/bench-floors.sh [S1|S2|S3|S5|RESUME ...]    (default: all)
#
# Results (human summary and JSON) go to ${OUT:-/tmp/ssehub-bench}.
# HUBARGS adds serve flags (HUBARGS="--history memory"), HUBENV sets the
# hub's environment (HUBENV="GOMAXPROCS=1"), for comparing variants.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ssehub-bench}
mkdir -p "$OUT"
go build -o "$OUT/ssehub" ./cmd/ssehub
BIN="$OUT/ssehub"
KEY=bench-key-$(date +%s)-0123456789abcdef
PORT=${PORT:-18180}

hub_pid=""
start_hub() { # extra serve flags...
  rm -rf "$OUT/data"
  taskset -c 0 env ${HUBENV:-} "$BIN" serve --addr 127.0.0.1:$PORT --data "$OUT/data" --anonymous \
    --publisher-jwt-key "$KEY" --subscriber-jwt-key "$KEY" --log-level warn --no-dashboard ${HUBARGS:-} "$@" \
    >"$OUT/hub.out" 2>"$OUT/hub.err" &
  hub_pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "hub did not start"; cat "$OUT/hub.err"; exit 1
}
stop_hub() { kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; PORT=$((PORT + 1)); }
trap stop_hub EXIT

bench() { # name, bench flags...
  local name=$1; shift
  echo "== $name"
  taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$PORT/.well-known/mercure" --key "$KEY" \
    --hub-pid "$hub_pid" --progress 0 --json-out "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

run() {
  case $1 in
  S1) # RSS per idle connection: 15,000 held, connected at 2,000/s
    start_hub; bench S1 --subscribers 15000 --connect-rate 2000 --rate 1 --duration 5s --settle 5s; stop_hub ;;
  S2) # 10,000 subscribers, 1 topic, 10 publishes/s, durable history
    start_hub; bench S2 --subscribers 10000 --connect-rate 2000 --rate 10 --duration 30s; stop_hub ;;
  S3) # 10,000 subscribers over 1,000 topics, 500 publishes/s, durable history
    start_hub; bench S3 --subscribers 10000 --topics 1000 --connect-rate 2000 --rate 500 --concurrency 64 --duration 30s; stop_hub ;;
  S5) # acknowledged publishes/s over 100 topics, durable history (fsync per group commit)
    start_hub; bench S5 --subscribers 0 --topics 100 --rate 12000 --concurrency 100 --duration 20s; stop_hub ;;
  RESUME) # a client that missed 10,000 events reconnects while 1,000 others get live traffic
    start_hub; bench RESUME --subscribers 1000 --topics 10 --rate 100 --duration 10s --resume-missed 10000; stop_hub ;;
  *) echo "unknown scenario $1"; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- S1 S2 S3 S5 RESUME; fi
for s in "$@"; do run "$s"; done
