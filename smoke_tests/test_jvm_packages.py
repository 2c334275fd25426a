"""JVM packages from the jar lock, used the way Databricks users do: Delta Lake tables in the lake (the object
store's bucket where the deployment has one, as on Databricks; else the shared volume), written by executors on
several hosts; GraphFrames; MLeap bundles. A package whose jars the image lacks (the lock
records it unresolved: no configured Maven repository served it) is reported as skipped with that reason; its
test runs, and must pass, whenever the jars are in the image."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest

from conftest import ran_on_executors, require_jars

# The volume the driver and every executor mount (compose: the `lake` volume; Kubernetes: the chart's lake claim).
LAKE = Path(os.environ.get("MLRT_LAKE_DIR", "/opt/mlrt/lake"))


@pytest.fixture(autouse=True)
def small_tables(small_shuffles):
    """Small tables: few partitions (conftest)."""


@pytest.fixture
def table_root():
    """A fresh directory for tables: in the warehouse's bucket when it is s3a://, else on the shared volume."""
    warehouse = os.environ.get("MLRT_WAREHOUSE_DIR", "")
    if warehouse.startswith("s3a://"):
        return f"s3a://{warehouse.split('/')[2]}/smoke/{uuid.uuid4().hex[:12]}"
    path = LAKE / "smoke" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    return f"file://{path}"


def data_files(spark, uri: str) -> list[str]:
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    return [s.getPath().getName() for s in fs.listStatus(path) if s.getPath().getName().endswith(".parquet")]


@pytest.fixture
def lake_dir():
    if not os.access(LAKE, os.W_OK):
        pytest.fail(f"{LAKE} is not a writable shared volume in the driver; mount the lake there")
    path = LAKE / "smoke" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    return path


