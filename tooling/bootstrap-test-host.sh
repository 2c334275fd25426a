#!/usr/bin/env bash
# The host tools test-cluster needs, installed from Debian when missing (on a Debian-like host, as root):
# - Chromium for the browser test (tests/cluster/test_browser.py): Playwright drives it through executable_path
#   (its own browser download is not used). Where MLRT_CHROMIUM or `chromium` already runs, nothing changes.
# - tcpdump, which records what leaves the compose network in the no-call-home test (tests/cluster/test_no_call_home.py).
set -euo pipefail

log() { printf 'bootstrap-test-host: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

missing=()
chromium="${MLRT_CHROMIUM:-chromium}"
if ! { command -v "$chromium" >/dev/null && "$chromium" --version >/dev/null 2>&1; }; then
  [ -z "${MLRT_CHROMIUM:-}" ] || die "MLRT_CHROMIUM=$MLRT_CHROMIUM does not run; point it at a Chromium or Chrome binary"
  missing+=(chromium fonts-dejavu-core)
fi
command -v tcpdump >/dev/null || missing+=(tcpdump)
[ "${#missing[@]}" -gt 0 ] || exit 0

[ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root. Re-run as root, or install them (Chromium: set MLRT_CHROMIUM)"
command -v apt-get >/dev/null || die "no apt-get: install ${missing[*]} yourself (Chromium: set MLRT_CHROMIUM to its binary)"
log "installing Debian's ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
