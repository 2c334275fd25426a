"""Read versions.env, the single source of truth for every pinned version in mlrt."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = ROOT / "versions.env"
# The Go tools built at the versions pinned here (helm, kustomize, kubeconform, syft, rclone, the NetworkPolicy
# agent; tooling/install-go-tools.sh): one cache per user, shared by every clone, so that a fresh clone on a warm
# machine builds none of them again (MLRT_TOOLS_DIR, else $XDG_CACHE_HOME/mlrt/tools, else ~/.cache/mlrt/tools).
TOOLS_BIN = (
    Path(
        os.environ.get("MLRT_TOOLS_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlrt" / "tools"
    )
    / "bin"
)
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S*)$")


def load(path: Path = VERSIONS_FILE) -> dict[str, str]:
    """Return the KEY=VALUE pairs of a versions file; raise ValueError naming any bad line."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: expected KEY=VALUE with no spaces or quotes, got {raw!r}")
        key, value = match.groups()
        if key in values:
            raise ValueError(f"{path}:{number}: {key} is set twice")
        if not value:
            raise ValueError(f"{path}:{number}: {key} has no value")
        values[key] = value
    return values
