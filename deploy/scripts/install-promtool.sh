#!/usr/bin/env bash
# promtool (checks metrics, alert rules and dashboard queries in the tests), for root and non-root
# alike, linked into BIN_DIR (the venv's bin, which the tests put first on their PATH).
# Usage: deploy/scripts/install-promtool.sh TOOLS_DIR BIN_DIR
#
# In this order, the first that works:
#   1. promtool already on the PATH, or the pinned release already in TOOLS_DIR;
#   2. as root with apt-get: Debian's package `prometheus` (this project's CI: Debian packages are
#      reachable, GitHub's downloads may not be); its server is not started (policy-rc.d);
#   3. not root (GitHub's runner user, a developer): the official release, pinned, checked against
#      its SHA-256 and unpacked into TOOLS_DIR (nothing outside the checkout is touched);
#   4. not root, where the download fails: `sudo -n apt-get` when sudo needs no password.
# Otherwise one line says what to install; the tests that need promtool then fail saying the same.
# FASTERDB_PROMETHEUS_URL / FASTERDB_PROMETHEUS_SHA256 replace the pinned release (a mirror).
set -euo pipefail

tools=${1:?usage: install-promtool.sh TOOLS_DIR BIN_DIR}
bin=${2:?usage: install-promtool.sh TOOLS_DIR BIN_DIR}
version=2.53.4  # a Prometheus LTS release
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 sha256=b8b497c4610d1b93208252b60c8f20f6b2e78596ae8df43397a2e805aa53d475 ;;
  aarch64 | arm64) arch=arm64 sha256=ec7236ecea7154d0bfe142921708b1ae7b5e921e100e0ee85ab92b7c444357e0 ;;
  *) arch="" sha256="" ;;
esac
release="prometheus-$version.linux-$arch"
url=${FASTERDB_PROMETHEUS_URL:-https://github.com/prometheus/prometheus/releases/download/v$version/$release.tar.gz}
sha256=${FASTERDB_PROMETHEUS_SHA256:-$sha256}
pinned="$tools/prometheus-$version/promtool"

link() {  # the promtool to use -> BIN_DIR/promtool
  mkdir -p "$bin"
  ln -sfn "$1" "$bin/promtool"
}

is_root() { [ "$(id -u)" -eq 0 ]; }
can_sudo() { ! is_root && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }

apt_prometheus() {  # apt-get install prometheus, as root or through sudo, without starting it
  local run=()
  can_sudo && run=(sudo -n)
  command -v apt-get >/dev/null 2>&1 || return 1
  local policy=/usr/sbin/policy-rc.d made_policy=false
  if [ ! -e "$policy" ]; then
    "${run[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy" && made_policy=true
  fi
  local status=0
  "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
    >/dev/null 2>&1 \
    || { "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
      && "${run[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; } \
    || status=$?
  if [ "$made_policy" = true ]; then "${run[@]}" rm -f "$policy"; fi
  return "$status"
}

download() (  # the pinned release into TOOLS_DIR, only if its checksum matches
  [ -n "$arch" ] && command -v curl >/dev/null 2>&1 || exit 1
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  curl -fsSL --retry 2 --connect-timeout 10 --max-time 300 -o "$tmp/release.tar.gz" "$url" || exit 1
  if ! echo "$sha256  $tmp/release.tar.gz" | sha256sum --check --status; then
    echo "install-promtool: $url does not have the pinned SHA-256 $sha256: refused" >&2
    exit 1
  fi
  tar -xzf "$tmp/release.tar.gz" -C "$tmp" "$release/promtool"
  mkdir -p "$(dirname "$pinned")"
  mv "$tmp/$release/promtool" "$pinned"
)

if [ -x "$pinned" ]; then link "$pinned"; exit 0; fi
if found=$(command -v promtool); then
  [ "$found" -ef "$bin/promtool" ] || link "$found"
  exit 0
fi
if is_root && apt_prometheus; then
  link "$(command -v promtool)"
elif ! is_root && download; then
  echo "install-promtool: promtool $version installed into $(dirname "$pinned")" >&2
  link "$pinned"
elif can_sudo && apt_prometheus; then
  link "$(command -v promtool)"
else
  echo "install-promtool: promtool not found and could not be installed (tests that need it will fail):" \
    "install the package prometheus, or put promtool on the PATH" >&2
fi
