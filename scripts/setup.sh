#!/usr/bin/env bash
# Installs what Skiff needs on a fresh Debian 12 machine (root), only where it
# is missing, and says what it is doing. Called by `npm start` and `npm test`
# (their pre-scripts), so neither needs a manual step.
#   scripts/setup.sh start|test|bench
# (bench also installs the reference tools the benchmarks compare against:
# nginx-light and haproxy.)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-test}"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Debian packages: command -> package. Installed only when the command is missing.
declare -A pkgs=(
  [redis-server]=redis-server
  [dockerd]=docker.io
  [busybox]=busybox-static
  [pebble]=pebble
  [pebble-challtestsrv]=pebble
  [nft]=nftables
  [conntrack]=conntrack
  [dig]=bind9-dnsutils
  [ip]=iproute2
  [curl]=curl
  [file]=file
  [dnsperf]=dnsperf
  [wrk]=wrk
  [dnsmasq]=dnsmasq-base
  [strip]=binutils
  [arping]=iputils-arping
  [ethtool]=ethtool
  [iperf3]=iperf3
  [faketime]=faketime
)
# The dashboard's browser test drives Debian's Chromium through playwright-core (nothing downloads a browser).
if [ "$mode" = test ]; then
  pkgs[chromium]=chromium
fi
if [ "$mode" = bench ]; then
  pkgs[nginx]=nginx-light
  pkgs[haproxy]=haproxy
fi
missing=()
for cmd in "${!pkgs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("${pkgs[$cmd]}")
done
# Debian's dynamic busybox cannot go into a FROM scratch image: we need busybox-static.
if command -v busybox >/dev/null 2>&1 && ! file -L "$(command -v busybox)" 2>/dev/null | grep -q 'statically linked'; then
  missing+=(busybox-static)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  want=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  [ "$(id -u)" = 0 ] || die "missing Debian packages: $want; run as root or: sudo apt-get install -y $want"
  say "installing Debian packages: $want"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed: check the package mirror, then run again"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $want >/dev/null || die "apt-get install $want failed"
fi
command -v kubectl >/dev/null 2>&1 || say "warning: kubectl not found; the kubectl tests need it (v1.32)"

# npm packages: install when node_modules is missing or older than the lock file.
if [ ! -x node_modules/.bin/tap ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund >&2 || die "npm ci failed: check access to the npm registry, then run again"
fi
[ -x node_modules/.bin/node ] || die "node_modules/.bin/node (Node.js 24 from the 'node' package) is missing; run npm ci"

# Docker: the engine must run for pods (issue 3 onwards). Start dockerd if it is not answering.
if command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/skiff-dockerd.log)"
  # Its own session, so it outlives the shell (and process group) that started it.
  setsid nohup dockerd >/var/log/skiff-dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || die "dockerd did not start; see /var/log/skiff-dockerd.log"
fi
say "ready ($mode): node $(node_modules/.bin/node --version), redis $(redis-server --version | awk '{print $3}')"
