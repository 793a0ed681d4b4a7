#!/usr/bin/env bash
# Builds the release binaries of ssehub: static (CGO_ENABLED=0, no libc
# needed, so they run FROM scratch too) for linux, darwin and windows on
# amd64 and arm64, with the version stamped in ("ssehub version" prints
# it), and a SHA256SUMS file to check them with "sha256sum -c SHA256SUMS".
#
# Usage: scripts/release.sh [VERSION]
#   VERSION defaults to "git describe --tags --always --dirty".
# Output: dist/VERSION/ssehub-VERSION-OS-ARCH[.exe] and dist/VERSION/SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
case $version in
  *[!A-Za-z0-9._+-]*) echo "release.sh: version $version may only contain letters, digits and . _ + -" >&2; exit 2 ;;
esac
out=dist/$version
rm -rf "$out"
mkdir -p "$out"

for os in linux darwin windows; do
  for arch in amd64 arm64; do
    bin=ssehub-$version-$os-$arch
    [ "$os" = windows ] && bin=$bin.exe
    echo "== $bin"
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.buildVersion=$version" -o "$out/$bin" ./cmd/ssehub
  done
done
(cd "$out" && sha256sum ssehub-* > SHA256SUMS)

# The binary of this machine must say its version, and be static.
native=$out/ssehub-$version-$(go env GOOS)-$(go env GOARCH)
if [ -x "$native" ]; then
  got=$("$native" version)
  if [ "$got" != "ssehub $version" ]; then
    echo "release.sh: $native version printed \"$got\", want \"ssehub $version\"" >&2
    exit 1
  fi
  if command -v file >/dev/null && ! file "$native" | grep -q 'statically linked'; then
    echo "release.sh: $native is not statically linked: $(file "$native")" >&2
    exit 1
  fi
fi
echo "== $out"
cat "$out/SHA256SUMS"
