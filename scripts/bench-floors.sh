#!/usr/bin/env bash
# Measures the performance scenarios of docs/benchmarks.md with `ssehub bench`:
# the hub pinned to CPU 0, the load generator to CPU 1 (taskset), loopback
# only, every run bounded in time. Usage:
#
#   scripts/bench-floors.sh [S1|S2|S3|S5|RESUME|STORM1|STORM1K|RESTART|STORM500R|STORM500N|TOKENS|DSTOKENS ...]
#
# Default: S1 S2 S3 S5 RESUME STORM1 STORM1K RESTART (STORM500R needs Redis,
# STORM500N NATS JetStream at ${NATS:-nats://127.0.0.1:4222}, DSTOKENS Node
# and npm for the Durable Streams reference server).
# Results (human summary and JSON) go to ${OUT:-/tmp/ssehub-bench}.
# HUBARGS adds serve flags (HUBARGS="--history memory"), HUBENV sets the
# hub's environment (HUBENV="GOMAXPROCS=1"), for comparing variants.
# REDIS (default redis://127.0.0.1:6379/0) is the Redis of STORM500R: the hub
# logs to a stream under a fresh --log-name, whose keys are deleted after.
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
  launch_hub "$@"
}
launch_hub() { # extra serve flags...: starts the hub on the data it finds
  taskset -c 0 env ${HUBENV:-} "$BIN" serve --addr 127.0.0.1:$PORT --data "$OUT/data" --anonymous \
    --publisher-jwt-key "$KEY" --subscriber-jwt-key "$KEY" --log-level warn --no-dashboard ${HUBARGS:-} "$@" \
    >"$OUT/hub.out" 2>"$OUT/hub.err" &
  hub_pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$hub_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "hub did not start"; cat "$OUT/hub.err"; return 1
}
stop_hub() { kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; PORT=$((PORT + 1)); }
ref_pid=""
stop_ref() { [ -z "$ref_pid" ] || { kill "$ref_pid" 2>/dev/null || true; wait "$ref_pid" 2>/dev/null || true; ref_pid=""; }; }
trap 'stop_hub; stop_ref' EXIT

