#!/usr/bin/env bash
# Measures the performance scenarios of docs/benchmarks.md with `ssehub bench`:
# the hub pinned to CPU 0, the load generator to CPU 1 (taskset), loopback
# only, every run bounded in time. Usage:
#
#   scripts/bench-floors.sh [S1|S2|S3|S5|RESUME|STORM1|STORM1K|RESTART|STORM500R|STORM500N ...]
#
# Default: S1 S2 S3 S5 RESUME STORM1 STORM1K RESTART (STORM500R needs Redis,
# STORM500N NATS JetStream at ${NATS:-nats://127.0.0.1:4222}).
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
  *) echo "unknown scenario $1"; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- S1 S2 S3 S5 RESUME STORM1 STORM1K RESTART; fi
for s in "$@"; do run "$s"; done
