"""Host-side checks of the running compose cluster: what a user meets from their own machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import requests

import dotenv
from tests.conftest import ROOT

JUPYTER = "http://127.0.0.1:8888"


def compose(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=timeout
    )


@pytest.fixture(scope="module")
def token() -> str:
    return dotenv.read(dotenv.ENV_FILE)[1]["JUPYTER_TOKEN"]


def test_published_ports_are_loopback_only():
    rows = [json.loads(line) for line in compose("ps", "--format", "json").stdout.splitlines() if line.strip()]
    published = [(row["Service"], p) for row in rows for p in row.get("Publishers") or [] if p.get("PublishedPort")]
    assert {p["PublishedPort"] for _, p in published} >= {8888, 8080, 18080, 5000}
    for service, port in published:
        assert port["URL"] == "127.0.0.1", f"{service} publishes {port['PublishedPort']} on {port['URL']}"


def test_jupyterlab_login_over_http(token):
    assert requests.get(f"{JUPYTER}/api/status", timeout=10).status_code == 403
    assert (
        requests.get(f"{JUPYTER}/api/status", headers={"Authorization": "token wrong"}, timeout=10).status_code == 403
    )
    page = requests.get(f"{JUPYTER}/lab", params={"token": token}, timeout=30)
    assert page.status_code == 200 and "JupyterLab" in page.text
    login_redirect = requests.get(f"{JUPYTER}/lab", timeout=10, allow_redirects=False)
    assert login_redirect.status_code == 302 and "/login" in login_redirect.headers["Location"]


def test_master_has_two_alive_workers():
    state = requests.get("http://127.0.0.1:8080/json/", timeout=10).json()
    alive = [w for w in state["workers"] if w["state"] == "ALIVE"]
    assert len(alive) >= 2, f"alive workers: {[w['host'] for w in alive]}"


def test_mlflow_server_answers():
    assert requests.get("http://127.0.0.1:5000/health", timeout=10).status_code == 200
    experiments = requests.post(
        "http://127.0.0.1:5000/api/2.0/mlflow/experiments/search", json={"max_results": 5}, timeout=10
    )
    assert experiments.status_code == 200, experiments.text


def test_history_server_answers():
    assert requests.get("http://127.0.0.1:18080/api/v1/applications", timeout=10).status_code == 200


def test_notebooks_survive_a_container_restart(token):
    headers = {"Authorization": f"token {token}"}
    name = f"persist-{uuid.uuid4().hex[:8]}.ipynb"
    notebook = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    put = requests.put(
        f"{JUPYTER}/api/contents/{name}", headers=headers, timeout=10, json={"type": "notebook", "content": notebook}
    )
    assert put.status_code in (200, 201), put.text
    compose("up", "-d", "--wait", "--force-recreate", "--no-deps", "jupyter")
    deadline = time.monotonic() + 60
    while True:
        try:
            got = requests.get(f"{JUPYTER}/api/contents/{name}", headers=headers, timeout=10)
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    assert got.status_code == 200, f"{name} lost after recreating the jupyter container"
    requests.delete(f"{JUPYTER}/api/contents/{name}", headers=headers, timeout=10)


WRONG_SECRET_APP = """
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("mlrt-wrong-secret")
         .config("spark.authenticate.secret", "not-the-cluster-secret").getOrCreate())
print("JOB-RAN", spark.sparkContext.parallelize([1, 2]).count(), flush=True)
"""


def test_driver_with_a_wrong_secret_is_refused():
    """spark.authenticate is on between all members: the master rejects a driver with another secret."""
    result = compose(
        "exec", "-T", "jupyter", "timeout", "90", "python", "-c", WRONG_SECRET_APP, check=False, timeout=150
    )
    assert "JOB-RAN" not in result.stdout, "a driver with a wrong secret ran a job on the cluster"
    assert result.returncode != 0
    assert "SaslException" in result.stderr, f"no authentication failure seen:\n{result.stderr[-2000:]}"


def test_submit_wrapper_runs_a_job_on_the_compose_cluster(tmp_path):
    app = tmp_path / "count.py"
    app.write_text(
        "import sys\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "print('COUNT=%d' % spark.sparkContext.parallelize(range(int(sys.argv[1])), 4).count())\n"
        "print('MASTER=' + spark.sparkContext.master)\nspark.stop()\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "submit.py"),
            "compose",
            str(app),
            "--conf",
            "spark.app.name=mlrt-submit",
            "--",
            "1234",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "COUNT=1234" in result.stdout and "MASTER=spark://spark-master:7077" in result.stdout
