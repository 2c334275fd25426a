"""JupyterLab, seen from the driver container: it refuses requests without the token and accepts the token."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

URL = os.environ.get("MLRT_JUPYTER_URL", "http://localhost:8888")


def status_of(path: str, token: str | None = None) -> int:
    request = urllib.request.Request(URL + path)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def token() -> str:
    value = os.environ.get("JUPYTER_TOKEN", "")
    assert value, "JUPYTER_TOKEN is not set in the driver container"
    return value


def test_refuses_without_token():
    assert status_of("/api/status") == 403


def test_refuses_wrong_token(token):
    assert status_of("/api/status", token + "x") == 403


def test_accepts_token(token):
    assert status_of("/api/status", token) == 200
    assert status_of("/api/kernelspecs", token) == 200
