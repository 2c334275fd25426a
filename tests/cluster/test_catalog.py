"""The shared table catalog on the compose cluster, beyond the notebook (smoke_tests/test_catalog.py covers that):
a `make submit` job (the wrapper's own test too) creates a managed table and a view that a Spark Connect client
reads by name; the metastore
or its database down fails a session's catalog call within seconds, naming the metastore (in a notebook kernel,
with how to check it); recreated (what `make down && make up` does to their containers, volumes kept), the
catalog has everything, and the long-running Connect server works again. Wrong database credentials and a
schema of another version are refused by the metastore with one clear line each."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from cli import dotenv
from tests.cluster.conftest import compose
from tests.conftest import ROOT

SCHEMA = "mlrt_cluster"
TABLE = f"{SCHEMA}.submitted"
VIEW = f"{SCHEMA}.submitted_small"
ROWS = 5000
FAST_S = 30  # a catalog call with the metastore or its database down fails within this (measured 8-9 s)

SUBMITTED = f"""
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("COUNT=%d" % spark.sparkContext.parallelize(range(int(sys.argv[1])), 4).count())
print("MASTER=" + spark.sparkContext.master)
spark.conf.set("spark.databricks.delta.snapshotPartitions", "4")
spark.sql("CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
spark.range(0, {ROWS}, 1, 4).selectExpr("id", "id * 2 AS twice").write.format("delta").mode("overwrite").saveAsTable(
    "{TABLE}")
spark.sql("CREATE OR REPLACE VIEW {VIEW} AS SELECT * FROM {TABLE} WHERE id < 100")
print("CATALOG=" + spark.conf.get("spark.sql.catalogImplementation"))
spark.stop()
"""


@pytest.fixture(scope="module")
def remote():
    from pyspark.sql import SparkSession

    token = dotenv.read(dotenv.ENV_FILE)[1]["SPARK_CONNECT_TOKEN"]
    session = SparkSession.builder.remote(f"sc://localhost:15002/;token={token}").getOrCreate()
    session.conf.set("spark.databricks.delta.snapshotPartitions", "4")
    yield session
    session.stop()


def test_make_submit_runs_a_job_whose_table_and_view_a_connect_client_reads_by_name(tmp_path, remote):
    """`make submit` (cli.submit compose): the application with its arguments on the compose cluster; the managed
    table and view it creates are read by name from a Spark Connect client."""
    app = tmp_path / "catalog_app.py"
    app.write_text(SUBMITTED)
    submit = [sys.executable, "-m", "cli.submit", "compose", str(app), "--conf", "spark.app.name=mlrt-submit"]
    result = subprocess.run([*submit, "--", "1234"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "COUNT=1234" in result.stdout and "MASTER=spark://spark-master:7077" in result.stdout
    assert "CATALOG=hive" in result.stdout
    assert remote.table(TABLE).count() == ROWS
    assert remote.table(VIEW).count() == 100
    assert {t.name for t in remote.catalog.listTables(SCHEMA)} >= {"submitted", "submitted_small"}


KERNEL_CELL = f"""
import time
from pyspark.sql import SparkSession
spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
         .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
started = time.monotonic()
try:
    spark.sql("SHOW TABLES IN {SCHEMA}").collect()
finally:
    print(f"FAILED-AFTER={{time.monotonic() - started:.1f}}")
"""


def failing_call(remote, statement: str) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        remote.sql(statement).collect()
    return time.monotonic() - started, str(err.value)


def test_the_catalog_down_fails_in_seconds_naming_it_and_recreated_it_has_everything(remote):
    assert remote.table(TABLE).count() == ROWS  # the Connect server's session knows the catalog before
    try:
        compose("stop", "metastore", timeout=120)
        # a notebook kernel (the image's IPython extensions) with the metastore gone
        cell = compose("exec", "-T", "jupyter", "ipython", "--ext", "mlrt.catalog_hints", "-c", KERNEL_CELL,
                       check=False, timeout=300)  # fmt: skip
        out = cell.stdout + cell.stderr
        took = float(out.split("FAILED-AFTER=")[1].split()[0])
        assert took < FAST_S, f"the catalog call took {took} s to fail with the metastore down"
        assert "mlrt: the table catalog (thrift://metastore:9083) did not answer" in out, out[-3000:]
        assert "docker compose logs metastore" in out
        compose("start", "metastore", timeout=120)
        compose("up", "-d", "--wait", "metastore", timeout=300)
        # the database gone under a running metastore: the metastore's error reaches the client in seconds
        compose("stop", "postgres", timeout=120)
        took, message = failing_call(remote, f"SHOW TABLES IN {SCHEMA}")
        assert took < FAST_S and "MetaException" in message, (took, message[:2000])
    finally:
        # what `make down && make up` does to the catalog's containers: new ones, the volume kept
        compose("up", "-d", "--wait", "--force-recreate", "postgres", "metastore", timeout=300)
    deadline = time.monotonic() + 60
    while True:  # the Connect server's Hive client reconnects on its next call
        try:
            assert remote.table(TABLE).count() == ROWS and remote.table(VIEW).count() == 100
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def schema_step(credentials: str, database: str = "metastore") -> subprocess.CompletedProcess:
    """`python -m mlrt.metastore schema` in a throwaway metastore container, with the given account directory."""
    return compose("run", "--rm", "--no-deps", "-T", "-e", f"MLRT_METASTORE_DB_CREDENTIALS_DIR={credentials}",
                   "-e", f"MLRT_METASTORE_DB_URL=jdbc:postgresql://postgres:5432/{database}",
                   "--entrypoint", "bash", "metastore", "-c", f"{WITH_WRONG_PASSWORD} python -m mlrt.metastore schema",
                   check=False, timeout=300)  # fmt: skip


# an account directory with the right user and a wrong password, made inside the container
WITH_WRONG_PASSWORD = (
    "mkdir -p /tmp/wrong && cp /run/secrets/catalog/username /tmp/wrong/ && echo not-the-password >/tmp/wrong/password;"
)


PSQL = (
    'PGPASSWORD="$(cat /run/secrets/catalog/password)" '
    'psql -h localhost -U "$(cat /run/secrets/catalog/username)" -X -tA -v ON_ERROR_STOP=1 -d "$0"'
)


def psql(database: str, sql: str) -> str:
    """SQL (on standard input) in the catalog's database server, as its superuser."""
    command = ["docker", "compose", "exec", "-T", "postgres", "bash", "-c", PSQL, database]
    return subprocess.run(command, cwd=ROOT, input=sql, capture_output=True, text=True, check=True).stdout.strip()


OTHER_VERSION = """
CREATE TABLE "VERSION" ("VER_ID" bigint, "SCHEMA_VERSION" varchar(127), "VERSION_COMMENT" varchar(255));
INSERT INTO "VERSION" VALUES (1, '1.2.0', 'another metastore');
"""


def test_wrong_database_credentials_and_a_schema_of_another_version_are_refused_clearly():
    wrong = schema_step("/tmp/wrong")
    assert wrong.returncode != 0
    assert (
        "mlrt-metastore: ERROR: cannot reach the metastore's database at jdbc:postgresql://postgres:5432/metastore"
    ) in wrong.stderr, wrong.stderr[-2000:]
    assert "password authentication failed" in wrong.stderr and "MLRT_METASTORE_DB_CREDENTIALS_DIR" in wrong.stderr
    scratch = f"mlrt_schema_{uuid.uuid4().hex[:8]}"
    psql("postgres", f"CREATE DATABASE {scratch}")
    try:
        psql(scratch, OTHER_VERSION)
        other = schema_step("/run/secrets/catalog", scratch)
        assert other.returncode != 0
        assert "holds schema 1.2.0, this metastore (Hive 2.3) needs 2.3.0" in other.stderr, other.stderr[-2000:]
    finally:
        psql("postgres", f"DROP DATABASE {scratch}")
