#!/usr/bin/env bash
# Builds the ssehub container image (deploy/container/Containerfile) from
# this checkout: a static linux binary for the machine's architecture (or
# GOARCH) plus the CA bundle, in a temporary context, with podman, buildah
# or docker, whichever is installed.
#
# Usage: deploy/container/build.sh [TAG]   (default: ssehub:dev)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-ssehub:dev}
version=${tag##*:}
arch=${GOARCH:-$(go env GOARCH)}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.buildVersion=$version" -o "$ctx/ssehub" ./cmd/ssehub
ca=/etc/ssl/certs/ca-certificates.crt
[ -r "$ca" ] || { echo "build.sh: $ca is missing (Debian: apt-get install ca-certificates)" >&2; exit 1; }
cp "$ca" "$ctx/ca-certificates.crt"
chmod 0755 "$ctx/ssehub"
chmod 0644 "$ctx/ca-certificates.crt"
mkdir -m 0777 "$ctx/data"

if command -v podman >/dev/null; then
  podman build --arch "$arch" -f deploy/container/Containerfile -t "$tag" "$ctx"
elif command -v buildah >/dev/null; then
  buildah bud --arch "$arch" -f deploy/container/Containerfile -t "$tag" "$ctx"
elif command -v docker >/dev/null; then
  docker build --platform "linux/$arch" -f deploy/container/Containerfile -t "$tag" "$ctx"
else
  echo "build.sh: install podman, buildah or docker" >&2
  exit 1
fi
echo "built $tag: podman run -p 8080:8080 -v ssehub-data:/data $tag"
