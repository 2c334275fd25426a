"""Each image's SBOM (`make sbom`: SPDX 2.3 from syft) lists what the image carries: every package of the
image's Python lock at its locked version, every jar the jar lock installed in it, and its Debian packages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tooling import images, jars, sbom

from .conftest import inspect

IMAGE = "base"  # every image


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(name: str) -> dict[str, str]:
    """name -> version of the Python lock that the image installed (its own, else its parent's)."""
    while not (lock := Path(images.__file__).parents[1] / "images" / name / "requirements.lock").exists():
        name = images.IMAGES[name]
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\;]+)", lock.read_text(), flags=re.M)
    return {normalized(n): v for n, v in pins}


@pytest.fixture(scope="module")
def document(image):
    name = image.split("/", 1)[1].split(":", 1)[0]
    path, stamp = sbom.path_for(name), sbom.OUT / f"{name}.image-id"
    if not path.exists() or not stamp.exists() or stamp.read_text().strip() != inspect(image, ".Id"):
        pytest.fail(f"{path} is missing or older than {image}; run `make sbom`")
    return name, json.loads(path.read_text())


def purls(doc: dict) -> set[str]:
    return {sbom.purl(p) for p in doc["packages"]} - {""}


def test_sbom_is_spdx_and_names_the_image(document):
    name, doc = document
    assert doc["spdxVersion"] == "SPDX-2.3" and f"mlrt/{name}" in doc["name"], doc["name"]
    assert any(c.startswith("Tool: syft-") for c in doc["creationInfo"]["creators"]), doc["creationInfo"]


def test_every_locked_python_package_is_listed_at_its_version(document):
    name, doc = document
    found = {(normalized(p["name"]), p.get("versionInfo")) for p in doc["packages"] if "pkg:pypi/" in str(p)}
    missing = sorted(f"{n}=={v}" for n, v in locked(name).items() if (n, v) not in found)
    assert not missing, f"{len(missing)} locked packages not in the SBOM of {name}: {missing[:20]}"


def test_every_installed_jar_is_listed_at_its_version(document):
    name, doc = document
    if "spark" not in images.with_parents([name]):
        pytest.skip(f"{name} has no Spark and no jar layer")
    lock = json.loads((Path(images.__file__).parents[1] / "images" / "spark" / "jars.lock").read_text())
    # syft names a jar from its pom.properties or, without one, from its file name (a guessed group): match the
    # installed file and the version
    java = [(p.get("sourceInfo", ""), p.get("versionInfo")) for p in doc["packages"] if "pkg:maven/" in str(p)]
    missing = []
    for jar in lock["jars"]:
        version = jars.Coordinate.parse(jar["coordinate"], "jars.lock").version
        if not any(f"/jars/{jar['file']}" in source and found == version for source, found in java):
            missing.append(jar["coordinate"])
    assert lock["jars"] and not missing, f"jars not in the SBOM of {name}: {missing}"


def test_debian_packages_are_listed(document):
    name, doc = document
    debs = [p for p in purls(doc) if p.startswith("pkg:deb/debian/")]
    assert any("/python3" in p for p in debs) and len(debs) > 50, f"{name}: {len(debs)} Debian packages"
