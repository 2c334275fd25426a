"""Shared by the host-side checks of the running compose cluster."""

from __future__ import annotations

import subprocess

import pytest

import dotenv
from tests.conftest import ROOT


def compose(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=timeout
    )


@pytest.fixture(scope="module")
def token() -> str:
    return dotenv.read(dotenv.ENV_FILE)[1]["JUPYTER_TOKEN"]
