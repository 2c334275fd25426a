#!/usr/bin/env bash
# Create the host tools venv from a hash-pinned lock: bootstrap-venv.sh PYTHON VENV LOCK
set -euo pipefail
python="$1" venv="$2" lock="$3"
command -v "$python" >/dev/null || { echo "bootstrap-venv: ERROR: $python not found; install Python 3.10+ (apt-get install python3 python3-venv)" >&2; exit 1; }
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  else
    echo "bootstrap-venv: ERROR: $python cannot create virtual environments; install python3-venv" >&2; exit 1
  fi
fi
rm -rf "$venv"
"$python" -m venv "$venv"
# PIP_FIND_LINKS or a pip.conf could add unpinned sources; the lock's hashes guard what gets installed.
"$venv/bin/python" -m pip install -q --require-hashes --no-deps -r "$lock"
echo "bootstrap-venv: $venv ready ($("$venv/bin/python" --version))" >&2
