"""spark-submit to the cluster from the driver container, then the history server lists the finished app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request

HISTORY_URL = os.environ.get("MLRT_HISTORY_URL", "http://spark-history:18080")
APP = textwrap.dedent(
    """
    import socket
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("mlrt-smoke-submit").getOrCreate()
    hosts = spark.sparkContext.parallelize(range(8), 8).map(lambda _: socket.gethostname()).distinct().collect()
    print("APP_ID=" + spark.sparkContext.applicationId)
    print("MASTER=" + spark.sparkContext.master)
    print("EXECUTOR_HOSTS=" + ",".join(sorted(hosts)))
    # A submitted job reads and writes the lake like a notebook does (s3a:// where there is an object store).
    lake = spark.conf.get("spark.sql.warehouse.dir").rstrip("/").rsplit("/", 1)[0]
    table = lake + "/submitted/" + spark.sparkContext.applicationId
    spark.range(1000).write.format("delta").save(table)
    print("LAKE_ROWS=" + str(spark.read.format("delta").load(table).count()))
    spark.stop()
    """
)


def history_app(app_id: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{HISTORY_URL}/api/v1/applications/{app_id}", timeout=10) as response:
            return json.load(response)
    except OSError:
        return None


def test_spark_submit_then_history_lists_the_app(tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    done = subprocess.run(["spark-submit", str(app)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"spark-submit failed:\n{done.stderr[-3000:]}"
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    app_id, master = values["APP_ID"], values["MASTER"]
    assert values["LAKE_ROWS"] == "1000", f"the submitted job's Delta table in the lake: {values}"
    # The cluster manager names the application: the standalone master app-<time>-<n>, Kubernetes spark-<hex>.
    expected = {"spark://": "app-", "k8s://": "spark-"}
    prefix = next((p for scheme, p in expected.items() if master.startswith(scheme)), None)
    assert prefix, f"spark-submit ran with master {master}, not the cluster"
    assert app_id.startswith(prefix), f"{app_id} is not an application id of {master}"

    deadline = time.monotonic() + 120
    info = None
    while time.monotonic() < deadline:
        info = history_app(app_id)
        if info and all(attempt.get("completed") for attempt in info.get("attempts", [])) and info.get("attempts"):
            break
        time.sleep(2)
    else:
        sys.stderr.write(f"last answer of the history server: {info}\n")
    assert info is not None, f"the history server at {HISTORY_URL} does not list {app_id}"
    assert info["name"] == "mlrt-smoke-submit"
    assert info["attempts"] and info["attempts"][0]["completed"], f"{app_id} not completed in history: {info}"
