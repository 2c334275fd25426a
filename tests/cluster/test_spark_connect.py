"""Spark Connect from the host, as an IDE or a laptop uses it: pyspark-client (the dev venv) against the compose
cluster's spark-connect service on 127.0.0.1:15002, with the token `make up` prints. Work runs on the cluster's
executors (the workers), never in this process; clients without the token are refused.

No `from __future__ import annotations` here: pandas UDFs read their type hints at definition time."""

import uuid

import pytest

from scripts import dotenv

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


def test_libraries_shipped_by_the_client_reach_the_executors(remote, tmp_path):
    """Spark Connect's answer to %pip (docs/libraries.md): the client ships Python files with
    spark.addArtifacts. A zip of pure-Python modules with pyfile=True (Spark puts it on the workers' path); an
    archive of installed packages, compiled ones included, named mlrt-libs-<name>-<n>.zip with archive=True (each
    executor unpacks it and mlrt's PySpark daemon puts it on the path, as for a notebook's %pip): here mmh3's
    manylinux wheel, downloaded for the cluster's Python by this host's pip."""
    import subprocess
    import sys
    import zipfile

    from pyspark.sql import functions as F

    name = f"mlrt_connect_{uuid.uuid4().hex[:8]}"
    pure = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(pure, "w") as zf:
        zf.writestr(f"{name}.py", "def greet(who):\n    return 'hello ' + who\n")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform",
         "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp", "-d", str(wheels),
         "mmh3==5.1.0"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    archive = tmp_path / f"mlrt-libs-connect{uuid.uuid4().hex[:6]}-1.zip"
    with zipfile.ZipFile(next(wheels.glob("mmh3-*.whl"))) as whl, zipfile.ZipFile(archive, "w") as zf:
        for item in whl.infolist():
            zf.writestr(item, whl.read(item))
    remote.addArtifacts(str(pure), pyfile=True)
    remote.addArtifacts(str(archive), archive=True)

    @F.udf("string")
    def use(word):
        import importlib
        import socket

        greet = importlib.import_module(name).greet
        import mmh3

        return f"{greet(word)}|{mmh3.hash(word)}|{socket.gethostname()}"

    rows = remote.range(0, 16, numPartitions=8).select(use(F.lit("x")).alias("v")).toPandas()["v"].str.split("|")
    assert {r[0] for r in rows} == {"hello x"}
    assert {r[1] for r in rows} == {"1050319643"}, "mmh3.hash('x') (MurmurHash3 x86_32, seed 0)"
    assert len({r[2] for r in rows}) >= 2, f"ran on {set(r[2] for r in rows)}"


def test_torch_distributor_from_a_client_without_torch_meets_spark_s_barrier_rule(remote, monkeypatch):
    """TorchDistributor supports Spark Connect (the client, here without torch as a laptop may be, sends the
    function; the ranks are a barrier job on the executors). The bundled server runs with dynamic allocation (it
    holds no cores while idle, so notebooks keep the cluster), and Spark refuses barrier jobs under dynamic
    allocation: the client gets that reason at once (SPARK-24942), not a hang. A Connect server started with
    static executors runs it; docs/ml-runtime.md says so.

    TorchDistributor first starts a log server on the server's driver host name, which a Connect client cannot
    resolve, and warns; pyspark 4.1's warning call has a stray argument, so logging reports a "Logging error",
    which pytest's log capture would raise: the logger is kept out of pytest's handlers."""
    import importlib.util
    import logging
    import time

    from pyspark.errors.exceptions.connect import SparkException
    from pyspark.ml.torch.distributor import TorchDistributor

    assert importlib.util.find_spec("torch") is None, "the host client is meant to lack the ML stack"
    monkeypatch.setattr(logging.getLogger("TorchDistributor"), "propagate", False)

    def train():
        import torch.distributed as dist

        dist.init_process_group("gloo")
        dist.destroy_process_group()

    started = time.monotonic()
    with pytest.raises(SparkException, match="SPARK-24942.*dynamic resource allocation"):
        TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(train)
    assert time.monotonic() - started < 60


