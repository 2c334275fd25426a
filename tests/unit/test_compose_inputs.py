"""The compose file's own checks of .env and of a user's overrides, through `docker compose config` (nothing
starts): a missing value names `make up`, which writes it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    if shutil.which("docker")
    else True,
    reason="docker compose is not installed (make bootstrap installs it)",
)


def config(env_file, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", "--env-file", str(env_file), *extra, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_env_file_without_the_image_tag_names_make_up(tmp_path):
    env = tmp_path / ".env"
    env.write_text("JUPYTER_TOKEN=x\n")
    done = config(env)
    assert done.returncode != 0 and "run make up once, it writes MLRT_VERSION to .env" in done.stderr, done.stderr


def test_an_env_file_without_the_jupyter_token_names_make_up(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MLRT_VERSION=0.1.0\n")
    done = config(env)
    assert done.returncode != 0 and "it generates JUPYTER_TOKEN in .env" in done.stderr, done.stderr


def test_an_override_file_with_an_unknown_key_is_refused(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MLRT_VERSION=0.1.0\nJUPYTER_TOKEN=x\n")
    override = tmp_path / "compose.override.yaml"
    override.write_text("services:\n  jupyter:\n    enviroment:\n      X: y\n")
    done = config(env, "-f", str(ROOT / "compose.yaml"), "-f", str(override))
    assert done.returncode != 0 and "enviroment" in done.stderr, done.stderr
