#!/usr/bin/env bash
# Runs the docs/benchmarks.md scenarios against nginx + nchan (Debian's
# nginx-light and libnginx-mod-nchan, installed if missing), with the same
# generator, pinning and flags as scripts/bench-floors.sh: one nginx worker
# on CPU 0, `ssehub bench --mode plain` on CPU 1, loopback only.
#
#   scripts/nchan-compare.sh [S1|S2|S3|STORM1|STORM1K|TOKENS ...]     (results in ${OUT:-/tmp/nchan-bench})
#
# The reconnect storms run as in bench-floors.sh: nchan's eventsource
# subscriber resumes from the Last-Event-ID header (nchan's own message ids,
# which bench sends back as it got them), each channel keeping its last 1000
# messages in shared memory (the behind events are 200 per channel, so
# nothing the storm needs is evicted). RESTART has no nchan counterpart:
# nchan keeps messages in shared memory, lost with the process on kill -9
# (only its Redis mode keeps them), so a client resuming after the restart
# cannot get what it missed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/nchan-bench}
mkdir -p "$OUT"
if [ ! -f /usr/share/nginx/modules/ngx_nchan_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null
fi
go build -o "$OUT/ssehub" ./cmd/ssehub
PORT=${PORT:-18300}
cat >"$OUT/nginx.conf" <<EOF
load_module /usr/share/nginx/modules/ngx_nchan_module.so;
worker_processes 1;
worker_rlimit_nofile 20000;
pid $OUT/nginx.pid;
error_log $OUT/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  nchan_shared_memory_size 512m; # room for the storms' 200,000 behind events

  server {
    listen 127.0.0.1:$PORT;
    location ~ ^/sub/(\w+)\$ { nchan_subscriber eventsource; nchan_channel_id \$1; }
    location = /pub { nchan_publisher; nchan_channel_id \$arg_id; nchan_message_buffer_length 1000; nchan_message_timeout 1h; }
  }
}
EOF

master=""
worker=""
start_nginx() {
  taskset -c 0 nginx -c "$OUT/nginx.conf" -p "$OUT" -e "$OUT/error.log"
  for _ in $(seq 50); do [ -s "$OUT/nginx.pid" ] && break; sleep 0.1; done
  master=$(cat "$OUT/nginx.pid")
  sleep 0.5
  worker=$(pgrep -P "$master" | head -1)
}
stop_nginx() { [ -n "$master" ] && kill "$master" 2>/dev/null || true; sleep 1; master=""; }
trap stop_nginx EXIT

bench() { # name, flags...
  local name=$1; shift
  echo "== nchan $name"
  taskset -c 1 "$OUT/ssehub" bench --mode plain --url "http://127.0.0.1:$PORT/sub/{topic}" \
    --publish-url "http://127.0.0.1:$PORT/pub?id={topic}" --topic-prefix bench \
    --hub-pid "$worker" --progress 0 --json-out "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

run() {
  case $1 in
  S1) start_nginx; bench S1 --subscribers 15000 --connect-rate 2000 --rate 1 --duration 5s --settle 5s; stop_nginx ;;
  S2) start_nginx; bench S2 --subscribers 10000 --connect-rate 2000 --rate 10 --duration 30s; stop_nginx ;;
  S3) start_nginx; bench S3 --subscribers 10000 --topics 1000 --connect-rate 2000 --rate 500 --concurrency 64 --duration 30s; stop_nginx ;;
  STORM1) start_nginx
    bench STORM1 --subscribers 100 --topics 10 --rate 10 --duration 20s --concurrency 64 \
      --storm 1 --storm-missed 10 --storm-behind 200000 --storm-behind-topics 1000 --max-time 300s --fail-on-loss
    stop_nginx ;;
  STORM1K) start_nginx
    bench STORM1K --subscribers 1000 --topics 100 --rate 50 --duration 60s --concurrency 64 \
      --storm 1000 --storm-missed 10 --storm-behind 200000 --storm-behind-topics 1000 --storm-timeout 120s --max-time 400s --fail-on-loss
    stop_nginx ;;
  TOKENS) # DSTOKENS's shape (bench-floors.sh) in pub/sub: 1,000 channels, one subscriber each, 25 publishes/s each, 20 B
    start_nginx; bench TOKENS --subscribers 1000 --topics 1000 --rate 25000 --payload 20 --concurrency 500 --duration 15s; stop_nginx ;;
  *) echo "unknown scenario $1"; exit 2 ;;
  esac
}
if [ $# -eq 0 ]; then set -- S1 S2 S3 STORM1 STORM1K; fi
for s in "$@"; do run "$s"; done
