"""Spark traffic between the compose cluster's members is encrypted (spark.network.crypto), proven on the wire.

The host captures the traffic between the containers while a job shuffles rows that carry a marker from executor to
executor and returns some to the driver, with Spark's compression off (so unencrypted blocks would show the
marker). A plain HTTP request with a second marker crosses the same network during the capture: the capture must
see that one (it works) and never the first (Spark's bytes were encrypted).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid

import pytest

from tests.cluster.conftest import compose, refused_driver

SHUFFLE_JOB = """
import sys
import requests
from pyspark.sql import SparkSession, functions as F

marker, probe = sys.argv[1:3]
spark = (SparkSession.builder.appName("mlrt-encryption-check")
         # uncompressed blocks: without encryption the marker would cross the network as it is
         .config("spark.shuffle.compress", "false").config("spark.rdd.compress", "false")
         .config("spark.broadcast.compress", "false").config("spark.sql.adaptive.enabled", "false")
         .getOrCreate())
rows = spark.range(0, 200000, numPartitions=8).select(F.concat(F.lit(marker), F.col("id").cast("string")).alias("s"))
shuffled = rows.repartition(8, "s").cache()
print("ROWS", shuffled.count(), flush=True)
print("BACK", sum(1 for r in shuffled.limit(5000).collect() if r.s.startswith(marker)), flush=True)
hosts = {e.host() for e in spark.sparkContext._jsc.sc().statusTracker().getExecutorInfos()} - {"jupyter"}
print("EXECUTOR_HOSTS", len(hosts), flush=True)
# the capture's control: plain HTTP over the same bridge
requests.get("http://mlflow:5000/health", params={"probe": probe}, timeout=10)
spark.stop()
"""

PLAINTEXT_DRIVER = """
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("mlrt-plaintext-driver")
         .config("spark.network.crypto.enabled", "false").getOrCreate())
print("JOB-RAN", spark.sparkContext.parallelize([1, 2]).count(), flush=True)
"""


class Capture:
    """Every frame on every interface of the host (AF_PACKET, unbound), kept in memory until stopped. Frames
    between two containers pass their veth interfaces (the bridge device itself sees only what is addressed to
    the host)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 256 * 1024 * 1024)  # SO_RCVBUFFORCE (root)
        self.sock.settimeout(0.5)
        self.frames: list[bytes] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopped.is_set():
            try:
                self.frames.append(self.sock.recv(262144))
            except TimeoutError:
                continue

    def stop(self) -> bytes:
        self.stopped.set()
        self.thread.join(10)
        self.sock.close()
        return b"\n".join(self.frames)


@pytest.mark.skipif(os.geteuid() != 0, reason="capturing the containers' traffic needs root (CAP_NET_RAW)")
def test_shuffle_and_results_cross_the_network_encrypted():
    marker, probe = f"mlrtdata{uuid.uuid4().hex[:12]}", f"mlrtprobe{uuid.uuid4().hex[:12]}"
    capture = Capture()
    try:
        job = compose("exec", "-T", "jupyter", "python", "-c", SHUFFLE_JOB, marker, probe, check=False, timeout=400)
    finally:
        seen = capture.stop()
    assert job.returncode == 0, job.stderr[-3000:]
    assert "ROWS 200000" in job.stdout and "BACK 5000" in job.stdout, job.stdout
    assert "EXECUTOR_HOSTS 2" in job.stdout, f"the job did not run on both workers: {job.stdout}"
    print(f"captured {len(capture.frames)} frames, {len(seen) / 1e6:.1f} MB")
    assert probe.encode() in seen, "the capture missed the plain HTTP probe: it proves nothing"
    assert len(seen) > 4_000_000, f"only {len(seen)} bytes captured; 200,000 rows should have crossed the network"
    assert marker.encode() not in seen, "a shuffled row crossed the network in clear"


def test_a_driver_that_does_not_encrypt_is_refused():
    """No member accepts an unencrypted peer, even one with the right secret (no SASL fallback)."""
    out, err = refused_driver(PLAINTEXT_DRIVER, "Failed to connect to master")
    assert "JOB-RAN" not in out, "a driver without encryption ran a job on the cluster"
    assert "Failed to connect to master" in err or "All masters are unresponsive" in err, err[-3000:]


LOCAL_DISK_JOB = """
import os, socket, sys
from pyspark.sql import SparkSession, functions as F

marker, io = sys.argv[1:3]
spark = (SparkSession.builder.appName(f"mlrt-io-encryption-{io}")
         .config("spark.io.encryption.enabled", io)
         # the shuffle below is unreferenced once its write ends: a driver GC would let the ContextCleaner delete
         # its files before the scan reads them (seen once in CI: SCANNED 0)
         .config("spark.cleaner.referenceTracking", "false")
         .config("spark.shuffle.compress", "false").config("spark.shuffle.spill.compress", "false")
         .config("spark.sql.adaptive.enabled", "false").getOrCreate())
rows = spark.range(0, 50000, numPartitions=4).select(F.concat(F.lit(marker), F.col("id").cast("string")).alias("s"))
rows.repartition(4, "s").write.format("noop").mode("overwrite").save()

def scan(_):
    import time
    time.sleep(0.5)  # tasks long enough that both executors get some
    scanned = found = 0
    for top in os.environ.get("SPARK_EXECUTOR_DIRS", "").split(os.pathsep):
        for root, _, files in os.walk(top):
            for name in files:
                if name.startswith("shuffle_") and name.endswith(".data"):
                    scanned += 1
                    found += marker.encode() in open(os.path.join(root, name), "rb").read()
    yield socket.gethostname(), scanned, found

seen = {h: (s, f) for h, s, f in spark.sparkContext.parallelize(range(16), 16).mapPartitions(scan).collect()}
print("SCANNED", sum(s for s, _ in seen.values()), "FOUND", sum(f for _, f in seen.values()), "HOSTS", len(seen))
spark.stop()
"""


def test_local_disk_encryption_is_an_option_that_leaves_no_clear_shuffle_file():
    """spark.io.encryption.enabled in a session's config: its shuffle files on the executors' disks hold no
    marker; the control (off, Spark's default) finds the marker in them, so the scan can see it."""
    found = {}
    for io in ("false", "true"):
        marker = f"mlrtdisk{uuid.uuid4().hex[:12]}"
        job = compose("exec", "-T", "jupyter", "python", "-c", LOCAL_DISK_JOB, marker, io, check=False, timeout=300)
        line = next((x for x in job.stdout.splitlines() if x.startswith("SCANNED")), None)
        assert line, f"io encryption {io}: {job.stdout[-2000:]}\n{job.stderr[-3000:]}"
        _, scanned, _, hits, _, hosts = line.split()
        assert int(scanned) >= 4 and hosts == "2", f"io encryption {io}: {line} (4 map outputs on 2 executors)"
        found[io] = int(hits)
    assert found["false"] > 0, "the control found no marker in clear shuffle files: the scan proves nothing"
    assert found["true"] == 0, f"{found['true']} shuffle files hold the marker in clear with io encryption on"
