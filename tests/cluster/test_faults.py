"""Faults the compose cluster must survive, each bounded in time and checked by its exact result.

A worker crash: the worker's JVM killed (-9) in the middle of a job of many short tasks takes its executors
with it (the container's init exits and the container stops); the job still returns the right answer, and the
restart policy brings the worker back, registered with the master."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import requests

from tests.conftest import ROOT

MASTER = "http://localhost:8080/json/"
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


def alive_workers() -> list[dict]:
    return [w for w in requests.get(MASTER, timeout=10).json()["workers"] if w["state"] == "ALIVE"]


def worker_container(index: int) -> str:
    out = subprocess.run(
        ["docker", "compose", "ps", "-q", "spark-worker"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    ids = sorted(out.stdout.split())
    assert len(ids) >= 2, f"want 2 worker containers: {ids}"
    return ids[index]


def restarts(container: str) -> int:
    out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]["RestartCount"]


def test_a_job_survives_a_worker_crash_and_the_worker_comes_back():
    assert len(alive_workers()) == 2, "the test wants both workers up"
    victim = worker_container(0)
    restarts_before = restarts(victim)
    job = subprocess.Popen(
        ["docker", "compose", "exec", "-T", "jupyter", "python", "-c", JOB],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(job.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 180
    while not any(line.startswith("STARTED") for line in lines):
        assert job.poll() is None and time.monotonic() < deadline, f"the job did not start: {lines}"
        time.sleep(0.5)
    time.sleep(4)  # tasks of the long job are running on both workers
    started = time.monotonic()
    subprocess.run(["docker", "exec", victim, "pkill", "-9", "-f", "org.apache.spark.deploy.worker.Worker"], check=True)
    try:
        job.wait(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
    reader.join(timeout=10)
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
