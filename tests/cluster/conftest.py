"""Shared by the host-side checks of the running compose cluster."""

from __future__ import annotations

import subprocess

import pytest
import requests

from cli import dotenv
from tests.conftest import ROOT


def compose(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=timeout
    )


def master_state() -> dict:
    """The Spark master's JSON state (workers, active applications), from its published UI port."""
    return requests.get("http://127.0.0.1:8080/json/", timeout=10).json()


def alive_workers() -> list[dict]:
    return [w for w in master_state()["workers"] if w["state"] == "ALIVE"]


MLFLOW = "http://127.0.0.1:5000"


def mlflow_account() -> tuple[str, str]:
    """The MLflow server's admin account (make up generates it in .env)."""
    values = dotenv.read(dotenv.ENV_FILE)[1]
    return values["MLFLOW_ADMIN_USERNAME"], values["MLFLOW_ADMIN_PASSWORD"]


@pytest.fixture(scope="module")
def token() -> str:
    return dotenv.read(dotenv.ENV_FILE)[1]["JUPYTER_TOKEN"]
