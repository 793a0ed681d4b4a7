#!/usr/bin/env bash
# Runs the whole ssehub test suite: formatting, vet, and every Go test with
# the race detector, against the real Redis (127.0.0.1:6379) and NATS
# JetStream (127.0.0.1:4222), started here for the run when nothing answers
# on those ports. With CI=true a missing service fails the tests instead of
# skipping them. Browser tests install Debian's chromium
# and the npm packages they need when missing, and the Durable Streams
# conformance suite (npm) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

if [ -x scripts/browser-deps.sh ]; then
  echo "== browser test dependencies"
  scripts/browser-deps.sh
fi

if [ ! -d web/test/node_modules ] && command -v npm >/dev/null 2>&1; then
  echo "== npm ci (web/test: the eventsource package for the Node test)"
  (cd web/test && npm ci --no-audit --no-fund)
fi

if [ ! -d streams/conformance/node_modules ] && command -v npm >/dev/null 2>&1; then
  echo "== npm ci (streams/conformance: the Durable Streams conformance suite)"
  (cd streams/conformance && npm ci --no-audit --no-fund)
fi

# Redis (127.0.0.1:6379) and NATS JetStream (127.0.0.1:4222) normally run
# on the machine already. When one does not answer, start it for this run
# (installing Debian's package when missing) and stop it at the end.
started=()
stop_started() { for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_started EXIT
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ensure_service() { # port, debian package, binary, args...
  local port=$1 pkg=$2 bin=$3; shift 3
  answers "$port" && return 0
  echo "== nothing answers on 127.0.0.1:$port: starting $bin for this run"
  if ! command -v "$bin" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$bin" ] && [ ! -x "/usr/bin/$bin" ]; then
    apt-get update -qq && apt-get install -y -qq "$pkg" >/dev/null
  fi
  local path
  path=$(command -v "$bin" 2>/dev/null || ls "/usr/sbin/$bin" "/usr/bin/$bin" 2>/dev/null | head -1)
  "$path" "$@" >"$(mktemp)" 2>&1 &
  started+=($!)
  for _ in $(seq 100); do answers "$port" && return 0; sleep 0.1; done
  echo "$bin did not start on port $port"; return 1
}
ensure_service 6379 redis-server redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no
ensure_service 4222 nats-server nats-server -a 127.0.0.1 -p 4222 -js -sd "$(mktemp -d)"

echo "== go test -race"
go test -race -count=1 -timeout 8m ./...
