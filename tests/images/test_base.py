"""Every mlrt image: non-root, the pinned Python in the shared venv, tini, UTF-8, lean layers, no CA leaked."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

from .conftest import PINS, inspect, run

IMAGE = "base"
COMPILERS = ("gcc", "g++", "cc", "c++", "make", "clang")


def test_runs_as_the_non_root_user(image):
    assert run(image, "id", "-u").strip() == "185"
    user = inspect(image, ".Config.User")
    assert user in ("185", "mlrt"), f"image USER is {user!r}"


def test_python_is_the_pinned_one_in_the_venv(image):
    out = run(image, "python", "-c", "import sys; print(sys.prefix); print('%d.%d' % sys.version_info[:2])")
    prefix, version = out.split()
    assert prefix == "/opt/mlrt/venv"
    assert version == PINS["PYTHON_VERSION"]
    assert run(image, "stat", "-c", "%u", "/opt/mlrt/venv").strip() == "185"


def test_packaging_tools_are_pinned(image):
    out = run(image, "python", "-m", "pip", "--version")
    assert out.startswith(f"pip {PINS['PIP_VERSION']} ")


def test_tini_is_pid_one(image):
    entrypoint = inspect(image, ".Config.Entrypoint")
    assert entrypoint[0] == "/usr/bin/tini"
    assert run(image, "cat", "/proc/1/cmdline").split("\0")[0] == "/usr/bin/tini"


def test_utf8_locale(image):
    assert run(
        image, "python", "-c", "import sys; print(sys.getfilesystemencoding(), sys.stdout.encoding)"
    ).split() == ["utf-8", "utf-8"]


def test_no_build_tools_caches_or_apt_lists(image):
    found = run(image, "bash", "-c", "for c in " + " ".join(COMPILERS) + "; do command -v $c || true; done")
    assert found.strip() == "", f"compilers in a runtime image: {found.split()}"
    leftovers = run(
        image,
        "bash",
        "-c",
        "ls -A /var/lib/apt/lists | grep -v -e '^partial$' -e '^lock$' || true;"
        " ls -A /var/cache/apt/archives 2>/dev/null | grep -v -e '^partial$' -e '^lock$' || true;"
        " find ~/.cache/pip /root/.cache/pip -mindepth 1 2>/dev/null | head -n 5 || true",
    )
    assert leftovers.strip() == "", f"caches left in a layer: {leftovers.split()[:10]}"


SCANNED_LAYERS: set[str] = set()  # layer directories already searched (child images share their parents')


def layer_dirs(image: str) -> list[Path] | None:
    """The image's layer directories on an overlay2 engine running on this host, or None."""
    data = inspect(image, ".GraphDriver")
    if data.get("Name") != "overlay2":
        return None
    dirs = [data["Data"]["UpperDir"], *filter(None, data["Data"].get("LowerDir", "").split(":"))]
    paths = [Path(d) for d in dirs]
    return paths if all(p.is_dir() and os.access(p, os.R_OK) for p in paths) else None


def layers_holding(image: str, needles: list[bytes], tmp_path: Path) -> list[str]:
    """'layer: file' for every regular file in a layer of the image (one not yet searched) that holds a needle.
    On an overlay2 engine on this host GNU grep reads the layer directories in place (the ML layer's 8 GB in
    seconds, where reading each file into Python took minutes); elsewhere `docker save` and Python's tarfile."""
    dirs = layer_dirs(image)
    if dirs is not None:
        patterns = tmp_path / "needles"
        patterns.write_bytes(b"\n".join(needles) + b"\n")
        found = []
        for layer in (d for d in dirs if str(d) not in SCANNED_LAYERS):
            # -r does not follow symlinks; -a reads binary files as text; exit 1: no match.
            grep = subprocess.run(["grep", "-rlaF", "-f", str(patterns), str(layer)], capture_output=True, text=True)
            assert grep.returncode in (0, 1), f"grep over {layer} failed: {grep.stderr[-1000:]}"
            found += [f"{layer}: {line}" for line in grep.stdout.splitlines()]
            SCANNED_LAYERS.add(str(layer))
        return found
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), image], check=True)
    found = []
    with tarfile.open(archive) as outer:
        for member in outer:
            if member.name.endswith("layer.tar") or member.name.startswith("blobs/"):
                with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                    for entry in layer:
                        if entry.isfile() and any(n in layer.extractfile(entry).read() for n in needles):
                            found.append(f"{member.name}: {entry.name}")
    return found


def test_host_ca_bundle_is_in_no_layer(image, tmp_path):
    """The build's CA bundle is a BuildKit secret: none of its certificates that the image does not already
    ship (e.g. a corporate proxy's CA) may appear in any layer."""
    from tooling import images as build

    bundle = build.ca_bundle()
    if bundle is None:
        return  # nothing was passed to the build, so there is nothing that could leak
    image_certs = run(image, "cat", "/etc/ssl/certs/ca-certificates.crt")
    blocks = [
        block.split("-----BEGIN CERTIFICATE-----")[-1].strip().splitlines()
        for block in bundle.read_text().split("-----END CERTIFICATE-----")
        if "BEGIN CERTIFICATE" in block
    ]
    needles = [lines[1].encode() for lines in blocks if len(lines) > 2 and lines[1] not in image_certs]
    if not needles:
        return  # every certificate of the bundle is one the image ships anyway
    leaked = layers_holding(image, needles, tmp_path)
    assert not leaked, f"a build CA certificate is in a layer: {leaked[:5]}"


def test_computed_tag_names_what_the_image_runs(image):
    """`make build` also tags each image with what running it reports (Python, and Spark where present)."""
    from tooling import images as build

    name = image.split("/", 1)[1].split(":", 1)[0]
    tags = build.computed_tags(name, PINS)
    with_spark = "spark" in build.with_parents([name])
    assert tags == [
        f"{image}-python{PINS['PYTHON_VERSION']}" + (f"-spark{PINS['SPARK_VERSION']}" if with_spark else "")
    ]
    assert inspect(tags[0], ".Id") == inspect(image, ".Id"), f"{tags[0]} is not the same image as {image}"
