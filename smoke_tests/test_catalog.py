"""The deployment's shared table catalog (a Hive metastore over PostgreSQL) as a Databricks user meets it: a
managed Delta table and a view created in one session, their data written by executors on several hosts, are
seen by name from a new session, which creates a table at the same time as the first one does; DROP TABLE removes
a managed table's files.

The table and view are kept (overwritten on each run, as `saveAsTable(mode="overwrite")` does after a restart):
later checks read them by name from `make submit`, Spark Connect, after the catalog restarts (compose) and after
`helm upgrade` and a reinstall (Kubernetes). Without a shared catalog (the chart's catalog.enabled=false) these
tests are skipped, saying so."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
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


def test_a_managed_delta_table_and_a_view_are_created_by_name_with_executors_writing(spark):
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA} COMMENT 'mlrt smoke tests'")
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


NEW_SESSION = """
import json, sys
from pyspark.sql import SparkSession
table, view, mine = sys.argv[1:4]
# A session of its own (another application, as a new notebook or job is), in local mode: what is tested is the
# catalog it shares, not its executors.
spark = (SparkSession.builder.master("local[1]").appName("mlrt-smoke-catalog-session")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
seen = {"table": spark.table(table).count(), "view": spark.table(view).count()}
spark.range(3).write.format("delta").saveAsTable(mine + "_warm")  # Delta's first write in this JVM, out of the race
print("READY", flush=True)
sys.stdin.readline()  # both sessions create their tables at the same time
spark.range(10).write.format("delta").saveAsTable(mine)
seen["mine"] = spark.table(mine).count()
print("SEEN " + json.dumps(seen), flush=True)
spark.stop()
"""


def test_a_new_session_sees_them_by_name_and_both_create_tables_at_the_same_time(spark):
    tag = uuid.uuid4().hex[:8]
    theirs, ours = f"{SCHEMA}.concurrent_{tag}_new", f"{SCHEMA}.concurrent_{tag}_shared"
    made = [theirs + "_warm", theirs, ours]
    log = tempfile.TemporaryFile(mode="w+")  # Spark's log: a pipe nobody reads would fill and stop the session
    proc = subprocess.Popen(
        [sys.executable, "-c", NEW_SESSION, TABLE, VIEW, theirs],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, "PYSPARK_SUBMIT_ARGS": "pyspark-shell"},
    )

    def failed() -> str:
        log.seek(0)
        return f"the new session failed:\n{log.read()[-3000:]}"

    try:
        deadline = time.monotonic() + 300
        while True:  # lines before READY (Ivy's notice) are skipped
            assert select.select([proc.stdout], [], [], max(0, deadline - time.monotonic()))[0], failed()
            line = proc.stdout.readline()
            assert line, failed()
            if line.strip() == "READY":
                break
        proc.stdin.write("go\n")
        proc.stdin.flush()
        spark.range(20).write.format("delta").saveAsTable(ours)  # meanwhile, in the shared session
        out, _ = proc.communicate(timeout=300)
        seen = [json.loads(line[5:]) for line in out.splitlines() if line.startswith("SEEN ")]
        assert proc.returncode == 0 and seen, failed()
        assert seen[0] == {"table": ROWS, "view": ROWS // 2, "mine": 10}, seen
        assert spark.table(ours).count() == 20
        assert {t.name for t in spark.catalog.listTables(SCHEMA)} >= {name.split(".")[1] for name in made}
    finally:
        proc.kill()
        locations = []
        for name in made:
            if spark.catalog.tableExists(name):
                locations.append(spark.sql(f"DESCRIBE DETAIL {name}").first()["location"])
                spark.sql(f"DROP TABLE {name}")
    # a managed table's files go with it
    jvm = spark._jvm
    for location in locations:
        path = jvm.org.apache.hadoop.fs.Path(location)
        assert not path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path), f"{location} left behind"


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
