"""Host-side tests. The repository root is on sys.path (pytest's rootdir: `tests` is a package), so tests import
the build tooling as `tooling.*`, the user scripts as `scripts.*` and the Kubernetes test cluster as
`tests.k8s_cluster.*`."""

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The browser tests' Chromium (Debian's, driven by Playwright through executable_path; Playwright's own download is
# not used), and its flags measured for Chromium as root in a container-like host: no sandbox, no GPU, no QUIC,
# and no background calls.
CHROMIUM = os.environ.get("MLRT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