def test_delta_lake_in_the_lake(spark, table_root):
    require_jars("JVM_PACKAGE_DELTA")
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    assert spark.conf.get("spark.sql.extensions") == "io.delta.sql.DeltaSparkSessionExtension"
    path = f"{table_root}/events"
    with ran_on_executors(spark, "Delta write") as evidence:
        spark.range(0, 10_000, numPartitions=8).withColumn("v", F.col("id") * 2).write.format("delta").save(path)
    files = data_files(spark, path)
    assert len(files) >= 2, files
    back = spark.read.format("delta").load(path)
    assert back.count() == 10_000
    assert back.agg(F.sum("v")).first()[0] == 2 * sum(range(10_000))

    # MERGE upsert: 10 ids match (updated), 10 are new (inserted).
    updates = spark.range(9_990, 10_010).withColumn("v", F.lit(-1))
    table = DeltaTable.forPath(spark, path)
    (
        table.alias("t")
        .merge(updates.alias("u"), "t.id = u.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    merge = table.history(1).select("operation", "operationMetrics").first()
    assert merge.operation == "MERGE"
    assert merge.operationMetrics["numTargetRowsUpdated"] == "10"
    assert merge.operationMetrics["numTargetRowsInserted"] == "10"
    assert spark.read.format("delta").load(path).count() == 10_010
    assert spark.read.format("delta").load(path).where("v = -1").count() == 20

    # Time travel to version 0: the table as first written.
    v0 = spark.read.format("delta").option("versionAsOf", 0).load(path)
    assert v0.count() == 10_000 and v0.where("v = -1").count() == 0

    # Two concurrent appends both land (Delta's optimistic concurrency; blind appends do not conflict).
    errors: list[BaseException] = []

    def append(start: int) -> None:
        try:
            spark.range(start, start + 500, numPartitions=2).withColumn("v", F.lit(1).cast("long")).write.format(
                "delta"
            ).mode("append").save(path)
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=append, args=(s,)) for s in (100_000, 200_000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, [str(e)[:600] for e in errors]
    assert spark.read.format("delta").load(path).count() == 11_010

    spark.sql(f"OPTIMIZE delta.`{path}`")
    spark.sql(f"VACUUM delta.`{path}` RETAIN 168 HOURS")
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    operations = [r.operation for r in history]
    assert operations[:5] == ["WRITE", "MERGE", "WRITE", "WRITE", "OPTIMIZE"], operations
    print(f"Delta at {path}: written by executors on {sorted(evidence.hosts)}; history {operations}")


def test_delta_managed_tables_in_the_shared_warehouse(spark):
    require_jars("JVM_PACKAGE_DELTA")
    warehouse = spark.conf.get("spark.sql.warehouse.dir")
    if os.environ.get("MLRT_WAREHOUSE_DIR"):  # the deployment's lake (the object store's bucket)
        assert warehouse == os.environ["MLRT_WAREHOUSE_DIR"]
    else:
        assert warehouse.startswith((f"file:{LAKE}/", f"file://{LAKE}/")), warehouse
    created, saved = (f"smoke_{uuid.uuid4().hex[:8]}" for _ in range(2))
    spark.sql(f"CREATE TABLE {created} (id BIGINT, label STRING) USING delta")
    try:
        with ran_on_executors(spark, "Delta managed table"):
            rows = spark.range(0, 1_000, numPartitions=4).selectExpr("id", "cast(id % 3 AS STRING) AS label")
            rows.write.mode("append").saveAsTable(created)
            # As on Databricks, a table saved with no format is a Delta table.
            rows.write.saveAsTable(saved)
        assert spark.table(created).count() == 1_000
        assert spark.sql(f"SELECT count(*) FROM {saved} WHERE label = '0'").first()[0] == 334
        for name in (created, saved):
            detail = spark.sql(f"DESCRIBE DETAIL {name}").first()
            assert detail.format == "delta", (name, detail)
            assert detail.location.startswith(warehouse.rstrip("/")) or LAKE.as_posix() in detail.location, detail
            assert data_files(spark, detail.location), f"{name}: no data files at {detail.location}"
    finally:
        for name in (created, saved):
            spark.sql(f"DROP TABLE IF EXISTS {name}")


def test_graphframes_components_and_pagerank(spark, lake_dir):
    require_jars("JVM_PACKAGE_GRAPHFRAMES", "JVM_PACKAGE_GRAPHFRAMES_GRAPHX")
    from graphframes import GraphFrame

    spark.sparkContext.setCheckpointDir(f"file://{lake_dir}/checkpoints")
    vertices = spark.createDataFrame([(i,) for i in range(10)], ["id"]).repartition(4)
    # Three components {0..4}, {5, 6, 7}, {8, 9}; vertex 0 is the hub everyone in the first links to.
    edges = [(1, 0), (2, 0), (3, 0), (4, 0), (5, 6), (6, 7), (8, 9)]
    graph = GraphFrame(vertices, spark.createDataFrame(edges, ["src", "dst"]).repartition(4))
    with ran_on_executors(spark, "GraphFrames"):
        components = graph.connectedComponents().collect()
        ranks = {r.id: r.pagerank for r in graph.pageRank(resetProbability=0.15, maxIter=20).vertices.collect()}
    groups: dict[int, list[int]] = {}
    for row in components:
        groups.setdefault(row.component, []).append(row.id)
    assert sorted(sorted(g) for g in groups.values()) == [[0, 1, 2, 3, 4], [5, 6, 7], [8, 9]]
    assert max(ranks, key=ranks.get) == 0
    assert len({round(ranks[i], 6) for i in (1, 2, 3, 4)}) == 1, "the hub's four leaves rank alike"
    assert any((lake_dir / "checkpoints").iterdir()), "connected components checkpoint to the shared lake"


def test_mleap_bundle_round_trip(spark, lake_dir):
    require_jars("JVM_PACKAGE_MLEAP", "JVM_PACKAGE_MLEAP_EXTENSION")
    import mleap.pyspark  # noqa: F401  (adds serializeToBundle / deserializeFromBundle)
    from mleap.pyspark.spark_support import SimpleSparkSerializer  # noqa: F401
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer, VectorAssembler
    from pyspark.sql import functions as F

    df = (
        spark.range(0, 2_000, numPartitions=4)
        # element_at wants an INT index under Spark 4's ANSI mode; id is a bigint
        .withColumn(
            "colour",
            F.element_at(F.array(F.lit("red"), F.lit("green"), F.lit("blue")), (F.col("id") % 3 + 1).cast("int")),
        )
        .withColumn("x", F.rand(seed=3) * 10)
        .withColumn("label", ((F.col("x") > 5) | (F.col("colour") == "red")).cast("double"))
    )
    pipeline = Pipeline(
        stages=[
            StringIndexer(inputCol="colour", outputCol="colour_index"),
            VectorAssembler(inputCols=["colour_index", "x"], outputCol="features"),
            LogisticRegression(maxIter=50),
        ]
    )
    with ran_on_executors(spark, "MLeap pipeline fit"):
        model = pipeline.fit(df)
    bundle = f"jar:file:{lake_dir}/model.zip"
    model.serializeToBundle(bundle, model.transform(df))
    loaded = PipelineModel.deserializeFromBundle(bundle)
    before = [r.prediction for r in model.transform(df).orderBy("id").select("prediction").collect()]
    after = [r.prediction for r in loaded.transform(df).orderBy("id").select("prediction").collect()]
    assert after == before
