#!/usr/bin/env bash
# Three hub nodes on one Redis Streams log holding 45,000 subscribers in
# all (15,000 each: more than one process may hold here), with every event
# crossing nodes: generator A subscribes on node 1 and publishes to node 2,
# B on node 2 -> node 3, C on node 3 -> node 1. Loopback only, bounded in
# time. Usage: scripts/cluster-45k.sh [redis-url]   (results in $OUT)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ssehub-45k}
REDIS=${1:-redis://127.0.0.1:6379/0}
RATE=${RATE:-1}
DURATION=${DURATION:-20s}
mkdir -p "$OUT"
go build -o "$OUT/ssehub" ./cmd/ssehub
KEY=cluster-key-$(date +%s)-0123456789abcdef
NAME=bench45k$(date +%s)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

for n in 1 2 3; do
  "$OUT/ssehub" serve --addr 127.0.0.1:1840$n --log "$REDIS" --log-name "$NAME" --history memory \
    --anonymous --publisher-jwt-key "$KEY" --subscriber-jwt-key "$KEY" --log-level warn --no-dashboard \
    >"$OUT/node$n.out" 2>"$OUT/node$n.err" &
  pids+=($!)
done
for n in 1 2 3; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:1840$n/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
done

gen() { # name, subscribe node, publish node, node pid
  "$OUT/ssehub" bench --url "http://127.0.0.1:1840$2/.well-known/mercure" \
    --publish-url "http://127.0.0.1:1840$3/.well-known/mercure" --topic-prefix "$1/" \
    --subscribers 15000 --connect-rate 1000 --rate "$RATE" --duration "$DURATION" --settle 10s \
    --key "$KEY" --hub-pid "$4" --progress 0 --json-out "$OUT/$1.json" >"$OUT/$1.txt" 2>"$OUT/$1.err"
}
gen A 1 2 "${pids[0]}" & a=$!
gen B 2 3 "${pids[1]}" & b=$!
gen C 3 1 "${pids[2]}" & c=$!
wait $a $b $c || true
for g in A B C; do echo "== generator $g"; cat "$OUT/$g.txt"; done
