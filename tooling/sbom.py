"""Write a software bill of materials per image: SPDX 2.3 JSON from syft (SYFT_VERSION, built by
tooling/install-go-tools.sh), listing the image's Debian packages, Python distributions and jars.

  python -m tooling.sbom [IMAGE ...]        build/sbom/<image>.spdx.json for the built images (default: all)

syft reads the image's files in place (a container that only sleeps, without network); nothing leaves the
machine (its update check is off). An SBOM is
made again only when its image (or the pinned syft) changed: the image ID it was made from is kept beside it, and
every SBOM made is kept by image ID in ~/.cache/mlrt/sbom (MLRT_CACHE_DIR), which every clone shares.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tooling import images, jars, versions

OUT = versions.ROOT / "build" / "sbom"
SYFT = versions.TOOLS_BIN / "syft"


def path_for(name: str, out: Path = OUT) -> Path:
    return out / f"{name}.spdx.json"


def image_id(ref: str) -> str:
    found = images.inspect(ref, "{{.Id}}")
    if found is None:
        raise SystemExit(f"sbom: ERROR: image {ref} is not built; run `make build` first")
    return found


def ensure_syft() -> Path:
    subprocess.run(["bash", str(versions.ROOT / "tooling" / "install-go-tools.sh"), "syft"], check=True)
    return SYFT


def scan(ref: str, target: Path) -> None:
    """syft over the image's root filesystem: read in place from a stopped-in-time container's overlay (no
    network, nothing run but `sleep`), which takes a third of the time of exporting the image to syft; through
    the Docker engine's export where the storage driver shows no merged directory."""
    syft = [str(ensure_syft()), "scan", "--quiet", "--output", f"spdx-json={target}"]
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "none", "--entrypoint", "sleep", ref, "3600"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        merged = subprocess.run(
            ["docker", "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", started], capture_output=True, text=True
        ).stdout.strip()
        name, _, version = ref.partition(":")
        if merged and merged != "<no value>" and Path(merged).is_dir():
            source = [f"dir:{merged}", "--source-name", name, "--source-version", version]
        else:
            source = [f"docker:{ref}"]
        subprocess.run([*syft, *source], check=True, env=env)
    finally:
        subprocess.run(["docker", "rm", "-f", started], capture_output=True)


def shared_cache() -> Path:
    """SBOMs by image ID and syft version, shared by every clone of this user (a fresh clone on a warm machine
    copies them instead of scanning ~20 GB of images again): sbom/ in the project's cache (jars.cache_dir)."""
    return jars.cache_dir() / "sbom"


def generate(name: str, pins: dict[str, str], out: Path = OUT, cache: Path | None = None) -> Path:
    """The SBOM of one built image (made again only when the image or the pinned syft changed)."""
    ref = images.ref(name, pins)
    built = image_id(ref)
    target, stamp = path_for(name, out), out / f"{name}.image-id"
    if target.exists() and stamp.exists() and stamp.read_text().strip() == built:
        return target
    out.mkdir(parents=True, exist_ok=True)
    cached = (cache or shared_cache()) / f"{built.removeprefix('sha256:')}-syft{pins['SYFT_VERSION']}.spdx.json"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        scan(ref, cached.with_suffix(".partial"))
        cached.with_suffix(".partial").replace(cached)
    shutil.copyfile(cached, target)
    stamp.write_text(built + "\n")
    return target


def purl(package: dict) -> str:
    """A package's purl (pkg:pypi/..., pkg:maven/..., pkg:deb/...), "" when it has none."""
    return next((r["referenceLocator"] for r in package.get("externalRefs", []) if r["referenceType"] == "purl"), "")


def summary(path: Path) -> str:
    packages = json.loads(path.read_text())["packages"]
    kinds: dict[str, int] = {}
    for package in packages:
        purl_ = purl(package)
        kind = purl_[4:].split("/", 1)[0] if purl_.startswith("pkg:") else "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items(), key=lambda item: -item[1]))
    return f"{path.relative_to(versions.ROOT)}: {path.stat().st_size / 1e6:.1f} MB, {len(packages)} packages ({counts})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", help=f"images (default: all: {' '.join(images.IMAGES)})")
    args = parser.parse_args()
    pins = versions.load()
    for name in args.images or list(images.IMAGES):
        if name not in images.IMAGES:
            raise SystemExit(f"sbom: ERROR: unknown image {name!r}; known: {', '.join(images.IMAGES)}")
        print(f"sbom: {summary(generate(name, pins))}", file=sys.stderr)


if __name__ == "__main__":
    main()
