"""Shared fixtures of the cluster smoke tests. They run inside the driver (jupyter) container, where a plain
SparkSession.builder.getOrCreate() attaches to the cluster configured by the image (spark.master etc.)."""

from __future__ import annotations

import os
import time

import pytest

MIN_EXECUTORS = int(os.environ.get("MLRT_SMOKE_MIN_EXECUTORS", "2"))
EXECUTOR_WAIT_S = int(os.environ.get("MLRT_SMOKE_EXECUTOR_WAIT_S", "180"))


def registered_executors(spark) -> list[str]:
    """Host:port of every registered executor (the driver's own block manager excluded)."""
    sc = spark.sparkContext
    driver = f"{sc.getConf().get('spark.driver.host')}:"
    status = sc._jsc.sc().getExecutorMemoryStatus()
    hosts = [status.keys().toList().apply(i) for i in range(status.size())]
    return [h for h in hosts if not h.startswith(driver)]


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = SparkSession.builder.appName("mlrt-smoke-tests").getOrCreate()
    master = session.sparkContext.master
    if not master.startswith(("spark://", "k8s://")):
        pytest.fail(f"the driver is not attached to a cluster (spark.master={master}); set SPARK_MASTER_URL")
    deadline = time.monotonic() + EXECUTOR_WAIT_S
    while len(executors := registered_executors(session)) < MIN_EXECUTORS:
        if time.monotonic() > deadline:
            session.stop()
            pytest.fail(
                f"only {len(executors)} executor(s) registered within {EXECUTOR_WAIT_S}s "
                f"(want {MIN_EXECUTORS}): {executors}; check the workers' logs"
            )
        time.sleep(1)
    yield session
    session.stop()
