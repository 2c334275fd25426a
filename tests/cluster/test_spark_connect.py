"""Spark Connect from the host, as an IDE or a laptop uses it: pyspark-client (the dev venv) against the compose
cluster's spark-connect service on 127.0.0.1:15002, with the token `make up` prints. Work runs on the cluster's
executors (the workers), never in this process; clients without the token are refused.

No `from __future__ import annotations` here: pandas UDFs read their type hints at definition time."""

import uuid

import pytest

import dotenv

PORT = 15002


@pytest.fixture(scope="module")
def connect_url() -> str:
    token = dotenv.read(dotenv.ENV_FILE)[1]["SPARK_CONNECT_TOKEN"]
    return f"sc://localhost:{PORT}/;token={token}"


@pytest.fixture(scope="module")
def remote(connect_url):
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(connect_url).getOrCreate()
    # The tables here are small: Delta's state in 4 partitions, joins and aggregations in 8 (defaults: 50, 200).
    session.conf.set("spark.databricks.delta.snapshotPartitions", "4")
    session.conf.set("spark.sql.shuffle.partitions", "8")
    yield session
    session.stop()


def test_dataframe_job_and_pandas_udf_run_on_the_cluster_executors(remote):
    import pandas as pd
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    counts = remote.range(0, 200_000, numPartitions=8).groupBy((F.col("id") % 7).alias("k")).count().toPandas()
    assert counts["count"].sum() == 200_000 and len(counts) == 7

    @pandas_udf("string")
    def where(ids: pd.Series) -> pd.Series:
        import socket

        return pd.Series([socket.gethostname()] * len(ids))

    @pandas_udf("double")
    def plus_half(ids: pd.Series) -> pd.Series:
        return ids + 0.5

    rows = remote.range(0, 1000, numPartitions=8).select(plus_half("id").alias("v"), where("id").alias("host"))
    result = rows.toPandas()
    assert result["v"].sum() == sum(i + 0.5 for i in range(1000))
    hosts = set(result["host"])
    assert len(hosts) >= 2 and "spark-connect" not in hosts, f"pandas UDF ran on {hosts}, want >= 2 executors"


def test_delta_table_written_and_read_through_connect(remote):
    table = f"mlrt_connect_{uuid.uuid4().hex[:8]}"
    try:
        remote.range(0, 500, numPartitions=2).withColumnRenamed("id", "n").write.format("delta").saveAsTable(table)
        remote.range(500, 600, numPartitions=1).withColumnRenamed("id", "n").write.mode("append").saveAsTable(table)
        assert remote.table(table).count() == 600
        history = remote.sql(f"DESCRIBE HISTORY {table}").toPandas()
        assert list(history["operation"]) == ["WRITE", "CREATE TABLE AS SELECT"], history["operation"].tolist()
        first = remote.read.option("versionAsOf", 0).table(table).count()
        assert first == 500
    finally:
        remote.sql(f"DROP TABLE IF EXISTS {table}")


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"], ids=["no-token", "wrong-token"])
def test_a_client_without_the_token_is_refused(token):
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    url = f"sc://localhost:{PORT}" + (f"/;token={token}" if token else "")
    with pytest.raises(PySparkException) as refused:
        session = SparkSession.builder.remote(url).create()
        try:
            session.range(3).collect()
        finally:
            session.stop()
    message = str(refused.value)
    assert "UNAUTHENTICATED" in message or "authentication" in message.lower(), message[:2000]
