"""Faults the compose cluster must survive, each bounded in time and checked by its exact result.

A worker crash: the worker's JVM killed (-9) in the middle of a job of many short tasks takes its executors
with it (the container's init exits and the container stops); the job still returns the right answer, and the
restart policy brings the worker back, registered with the master.
An MLflow restart while executors log metrics: MLflow's client retries, no metric step is lost.
(JupyterLab's restart keeping notebooks is tested in test_compose_cluster.py.)"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import requests

from tests.cluster.conftest import MLFLOW, alive_workers, compose, mlflow_account
from tests.conftest import ROOT

APP = "mlrt-fault-worker-crash"
JOB = f"""
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("{APP}").getOrCreate()
sc = spark.sparkContext
assert sc.parallelize(range(8), 8).count() == 8
print("STARTED", flush=True)
def slow_square(x):
    import time
    time.sleep(0.25)
    return x * x
print("RESULT", sc.parallelize(range(400), 100).map(slow_square).sum(), flush=True)
spark.stop()
"""


def worker_container(index: int) -> str:
    ids = sorted(compose("ps", "-q", "spark-worker").stdout.split())
    assert len(ids) >= 2, f"want 2 worker containers: {ids}"
    return ids[index]


def restarts(container: str) -> int:
    out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["RestartCount"]


def start_in_driver(source: str, mark: str) -> tuple[subprocess.Popen, list[str], threading.Thread]:
    """Run a Python job in the driver (jupyter) container; return once it prints a line starting with mark."""
    job = subprocess.Popen(
        ["docker", "compose", "exec", "-T", "jupyter", "python", "-c", source],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(job.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any(line.startswith(mark) for line in lines):
        assert job.poll() is None and time.monotonic() < deadline, f"the job did not start: {lines}"
        time.sleep(0.5)
    return job, lines, reader


def finish(job: subprocess.Popen, reader: threading.Thread, timeout: int) -> None:
    try:
        job.wait(timeout=timeout)
    finally:
        if job.poll() is None:
            job.kill()
    reader.join(timeout=10)


def test_a_job_survives_a_worker_crash_and_the_worker_comes_back():
    assert len(alive_workers()) == 2, "the test wants both workers up"
    victim = worker_container(0)
    restarts_before = restarts(victim)
    job, lines, reader = start_in_driver(JOB, "STARTED")
    time.sleep(4)  # tasks of the long job are running on both workers
    started = time.monotonic()
    subprocess.run(["docker", "exec", victim, "pkill", "-9", "-f", "org.apache.spark.deploy.worker.Worker"], check=True)
    finish(job, reader, timeout=300)
    took = time.monotonic() - started
    stderr = job.stderr.read()
    result = [line.split()[1] for line in lines if line.startswith("RESULT")]
    assert result == [str(sum(x * x for x in range(400)))], f"{lines}\n{stderr[-3000:]}"
    # The crash hit the job: the driver lost the crashed worker's executor and ran its tasks again elsewhere.
    assert "Lost executor" in stderr, stderr[-3000:]
    print(f"job finished {took:.0f} s after the worker crash")

    deadline = time.monotonic() + 180
    while len(alive_workers()) < 2 and time.monotonic() < deadline:
        time.sleep(3)
    assert len(alive_workers()) == 2, f"the crashed worker did not come back: {alive_workers()}"
    assert restarts(victim) == restarts_before + 1, "the worker came back without its container restarting"
    print(f"worker registered again {time.monotonic() - started:.0f} s after the crash")


MLFLOW_APP = "mlrt-fault-mlflow-restart"
STEPS = 60
LOGGING_JOB = f"""
import mlflow
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("{MLFLOW_APP}").getOrCreate()
mlflow.set_experiment("{MLFLOW_APP}")
with mlflow.start_run() as run:
    run_id = run.info.run_id
def log(index, rows):
    import time
    from mlflow import MlflowClient
    client = MlflowClient()
    for step in range({STEPS}):
        client.log_metric(run_id, f"partition{{index}}", float(step), step=step)
        time.sleep(0.5)
    yield index
sc = spark.sparkContext
assert sc.parallelize(range(8), 8).count() == 8
print("RUN", run_id, flush=True)
print("DONE", sorted(sc.parallelize(range(2), 2).mapPartitionsWithIndex(log).collect()), flush=True)
spark.stop()
"""


def test_metrics_logged_from_executors_survive_an_mlflow_restart():
    """Executors log a metric every 0.5 s for 30 s while the MLflow server restarts: MLflow's client retries,
    every step of both metrics is in the run, and the run stays readable."""
    job, lines, reader = start_in_driver(LOGGING_JOB, "RUN")
    run_id = next(line.split()[1] for line in lines if line.startswith("RUN"))
    time.sleep(8)  # the executors are logging
    started = time.monotonic()
    compose("restart", "mlflow", timeout=120)
    while True:  # the server is down until its new process answers
        try:
            if requests.get(f"{MLFLOW}/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() - started < 180, "MLflow did not come back"
        time.sleep(0.5)
    print(f"MLflow answered again {time.monotonic() - started:.0f} s after the restart began")
    assert job.poll() is None, "the executors finished logging before the restart: the test proved nothing"
    finish(job, reader, timeout=400)
    assert any(line.startswith("DONE [0, 1]") for line in lines), f"{lines}\n{job.stderr.read()[-3000:]}"
    for index in range(2):
        history = requests.get(
            f"{MLFLOW}/api/2.0/mlflow/metrics/get-history",
            params={"run_id": run_id, "metric_key": f"partition{index}", "max_results": 1000},
            auth=mlflow_account(),
            timeout=30,
        ).json()["metrics"]
        assert sorted(m["step"] for m in history) == list(range(STEPS)), f"partition{index}: {history}"
