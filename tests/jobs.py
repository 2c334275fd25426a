"""Notebooks the jobs tests run on compose (tests/cluster/test_jobs.py) and Kubernetes (tests/e2e/test_helm.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable


def notebook(*sources: str) -> str:
    empty = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
    cells = [{**empty, "source": source} for source in sources]
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return json.dumps({"cells": cells, "metadata": {"kernelspec": kernel}, "nbformat": 4, "nbformat_minor": 5})


# The schedule's notebook is light (no Spark session: a run takes seconds, so the runs fall on consecutive minutes);
# the example notebook, with its Spark application, runs beside it through make job.
TICK = notebook(
    "dbutils.widgets.text('rows', '1')\ntoken = dbutils.secrets.get('demo', 'token')\nprint('the token is', token)",
    "dbutils.notebook.exit(dbutils.widgets.get('rows'))",
)
HANG = notebook(
    "from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\nspark.range(4).count()",
    "import time\ntime.sleep(900)",
)


def run_together(*calls: Callable[[], None]) -> None:
    """Each call in a thread of its own, all at once (as jobs run beside each other); returns when all have ended."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# An app job on Kubernetes (cluster mode: its driver a pod of its own): a job on executor pods, a parameter read.
APP = """
import socket
from mlrt import dbutils
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
dbutils.widgets.text("rows", "1")
rows = int(dbutils.widgets.get("rows"))
hosts = spark.sparkContext.parallelize(range(8), 8).map(lambda _: __import__("socket").gethostname()).distinct()
print("APP", spark.sparkContext.appName, rows, "driver", socket.gethostname(), "executors", sorted(hosts.collect()))
spark.stop()
"""
