#!/usr/bin/env bash
# Make sure a Chromium for the browser test (tests/cluster/test_browser.py) is on the host: Playwright drives it
# through executable_path (its own browser download is not used). Where MLRT_CHROMIUM or `chromium` already runs,
# nothing changes; otherwise, on a Debian-like host as root, Debian's chromium package is installed.
set -euo pipefail

log() { printf 'bootstrap-browser: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

chromium="${MLRT_CHROMIUM:-chromium}"
if command -v "$chromium" >/dev/null && "$chromium" --version >/dev/null 2>&1; then
  exit 0
fi
[ -z "${MLRT_CHROMIUM:-}" ] || die "MLRT_CHROMIUM=$MLRT_CHROMIUM does not run; point it at a Chromium or Chrome binary"
[ "$(id -u)" = 0 ] || die "installing chromium needs root. Re-run as root, or install Chromium and set MLRT_CHROMIUM to it"
command -v apt-get >/dev/null || die "no apt-get: install Chromium yourself and set MLRT_CHROMIUM to its binary"
log "installing Debian's chromium"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
chromium --version >&2
