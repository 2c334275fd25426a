"""Shared by the host-side checks of the running compose cluster."""

from __future__ import annotations

import re
import subprocess
import threading
import uuid

import pytest
import requests

from scripts import dotenv
from tests.conftest import ROOT


def compose(
    *args: str, check: bool = True, timeout: int = 300, stdin: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=timeout,
        input=stdin,
    )  # fmt: skip


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


def refused_driver(code: str, refusal: str, limit: int = 90) -> tuple[str, str]:
    """Run a driver (Python code that prints JOB-RAN once a job ran) in the jupyter container that the cluster
    must refuse, until `refusal` (a regular expression) shows in its log or `limit` seconds pass, then stop it.
    Spark's standalone client tries the master three times, 20 s apart, before it gives up: once the first
    refusal is logged the rest is waiting. Returns (stdout, stderr)."""
    marker = f"mlrt-refused-{uuid.uuid4().hex[:8]}"
    command = ["docker", "compose", "exec", "-T", "jupyter", "timeout", str(limit), "python", "-c", code, marker]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    err: list[str] = []
    for line in proc.stderr:
        err.append(line)
        if re.search(refusal, line):
            compose("exec", "-T", "jupyter", "pkill", "-f", marker, check=False)
            break
    proc.wait(timeout=limit + 60)
    err.extend(proc.stderr)
    reader.join(10)
    return "".join(out), "".join(err)
