#!/usr/bin/env bash
# Installs the real components the cluster tier tests against (no cluster, no Docker needed):
#   - etcd 3.4 from Debian's etcd-server package;
#   - kube-apiserver 1.20.2, built from Debian bookworm's `kubernetes` source package;
#   - Prometheus 2.42 with promtool from Debian's prometheus package.
# The API server binary is cached in .cache/kube/ (ignored by git): a second run starts at once.
# Trap: the vendored github.com/modern-go/reflect2 1.0.1 crashes under Go >= 1.18 (SIGSEGV in
# json-iterator) the first time the API server records a mutating webhook's patch; it is replaced
# with Debian's golang-github-modern-go-reflect2-dev (1.0.2) before the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache="$PWD/.cache/kube"
bin="$cache/kube-apiserver"
mkdir -p "$cache"

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v promtool >/dev/null && command -v prometheus >/dev/null || need+=(prometheus)
[ -x "$bin" ] || need+=(golang-go rsync jq golang-github-modern-go-reflect2-dev dpkg-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ ! -x "$bin" ] && ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    # Source packages from bookworm main, for `apt-get source kubernetes`.
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/servo-k8s-multijob-src.sources
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts these as services when it installs them; the tests start their own on free ports.
for s in etcd prometheus prometheus-node-exporter; do
  (command -v systemctl >/dev/null && systemctl stop "$s" 2>/dev/null) || pkill -x "$s" 2>/dev/null || true
done

if [ ! -x "$bin" ]; then
  work="$cache/src"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$work" && apt-get source -qq kubernetes >/dev/null 2>&1)
  tree=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'kubernetes-*' | head -1)
  [ -n "$tree" ] || { echo "apt-get source kubernetes unpacked nothing" >&2; exit 1; }
  reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
  [ -d "$reflect2" ] || { echo "Debian's reflect2 source is not at $reflect2" >&2; exit 1; }
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r "$reflect2" "$tree/vendor/github.com/modern-go/reflect2"
  # As Debian's rules do: GOPATH with k8s.io/kubernetes pointing at the tree.
  mkdir -p "$work/.go/src/k8s.io"
  ln -sfn "$tree" "$work/.go/src/k8s.io/kubernetes"
  (cd "$work/.go/src/k8s.io/kubernetes" && GOPATH="$work/.go" GO111MODULE=off GOFLAGS=-mod=vendor GOCACHE="$work/.gocache" \
     make WHAT=cmd/kube-apiserver >"$cache/build.log" 2>&1) || { tail -30 "$cache/build.log" >&2; exit 1; }
  built=$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -1)
  [ -n "$built" ] || { echo "the build made no kube-apiserver binary" >&2; exit 1; }
  cp "$built" "$bin.tmp" && mv "$bin.tmp" "$bin"
  rm -rf "$work"
fi
echo "etcd $(etcd --version 2>/dev/null | head -1 | awk '{print $3}'), $("$bin" --version), prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}')"