bench() { # name, bench flags...
  local name=$1; shift
  echo "== $name"
  taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$PORT/.well-known/mercure" --key "$KEY" \
    --hub-pid "$hub_pid" --progress 0 --json-out "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

# RESTART: the hub is killed with -9 once publishing runs and started again
# 30 s later on the same data directory and port, while bench goes on with
# --reconnect (its subscribers come back with Last-Event-ID, waiting as a
# browser does: the retry: field, then backoff with jitter up to 5 s).
# Publishes during the outage are refused and count as publish errors, not
# as lost events. Without --hub-pid: the pid changes with the restart.
restart() {
  start_hub
  echo "== RESTART"
  taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$PORT/.well-known/mercure" --key "$KEY" \
    --progress 0 --json-out "$OUT/RESTART.json" \
    --subscribers 10000 --topics 1000 --connect-rate 2000 --rate 500 --concurrency 64 --duration 70s \
    --reconnect --reconnect-max-backoff 5s --max-time 150s --fail-on-loss >"$OUT/RESTART.txt" &
  local bench_pid=$!
  sleep 20 # connect 5 s, settle 2 s, then 13 s of publishing
  kill -9 "$hub_pid"; wait "$hub_pid" 2>/dev/null || true
  echo "hub killed at $(date +%T); restarting in 30 s"
  sleep 30
  launch_hub
  echo "hub restarted at $(date +%T) (pid $hub_pid)"
  local rc=0
  wait "$bench_pid" || rc=$?
  cat "$OUT/RESTART.txt"
  stop_hub
  return $rc
}

# STORM500R: 500 storm clients behind 100,000 events, with the log in Redis
# Streams under a fresh key prefix (deleted afterwards).
storm_redis() {
  local redis=${REDIS:-redis://127.0.0.1:6379/0} name="ssehub-bench-$(date +%s)-$$"
  start_hub --log "$redis" --log-name "$name"
  local rc=0
  bench STORM500R --subscribers 1000 --topics 100 --rate 50 --duration 60s --concurrency 64 \
    --storm 500 --storm-missed 10 --storm-behind 100000 --storm-behind-topics 1000 --storm-timeout 120s --max-time 400s --fail-on-loss || rc=$?
  stop_hub
  redis-cli -u "$redis" --scan --pattern "{$name}*" | xargs -r -n 500 redis-cli -u "$redis" del >/dev/null
  return $rc
}

# DSTOKENS: token streaming over the Durable Streams protocol (issue 16):
# DS_STREAMS streams (1000), each appended DS_RATE times a second (25) with
# DS_CHUNK-byte chunks (20) for DS_DURATION (30s), one SSE reader per stream,
# at most DS_CONCURRENCY appends in flight (500: at the floor's 20 ms p99,
# 25,000/s needs 500 in flight, so the generator never caps it). First
# ssehub (serve --anonymous-writes, durable bbolt history), then the
# protocol's Node reference server (@durable-streams/server 0.3.7 from
# scripts/ds-reference, file-backed store: fdatasync on every append),
# each pinned to CPU 0, the generator to CPU 1, and the same flags.
ds_tokens() {
  local streams=${DS_STREAMS:-1000} rate=${DS_RATE:-25} rc=0
  local flags=(--mode durable-streams --topics "$streams" --rate $((streams * rate)) --payload "${DS_CHUNK:-20}"
    --concurrency "${DS_CONCURRENCY:-500}" --duration "${DS_DURATION:-30s}" --progress 0 --fail-on-loss)
  rm -f "$OUT"/DSTOKENS-*.json
  if start_hub --anonymous-writes; then
    echo "== DSTOKENS ssehub"
    taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$PORT/v1/stream/" --hub-pid "$hub_pid" \
      --json-out "$OUT/DSTOKENS-ssehub.json" "${flags[@]}" | tee "$OUT/DSTOKENS-ssehub.txt" || rc=$?
  else
    echo "== DSTOKENS ssehub: not run (serve --anonymous-writes and /v1/stream/ are issue 16's)"; rc=1
  fi
  stop_hub

  [ -d scripts/ds-reference/node_modules ] || (cd scripts/ds-reference && npm ci --no-audit --no-fund --loglevel error)
  rm -rf "$OUT/ds-reference"
  taskset -c 0 node scripts/ds-reference/server.mjs --port "$PORT" --data "$OUT/ds-reference" >"$OUT/ds-reference.out" 2>&1 &
  ref_pid=$!
  for _ in $(seq 100); do grep -q '^listening' "$OUT/ds-reference.out" && break; sleep 0.1; done
  grep -q '^listening' "$OUT/ds-reference.out" || { echo "reference server did not start"; cat "$OUT/ds-reference.out"; return 1; }
  echo "== DSTOKENS reference ($(grep '^listening' "$OUT/ds-reference.out"))"
  taskset -c 1 "$BIN" bench --url "http://127.0.0.1:$PORT/v1/stream/" --hub-pid "$ref_pid" \
    --json-out "$OUT/DSTOKENS-reference.json" "${flags[@]}" | tee "$OUT/DSTOKENS-reference.txt" || rc=$?
  stop_ref
  PORT=$((PORT + 1))
  for f in "$OUT"/DSTOKENS-ssehub.json "$OUT"/DSTOKENS-reference.json; do
    [ -f "$f" ] && jq -r --arg f "$(basename "$f" .json)" '"\($f): \(.publish.per_second|floor) acked appends/s, append p99 \(.publish.latency.p99_ms) ms, delivery p99 \(.delivery.latency.p99_ms) ms, lost \(.delivery.missing), hub CPU \(.hub.cpu_publish_s // "?") s"' "$f"
  done
  return $rc
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
  STORM1) # one exact-topic client resumes: its topic's 10 events sit behind 200,000 on 1,000 other topics
    start_hub
    bench STORM1 --subscribers 100 --topics 10 --rate 10 --duration 20s --concurrency 64 \
      --storm 1 --storm-missed 10 --storm-behind 200000 --storm-behind-topics 1000 --max-time 300s --fail-on-loss
    stop_hub ;;
  STORM1K) # 1,000 such clients at once, each on its own topic; a control group of 1,000 live subscribers at 50/s
    start_hub
    bench STORM1K --subscribers 1000 --topics 100 --rate 50 --duration 60s --concurrency 64 \
      --storm 1000 --storm-missed 10 --storm-behind 200000 --storm-behind-topics 1000 --storm-timeout 120s --max-time 400s --fail-on-loss
    stop_hub ;;
  RESTART) # 10,000 subscribers over 1,000 topics at 500/s across a kill -9 and restart of the hub
    restart ;;
  STORM500R) # STORM1K's shape with the log in Redis: 500 clients behind 100,000 events
    storm_redis ;;
  STORM500N) # the same with the log in NATS JetStream (its stream empties itself: --history-age 15m)
    start_hub --log "${NATS:-nats://127.0.0.1:4222}" --log-name "ssehub-bench-$(date +%s)-$$" --history-age 15m
    bench STORM500N --subscribers 1000 --topics 100 --rate 50 --duration 60s --concurrency 64 \
      --storm 500 --storm-missed 10 --storm-behind 100000 --storm-behind-topics 1000 --storm-timeout 120s --max-time 400s --fail-on-loss
    stop_hub ;;
  TOKENS) # DSTOKENS's shape over Mercure (nchan-compare.sh TOKENS): 1,000 topics, one subscriber each, 25 publishes/s each, 20 B
    start_hub; bench TOKENS --subscribers 1000 --topics 1000 --rate 25000 --payload 20 --concurrency 500 --duration 15s; stop_hub ;;
  DSTOKENS) # Durable Streams token streaming: 1,000 streams x 25 appends/s x 20 B, ssehub and the Node reference server
    ds_tokens ;;
  *) echo "unknown scenario $1"; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- S1 S2 S3 S5 RESUME STORM1 STORM1K RESTART; fi
for s in "$@"; do run "$s"; done
