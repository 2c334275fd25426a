"""The shared table catalog on the compose cluster, beyond the notebook (smoke_tests/test_catalog.py covers that):
a `make submit` job (the wrapper's own test too) and a Spark Connect client create tables at the same moment and
read each other's by name; the metastore or its database down fails a session's catalog call within seconds
(a notebook kernel adds which metastore and how to check it); back (the database as a new container on its kept
volume, what `make down && make up` does), the catalog has everything and the long-running Connect server works
again.
Wrong database credentials and a schema of another version are refused by the metastore with one clear line
each."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from scripts import dotenv
from tests.cluster.conftest import compose, master_state
from tests.conftest import ROOT

SCHEMA = "mlrt_cluster"
TABLE = f"{SCHEMA}.submitted"
VIEW = f"{SCHEMA}.submitted_small"
ROWS = 5000
# A catalog call with the metastore or its database down fails within this: measured 8-9 s with the metastore down,
# 8-30 s with the database down (the JDBC connect and login timeouts under the metastore's two tries; the longest
# with the machine under load). The bound tells that from the multi-minute hang of Hive's defaults (186 s measured).
FAST_S = 45

GO = f"{SCHEMA}.go"  # the Connect client's signal: both sessions create their tables now

SUBMITTED = f"""
import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
print("COUNT=%d" % spark.sparkContext.parallelize(range(int(sys.argv[1])), 4).count())
print("MASTER=" + spark.sparkContext.master)
spark.conf.set("spark.databricks.delta.snapshotPartitions", "4")
spark.range(3).write.format("delta").mode("overwrite").save("s3a://lake/tmp/submit-warm")  # Delta's first write
deadline = time.monotonic() + 300
while not spark.catalog.tableExists("{GO}") and time.monotonic() < deadline:
    time.sleep(0.2)
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


def test_make_submit_and_a_connect_client_create_tables_at_the_same_time_and_read_each_other_s_by_name(
    tmp_path, remote
):
    """`make submit` (scripts.submit compose): the application with its arguments on the compose cluster. It and a
    Spark Connect client (two sessions, two applications) create tables at the same moment (the client's signal
    table starts both), then each reads the other's table and view by name."""
    app = tmp_path / "catalog_app.py"
    app.write_text(SUBMITTED)
    remote.sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    remote.sql(f"DROP TABLE IF EXISTS {GO}")
    ours = f"{SCHEMA}.connect_{uuid.uuid4().hex[:8]}"
    submit = [sys.executable, "-m", "scripts.submit", "compose", str(app), "--conf", "spark.app.name=mlrt-submit"]
    job = subprocess.Popen([*submit, "--", "1234"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not any(a["name"] == "mlrt-submit" for a in master_state()["activeapps"]):
            assert time.monotonic() < deadline and job.poll() is None, "the submitted job did not start"
            time.sleep(1)
        remote.sql(f"CREATE TABLE {GO} (n INT) USING delta")
        # a definition only (no job: the cluster's cores are the submitted job's meanwhile), as it writes its own
        remote.sql(f"CREATE TABLE {ours} (n BIGINT, label STRING) USING delta")
        out, err = job.communicate(timeout=600)
    finally:
        job.kill()
    try:
        assert job.returncode == 0, err[-3000:]
        assert "COUNT=1234" in out and "MASTER=spark://spark-master:7077" in out and "CATALOG=hive" in out, out
        assert remote.table(TABLE).count() == ROWS
        assert remote.table(VIEW).count() == 100
        assert {t.name for t in remote.catalog.listTables(SCHEMA)} >= {
            "submitted",
            "submitted_small",
            ours.split(".")[1],
        }
        assert remote.table(ours).columns == ["n", "label"]
    finally:
        remote.sql(f"DROP TABLE IF EXISTS {ours}")
        remote.sql(f"DROP TABLE IF EXISTS {GO}")


def failing_call(remote, statement: str) -> tuple[float, str]:
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        remote.sql(statement).collect()
    return time.monotonic() - started, str(err.value)


def kernel_hint(message: str) -> str:
    """What the notebook kernels' extension (mlrt.catalog_hints, in the notebook image) adds under this error."""
    code = "import sys\nfrom mlrt.catalog_hints import hint\nprint(hint(sys.stdin.read()))"
    command = ["docker", "compose", "exec", "-T", "jupyter", "python", "-c", code]
    return subprocess.run(command, cwd=ROOT, input=message, capture_output=True, text=True, check=True).stdout


def answers_again(remote, within_s: float = 90) -> None:
    """The long-running Connect server's catalog call works again (its Hive client reconnects on its next call)."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            assert remote.table(TABLE).count() == ROWS and remote.table(VIEW).count() == 100
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def test_the_catalog_down_fails_in_seconds_naming_it_and_recreated_it_has_everything(remote):
    """The metastore down, then the database down under a metastore that has been serving (Hive's own would answer
    "no such schema"; ours stops serving until its database answers): the long-running Connect server's catalog call
    fails within seconds each time, and a notebook kernel would add which metastore and how to check it; each time
    the same session works again once the service is back, the database as a new container on the kept volume
    (what `make down && make up` does to it).

    The metastore goes down first: on compose a stopped container's address is gone, and a client that resolved
    the name in the last ~30 s (the JVM's address cache) waits for the kernel's "no route to host" (~70 s) instead
    of failing on the name (docs/catalog.md)."""
    assert remote.table(TABLE).count() == ROWS  # the Connect server's session knows the catalog before
    try:
        compose("stop", "metastore", timeout=120)
        took, message = failing_call(remote, f"SHOW TABLES IN {SCHEMA}")
        assert took < FAST_S, f"the catalog call took {took:.0f} s to fail with the metastore down"
        told = kernel_hint(message)
        assert "mlrt: the table catalog (thrift://metastore:9083) did not answer" in told, (message[:2000], told)
        assert "docker compose logs metastore" in told
        compose("start", "metastore", timeout=120)
        answers_again(remote)
        compose("stop", "postgres", timeout=120)
        time.sleep(5)  # the metastore's probes (every 2 s, 2 misses) stop its Thrift server
        took, message = failing_call(remote, f"SHOW TABLES IN {SCHEMA}")
        assert took < FAST_S and "SCHEMA_NOT_FOUND" not in message, (took, message[:2000])
        assert "mlrt: the table catalog (thrift://metastore:9083) did not answer" in kernel_hint(message)
        assert "stopped answering" in compose("logs", "metastore", timeout=60).stdout
        # the database back as `make down && make up` brings it: a new container, the volume kept; the metastore
        # container that waited serves again, its schema checked, and the same session has every table
        compose("up", "-d", "--wait", "--force-recreate", "postgres", timeout=300)
        answers_again(remote)
        # one JVM: the Thrift server (each schema check's JDBC JVM ended with its child process)
        jvms = compose("exec", "-T", "metastore", "pgrep", "-c", "java", check=False, timeout=60).stdout.strip()
        assert jvms == "1", f"{jvms} JVMs in the metastore's container after an outage"
    finally:
        compose("up", "-d", "--wait", "postgres", "metastore", timeout=300)


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