# The launchers built on the classic driver, tried on a Connect session where every library is installed: in the
# spark-connect container (the ml image), whose localhost is where Spark's client may send the token without TLS.
# The images are Connect clients too (pyspark's `connect` extra is in the spark layer's lock).
UNDER_CONNECT = r"""
import json, os
from pyspark.sql import SparkSession
token = open("/run/secrets/spark_connect_token").read().strip()
# As on a client machine: every SparkSession.builder.getOrCreate() (the launchers' own too) is a Connect session.
os.environ["SPARK_REMOTE"] = f"sc://localhost:15002/;token={token}"
spark = SparkSession.builder.getOrCreate()
out = {"is_remote": type(spark).__module__}

def attempt(name, fn):
    try:
        out[name] = {"ok": True, "result": repr(fn())[:300]}
    except Exception as e:
        out[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:400]}

def spark_trials():
    from hyperopt import SparkTrials, fmin, hp, tpe
    return fmin(lambda x: x * x, hp.uniform("x", -1, 1), algo=tpe.suggest, max_evals=2,
                trials=SparkTrials(parallelism=2, spark_session=spark))

def xgboost_spark():
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier
    df = spark.range(100).withColumn("a", F.rand(1)).withColumn("label", (F.col("a") > 0.5).cast("int"))
    return SparkXGBClassifier(features_col=["a"], label_col="label", num_workers=2).fit(df)

def mirrored_strategy_runner():
    from spark_tensorflow_distributor import MirroredStrategyRunner
    return MirroredStrategyRunner(num_slots=2, use_gpu=False, local_mode=False).run(lambda: 1)

def horovod_spark():
    import horovod.spark
    return horovod.spark.run(lambda: 1, num_proc=2)

attempt("hyperopt.SparkTrials", spark_trials)
attempt("xgboost.spark", xgboost_spark)
attempt("MirroredStrategyRunner", mirrored_strategy_runner)
attempt("horovod.spark", horovod_spark)
spark.stop()
print("MLRT-JSON " + json.dumps(out))
"""


def test_launchers_built_on_the_classic_driver_refuse_a_connect_session():
    """SparkTrials, xgboost.spark, MirroredStrategyRunner and horovod.spark need the classic SparkContext
    (docs/ml-runtime.md): on a Connect session each fails at once instead of running."""
    import json

    from tests.cluster.conftest import compose

    proc = compose("exec", "-T", "spark-connect", "python", "-c", UNDER_CONNECT, check=False, timeout=600)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("MLRT-JSON ")), None)
    assert line, f"no result (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    out = json.loads(line[len("MLRT-JSON ") :])
    assert out["is_remote"].startswith("pyspark.sql.connect"), out
    for classic in ("hyperopt.SparkTrials", "xgboost.spark", "MirroredStrategyRunner", "horovod.spark"):
        assert not out[classic]["ok"], f"{classic} ran under Spark Connect: update docs/ml-runtime.md ({out[classic]})"
    print(json.dumps(out, indent=1))


# A client of its own in a child process: a client that hung instead of being refused would otherwise hang the suite
# (faulthandler prints where it hung, then ends it).
REFUSED_CLIENT = r"""
import faulthandler, sys
faulthandler.dump_traceback_later(120, exit=True)
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
try:
    session = SparkSession.builder.remote(sys.argv[1]).create()
    try:
        session.range(3).collect()
    finally:
        session.stop()
except PySparkException as refused:
    print("REFUSED " + str(refused)[:2000])
else:
    print("ACCEPTED")
"""


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789"], ids=["no-token", "wrong-token"])
def test_a_client_without_the_token_is_refused(token):
    import subprocess
    import sys

    url = f"sc://localhost:{PORT}" + (f"/;token={token}" if token else "")
    done = subprocess.run([sys.executable, "-c", REFUSED_CLIENT, url], capture_output=True, text=True, timeout=300)
    message = done.stdout
    assert done.returncode == 0 and message.startswith("REFUSED "), (done.returncode, message, done.stderr[-4000:])
    assert "UNAUTHENTICATED" in message or "authentication" in message.lower(), message[:2000]


def test_the_server_gives_the_cluster_s_cores_back_after_its_clients_work(remote):
    """Dynamic allocation keeps an executor while it holds shuffle files or cached blocks the driver still
    references, which for a long-running server can be forever (measured: Delta's cached table state kept the
    server's 4 cores after the Delta test and a notebook's application waited with none). With both timeouts at
    60 s on compose, the server holds no cores soon after its clients stop working."""
    import time

    from pyspark.sql import functions as F

    from tests.cluster.conftest import master_state

    assert len(remote.range(0, 10_000, numPartitions=4).groupBy(F.col("id") % 3).count().collect()) == 3
    deadline = time.monotonic() + 180
    while True:
        cores = [a["cores"] for a in master_state()["activeapps"] if a["name"] == "Spark Connect server"]
        if cores == [0] or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert cores == [0], f"the Connect server still holds {cores} cores of the cluster"
