"""The deployment's shared table catalog (a Hive metastore over PostgreSQL) as a Databricks user meets it: a
managed Delta table and a view created by name, their data written by executors on several hosts; DROP TABLE
removes a managed table's files; a table whose files were deleted outside Spark fails, and the notebook kernel
says where the catalog has it.

The table and view are kept (overwritten on each run, as `saveAsTable(mode="overwrite")` does after a restart):
on Kubernetes later checks read them by name from Spark Connect, a cluster-mode driver, after `helm upgrade` and
after a reinstall (tests/e2e/test_helm.py). Other sessions, concurrent creates and the catalog's faults on compose:
tests/cluster/test_catalog.py. `make test` runs the first test in helm test only: on compose, example notebook 18
(table-catalog) creates a managed table and a view by name the same way, its tasks checked on several executors.
Without a shared catalog (the chart's catalog.enabled=false) these tests are skipped, saying so."""

from __future__ import annotations

import uuid

import pytest

from conftest import ran_on_executors

SCHEMA = "mlrt_smoke"
TABLE = f"{SCHEMA}.catalog_events"
VIEW = f"{SCHEMA}.catalog_events_even"
ROWS = 1000

pytestmark = pytest.mark.usefixtures("small_shuffles")


@pytest.fixture(scope="module", autouse=True)
def shared_catalog(spark):
    if spark.conf.get("spark.sql.catalogImplementation", "in-memory") != "hive":
        pytest.skip("this deployment has no shared catalog (each session has its own); enable the chart's catalog")
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} COMMENT 'mlrt smoke tests'")


def test_a_managed_delta_table_and_a_view_are_created_by_name_with_executors_writing(spark):
    with ran_on_executors(spark, "a managed Delta table"):
        spark.range(0, ROWS, 1, 8).selectExpr("id", "id % 7 AS bucket").write.format("delta").mode(
            "overwrite"
        ).saveAsTable(TABLE)
    spark.sql(f"CREATE OR REPLACE VIEW {VIEW} AS SELECT id FROM {TABLE} WHERE id % 2 = 0")
    detail = spark.sql(f"DESCRIBE DETAIL {TABLE}").first()
    warehouse = spark.conf.get("spark.sql.warehouse.dir").rstrip("/")
    assert detail["format"] == "delta" and detail["location"] == f"{warehouse}/{SCHEMA}.db/catalog_events", detail
    assert spark.table(VIEW).count() == ROWS // 2
    assert {t.name for t in spark.catalog.listTables(SCHEMA)} >= {"catalog_events", "catalog_events_even"}
    assert spark.sql(f"DESCRIBE HISTORY {TABLE}").count() >= 1
    # a managed table's files go with it
    dropped = f"{SCHEMA}.dropped_{uuid.uuid4().hex[:8]}"
    spark.range(3).write.format("delta").saveAsTable(dropped)
    path = spark._jvm.org.apache.hadoop.fs.Path(spark.sql(f"DESCRIBE DETAIL {dropped}").first()["location"])
    spark.sql(f"DROP TABLE {dropped}")
    assert not path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path), f"{path} left behind"


def test_a_table_whose_files_are_gone_fails_and_the_notebook_names_its_location_and_can_be_dropped(spark):
    """Delta's own error only says the table does not exist (while SHOW TABLES lists it); notebook kernels add
    where the catalog says its files are (mlrt.catalog_hints, the notebook image's kernel extension)."""
    from mlrt.catalog_hints import hint

    name = f"{SCHEMA}.gone_{uuid.uuid4().hex[:8]}"
    spark.range(5).write.format("delta").saveAsTable(name)
    location = spark.sql(f"DESCRIBE DETAIL {name}").first()["location"]
    path = spark._jvm.org.apache.hadoop.fs.Path(location)
    path.getFileSystem(spark._jsc.hadoopConfiguration()).delete(path, True)
    try:
        with pytest.raises(Exception) as err:
            spark.table(name).count()
        message = str(err.value)
        listed = {row.tableName for row in spark.sql(f"SHOW TABLES IN {SCHEMA}").collect()}
        assert "DELTA_TABLE_NOT_FOUND" in message and name.split(".")[1] in listed, message[:2000]
        told = hint(message)
        assert told and f"the catalog has {name} at {location}, but its files are not there" in told, told
        assert f"DROP TABLE {name}" in told
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {name}")
    assert not spark.catalog.tableExists(name)
