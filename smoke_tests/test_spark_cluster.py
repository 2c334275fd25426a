"""Spark really runs distributed: tasks land on several executors, pandas UDFs round-trip through Arrow."""

# No `from __future__ import annotations` here: pandas UDFs read their type hints at definition time.
import socket

import pandas as pd

from conftest import MIN_EXECUTORS


def test_tasks_run_on_several_executors(spark):
    sc = spark.sparkContext
    n = 10_000

    def where(index, rows):
        import os
        import socket
        import time

        time.sleep(0.5)  # keep every slot busy long enough for the scheduler to spread the tasks
        yield (socket.gethostname(), os.getpid(), index, sum(rows))

    results = sc.parallelize(range(n), 16).mapPartitionsWithIndex(where).collect()
    hosts = {host for host, _, _, _ in results}
    assert sum(total for _, _, _, total in results) == n * (n - 1) // 2
    assert sorted(index for _, _, index, _ in results) == list(range(16))
    assert socket.gethostname() not in hosts, "tasks ran in the driver container, not on executors"
    assert len(hosts) >= MIN_EXECUTORS, f"tasks ran on {sorted(hosts)} only; want >= {MIN_EXECUTORS} hosts"


def test_pandas_udf_arrow_round_trip(spark):
    from pyspark.sql.functions import pandas_udf

    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"

    @pandas_udf("double")
    def times_two(values: pd.Series) -> pd.Series:
        return values * 2.0

    @pandas_udf("string")
    def hostname(values: pd.Series) -> pd.Series:
        import socket

        return pd.Series([socket.gethostname()] * len(values))

    source = pd.DataFrame({"id": range(2000), "x": [i / 4 for i in range(2000)]})
    df = spark.createDataFrame(source).repartition(8)
    result = df.select("id", times_two("x").alias("y"), hostname("x").alias("host")).toPandas()

    assert len(result) == len(source)
    merged = source.merge(result, on="id")
    assert (merged["y"] == merged["x"] * 2.0).all()
    assert socket.gethostname() not in set(result["host"]), "the pandas UDF ran in the driver"


CLASS_ARCHIVE = "/opt/mlrt/cds/spark.jsa"  # images/spark/cds-archive


def test_driver_and_executor_jvms_map_the_images_class_archive(spark):
    """Every JVM of the session maps the image's class-data sharing archive (its start loads Spark's classes
    parsed and verified at build time): the driver's, and each executor's, found as the nearest `java` ancestor
    of a task's Python worker. A class path the archive does not match would leave it unmapped, silently."""

    def jvm_maps_archive(pid: int) -> bool:
        with open(f"/proc/{pid}/maps") as maps:
            return CLASS_ARCHIVE in maps.read()

    def executor_jvm(_):
        import os
        import socket

        pid = os.getppid()
        while pid > 1:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() == "java":
                    return [(socket.gethostname(), jvm_maps_archive(pid))]
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        return [(socket.gethostname(), None)]

    assert jvm_maps_archive(spark.sparkContext._gateway.proc.pid), f"the driver's JVM does not map {CLASS_ARCHIVE}"
    executors = dict(spark.sparkContext.parallelize(range(16), 16).mapPartitions(executor_jvm).collect())
    assert len(executors) >= MIN_EXECUTORS, executors
    assert all(executors.values()), f"executor JVMs mapping {CLASS_ARCHIVE}, by host: {executors}"
