"""Per-image tests, inherited by child images (as in jupyter/docker-stacks): a module sets IMAGE to the image
it tests, and its tests run against that image and every image built on top of it."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tooling import images, versions

PINS = versions.load()


def descendants(name: str) -> list[str]:
    return [child for child in images.IMAGES if name in images.with_parents([child])]


def pytest_generate_tests(metafunc):
    if "image" in metafunc.fixturenames:
        target = metafunc.module.IMAGE
        refs = [images.ref(name, PINS) for name in descendants(target)]
        metafunc.parametrize("image", refs, ids=descendants(target), scope="module")


def run(image: str, *command: str, entrypoint: str | None = None, check: bool = True, **kwargs) -> str:
    """Run a command in a fresh container of the image (through its entrypoint) and return its stdout."""
    result = images.run_in(image, *command, entrypoint=entrypoint, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed in {image} ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout if check else result


def inspect(image: str, field: str):
    """One field of `docker image inspect` (e.g. ".Config.User"), decoded from JSON."""
    out = images.inspect(image, "{{json " + field + "}}")
    assert out is not None, f"no image {image}: run make build"
    return json.loads(out)


@pytest.fixture(scope="session", autouse=True)
def images_exist():
    missing = [ref for ref in (images.ref(n, PINS) for n in images.IMAGES) if images.inspect(ref, "{{.Id}}") is None]
    if missing:
        pytest.fail(f"images not built: {', '.join(missing)}; run `make build`")


def key_pair_dir(path: Path, key: str, secret: str) -> Path:
    """A directory as MLRT_S3_CREDENTIALS_DIR expects it (readable by the images' uid 185)."""
    path.mkdir(exist_ok=True)
    (path / "access_key_id").write_text(key + "\n")
    (path / "secret_access_key").write_text(secret)
    path.chmod(0o755)
    return path


def wait_healthy(name: str, entrypoint: str, what: str, limit: int = 60) -> None:
    """Until `<entrypoint> health` succeeds in the running container, else fail with its log."""
    deadline = time.monotonic() + limit
    while subprocess.run(["docker", "exec", name, f"/opt/mlrt/bin/{entrypoint}", "health"]).returncode:
        if time.monotonic() > deadline:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            pytest.fail(f"{what} did not answer within {limit} s:\n{logs.stderr[-2000:]}")
        time.sleep(0.5)


@contextmanager
def objectstore(image: str, tmp_path: Path, env: dict[str, str] | None = None):
    """A running objectstore container (buckets lake and mlflow) with a fresh key pair in files and its data in
    tmp_path/data; yields (container name, keys dir, data dir). Others join it with --network container:NAME."""
    keys = key_pair_dir(tmp_path / "keys", "mlrt-test-key", "mlrt-test-secret-" + uuid.uuid4().hex)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    name = f"mlrt-objectstore-test-{uuid.uuid4().hex[:8]}"
    cmd = ["docker", "run", "-d", "--name", name, "-v", f"{keys}:/keys:ro", "-v", f"{data}:/data"]
    cmd += ["-e", "MLRT_S3_CREDENTIALS_DIR=/keys", "-e", "MLRT_OBJECTSTORE_BUCKETS=lake,mlflow"]
    cmd += [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")] + [image]
    subprocess.run(cmd, check=True, capture_output=True)
    try:
        wait_healthy(name, "objectstore-entrypoint", "the store")
        yield name, keys, data
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
