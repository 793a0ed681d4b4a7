#!/usr/bin/env bash
# Runs the whole ssehub test suite: formatting, vet, and every Go test with
# the race detector, against the real Redis (127.0.0.1:6379) and NATS
# JetStream (127.0.0.1:4222). With CI=true a missing service fails the
# tests instead of skipping them. Browser tests install Debian's chromium
# and the npm packages they need when missing.
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

echo "== go test -race"
go test -race -count=1 -timeout 8m ./...
