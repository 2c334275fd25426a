"""Host-side checks of the running compose cluster: what a user meets from their own machine."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import requests

from tests.cluster.conftest import MLFLOW, alive_workers, compose, mlflow_account, refused_driver

JUPYTER = "http://127.0.0.1:8888"


def test_published_ports_are_loopback_only():
    rows = [json.loads(line) for line in compose("ps", "--format", "json").stdout.splitlines() if line.strip()]
    published = [(row["Service"], p) for row in rows for p in row.get("Publishers") or [] if p.get("PublishedPort")]
    assert {p["PublishedPort"] for _, p in published} >= {8888, 8080, 18080, 5000, 8333}
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
    alive = alive_workers()
    assert len(alive) >= 2, f"alive workers: {[w['host'] for w in alive]}"


def test_mlflow_server_refuses_requests_without_its_account():
    """MLflow's basic-auth app: the API and the UI answer 401 without the account or with a wrong password;
    /health stays open for the healthcheck."""
    assert requests.get(f"{MLFLOW}/health", timeout=10).status_code == 200
    search = f"{MLFLOW}/api/2.0/mlflow/experiments/search"
    user, password = mlflow_account()
    assert requests.post(search, json={"max_results": 5}, timeout=10).status_code == 401
    assert requests.post(search, json={"max_results": 5}, auth=(user, "wrong"), timeout=10).status_code == 401
    assert requests.get(f"{MLFLOW}/", timeout=10).status_code == 401
    experiments = requests.post(search, json={"max_results": 5}, auth=(user, password), timeout=10)
    assert experiments.status_code == 200, experiments.text


UI_ENVIRONMENT = """
import requests
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("mlrt-ui-environment").getOrCreate()
app = spark.sparkContext.applicationId
print(requests.get(f"{spark.sparkContext.uiWebUrl}/api/v1/applications/{app}/environment", timeout=30).text)
spark.stop()
"""


def test_mlflow_account_is_in_no_environment_and_no_spark_property():
    """The account reaches containers as secret files (~/.mlflow/credentials is written from them): no container's
    environment holds the password, and the Spark UI's Environment page (Spark, Hadoop and system properties) of a
    driver does not either."""
    _, password = mlflow_account()
    ids = compose("ps", "-q").stdout.split()
    inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout
    assert password not in inspected, "the MLflow password is in a container's configuration"
    out = compose("exec", "-T", "jupyter", "python", "-c", UI_ENVIRONMENT, timeout=180).stdout
    assert "mlrt-ui-environment" in out and password not in out


S3_PY = """
import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["MLRT_S3_ENDPOINT"])
op, bucket, key = sys.argv[1:4]
if op == "put":
    s3.put_object(Bucket=bucket, Key=key, Body=sys.argv[4].encode())
else:
    print(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
"""


def s3(*args: str) -> str:
    return compose("exec", "-T", "jupyter", "python", "-c", S3_PY, *args).stdout.strip()


def wait_healthy(service: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = [json.loads(line) for line in compose("ps", "--format", "json", service).stdout.splitlines() if line]
        if rows and all(r.get("Health") == "healthy" for r in rows):
            return
        time.sleep(2)
    pytest.fail(f"{service} did not become healthy within {timeout:.0f} s")


def test_object_store_refuses_anonymous_requests_and_keeps_objects_across_a_restart():
    assert requests.get("http://127.0.0.1:8333/lake/", timeout=10).status_code == 403
    key, body = f"restart/{uuid.uuid4().hex}.txt", uuid.uuid4().hex
    s3("put", "lake", key, body)
    compose("restart", "objectstore")
    wait_healthy("objectstore")
    assert s3("get", "lake", key) == body


def test_mlflow_copies_artifacts_from_its_volume_into_the_bucket_on_start():
    """Runs from before the object store: their files under the volume's artifacts/ reach the bucket."""
    rel = f"0/{uuid.uuid4().hex}/artifacts/notes.txt"
    script = (
        "import pathlib, sys; base = pathlib.Path('/opt/mlrt/mlflow/artifacts'); p = base / sys.argv[1]; "
        "p.parent.mkdir(parents=True); p.write_text('from the volume'); "
        "(base / '.mlrt-copied-to').unlink(missing_ok=True)"  # as on a volume from before the store
    )
    compose("exec", "-T", "mlflow", "python", "-c", script, rel)
    compose("restart", "mlflow")
    wait_healthy("mlflow")
    assert s3("get", "mlflow", f"artifacts/{rel}") == "from the volume"
    logs = compose("logs", "--since", "5m", "mlflow").stdout + compose("logs", "--since", "5m", "mlflow").stderr
    assert "copied 1 artifact files from /opt/mlrt/mlflow/artifacts to s3://mlflow/artifacts" in logs, logs[-2000:]


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
    out, err = refused_driver(WRONG_SECRET_APP, "Authentication failed")
    assert "JOB-RAN" not in out, "a driver with a wrong secret ran a job on the cluster"
    assert "Authentication failed" in err, f"no authentication failure seen:\n{err[-2000:]}"


# `make submit` to this cluster (scripts.submit compose, with application arguments): tests/cluster/test_catalog.py,
# whose submitted job also creates the tables a Spark Connect client then reads by name.
