"""The versions file is the source of truth: it parses, locks follow it, Dockerfiles and compose derive from it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from tooling import images, lock, versions


def test_versions_file_parses_and_has_the_core_pins():
    pins = versions.load()
    for key in (
        "MLRT_VERSION",
        "DEBIAN_SUITE",
        "BASE_IMAGE",
        "PYTHON_VERSION",
        "JAVA_VERSION",
        "SPARK_VERSION",
        "PYSPARK_VERSION",
    ):
        assert pins.get(key), f"versions.env lacks {key}"
    assert pins["SPARK_VERSION"] == pins["PYSPARK_VERSION"], "Spark is pyspark's jars: the two must agree"
    assert pins["BASE_IMAGE"].endswith(pins["DEBIAN_SUITE"] + "-slim")


@pytest.mark.parametrize(
    "text, message",
    [
        ("A=1\nA=2\n", "set twice"),
        ("A = 1\n", "expected KEY=VALUE"),
        ("A=\n", "has no value"),
    ],
)
def test_versions_file_rejects_bad_lines(tmp_path, text, message):
    path = tmp_path / "versions.env"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        versions.load(path)


def test_locks_are_current():
    lock.check(versions.load())


def test_a_changed_pin_makes_the_lock_stale():
    pins = dict(versions.load())
    pins["PANDAS_VERSION"] = "0.0.1"
    with pytest.raises(lock.StaleLock, match="images/spark/requirements.lock is stale"):
        lock.check(pins)


def test_missing_pin_is_named():
    pins = dict(versions.load())
    del pins["PYARROW_VERSION"]
    with pytest.raises(SystemExit, match="PYARROW_VERSION"):
        lock.layer_inputs(pins)


@pytest.mark.parametrize("layer", lock.layers())
def test_every_lock_line_is_pinned_with_hashes(layer):
    text = lock.lock_path(layer).read_text()
    entries = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M)
    names = [line.split("==")[0] for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]
    assert names and len(entries) == len(names), f"{layer}: every requirement needs == and --hash lines"


def test_layer_locks_agree_on_versions():
    """Driver and executors run the same environment: a package has one version across all image locks."""
    seen: dict[str, tuple[str, str]] = {}
    for layer in lock.layers():
        for name, version in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", lock.lock_path(layer).read_text(), re.M):
            if name in seen:
                assert seen[name][0] == version, f"{name}: {version} in {layer}, {seen[name][0]} in {seen[name][1]}"
            seen[name] = (version, layer)


def test_lower_layer_locks_are_subsets_of_higher_ones():
    def names(layer):
        return set(re.findall(r"^([A-Za-z0-9_.\-]+)==", lock.lock_path(layer).read_text(), re.M))

    layers = lock.layers()
    for upper in layers:
        # the nearest ancestor image with a lock of its own (the hub's is base, beside the runtime chain)
        lower = next((name for name in reversed(images.with_parents([upper])[:-1]) if name in layers), None)
        if lower:
            assert names(lower) <= names(upper), f"{lower} has packages {upper} lacks"


def test_dockerfile_args_with_versions_have_no_stale_defaults():
    """A Dockerfile ARG default that names a version must equal versions.env (the build passes the real one)."""
    pins = versions.load()
    for dockerfile in sorted((ROOT / "images").glob("*/Dockerfile")):
        for key, default in re.findall(r"^ARG\s+([A-Z_]+)=(\S+)", dockerfile.read_text(), re.M):
            if key in pins and key != "BASE_IMAGE":
                assert default == pins[key], (
                    f"{dockerfile.relative_to(ROOT)}: ARG {key}={default}, versions.env {pins[key]}"
                )


def test_requirements_in_takes_names_only_and_says_where_versions_go(tmp_path, monkeypatch):
    path = tmp_path / "requirements.in"
    monkeypatch.setattr(lock, "requirements_in", lambda layer: path)
    path.write_text("# comment\nmlflow[auth]  # why\n\nray[default]\n")
    assert lock.layer_packages("ml") == ["mlflow[auth]", "ray[default]"]
    path.write_text("pandas==2.3.3\n")
    with pytest.raises(SystemExit, match=r"requirements.in:1: 'pandas==2.3.3'.*versions.env"):
        lock.layer_packages("ml")


def test_every_python_image_has_its_requirements_in_and_the_chain_is_the_build_chain():
    # the object store (a Go binary) and PostgreSQL (Debian's) add no Python packages
    assert lock.layers() == [name for name in images.IMAGES if name not in ("objectstore", "postgres")]


def test_tensorflow_cuda_adds_the_extra_and_wants_a_cuda_12_torch():
    """TENSORFLOW_CUDA=yes locks tensorflow[and-cuda] (and makes the lock stale); without a CUDA 12 torch index it
    is refused before anything is resolved, naming the fix; a bad value is named."""
    pins = {**versions.load(), "TENSORFLOW_CUDA": "yes"}
    ml = lock.layer_inputs(pins)["ml"]
    assert f"tensorflow[and-cuda]=={pins['TENSORFLOW_VERSION']}" in ml and not [
        r for r in ml if r.startswith("tensorflow==")
    ]
    with pytest.raises(lock.StaleLock, match="stale"):
        lock.check(pins)
    with pytest.raises(SystemExit, match="MLRT_TORCH_INDEX_URL=https://download.pytorch.org/whl/cu129"):
        lock.check_one_cuda(pins, "")
    with pytest.raises(SystemExit, match="MLRT_TORCH_INDEX_URL"):
        lock.check_one_cuda(pins, "https://download.pytorch.org/whl/cpu")
    lock.check_one_cuda(pins, "https://download.pytorch.org/whl/cu129")
    lock.check_one_cuda(versions.load(), "")  # the default: TensorFlow on CPU, PyPI torch
    with pytest.raises(SystemExit, match="TENSORFLOW_CUDA=maybe; use yes or no"):
        lock.tensorflow_cuda({"TENSORFLOW_CUDA": "maybe"})
