#!/bin/sh
# Idempotent set-up for a fresh Debian machine: the system packages the tests use, then npm ci when
# node_modules is missing or older than package-lock.json. Fast when there is nothing to do.
set -eu
cd "$(dirname "$0")/.."

# Debian packages the project needs (see docs/development.md, "What the tests run against"):
# systemd-container for the booted test host, nix-bin for real Nix, caddy for the admin API, rclone as the
# S3 upload baseline.
PACKAGES="systemd-container nix-bin python3 curl caddy iproute2 util-linux rclone"

missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: missing Debian packages:$missing; install them as root: apt-get install -y$missing" >&2
    exit 1
  fi
  echo "setup: installing$missing" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
