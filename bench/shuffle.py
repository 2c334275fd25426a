"""A shuffle-heavy Spark job on a local cluster of two executor JVMs (real sockets between them), timed.

  python bench/shuffle.py [--rows N] [--conf key=value ...]

Runs in the ml image (`docker run ... mlrt/ml python /bench/shuffle.py`): executors are separate JVMs talking over
loopback TCP, so RPC and block-transfer encryption (spark.network.crypto.enabled) and local disk encryption
(spark.io.encryption.enabled) cost what they cost between cluster members, without a cluster that would refuse an
unencrypted peer. Prints one line: the shuffle's wall seconds and bytes shuffled.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
import urllib.request

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--conf", action="append", default=[], help="a Spark property, key=value")
    args = parser.parse_args()
    builder = (
        SparkSession.builder.master("local-cluster[2,1,1024]")
        .appName("mlrt-bench-shuffle")
        .config("spark.authenticate", "true")
        .config("spark.authenticate.secret", secrets.token_hex(16))
        .config("spark.cores.max", "2")  # what local-cluster[2,1,...] has: the session does not wait for more
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.eventLog.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for item in args.conf:
        key, _, value = item.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    rows = spark.range(0, args.rows, numPartitions=8).select(
        F.col("id"), F.sha2(F.col("id").cast("string"), 256).alias("payload")
    )
    rows.groupBy((F.col("id") % 8).alias("k")).count().collect()  # executors up, code warmed
    started = time.perf_counter()
    count = rows.repartition(8, "payload").groupBy("payload").count().count()
    seconds = time.perf_counter() - started
    sc = spark.sparkContext
    with urllib.request.urlopen(f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages", timeout=30) as r:
        shuffled = sum(stage.get("shuffleWriteBytes", 0) for stage in json.load(r))
    print(f"shuffle {seconds:.2f} s, {shuffled / 1e6:.0f} MB shuffled, {count} rows", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
