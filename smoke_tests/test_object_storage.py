"""Object storage (s3a://) as a Databricks user meets it: executors on several hosts write and read Parquet and
Delta tables in the bucket, a large write goes through multipart upload, MLflow keeps its artifacts there, and
a wrong key, a missing bucket or a dead endpoint fail in seconds with a message naming what to fix.

The deployment names the store (MLRT_S3_ENDPOINT: the bundled store or an external endpoint; unset: AWS S3)
and the lake (MLRT_WAREHOUSE_DIR, e.g. s3a://lake/warehouse); without an s3a:// warehouse these tests are
skipped, saying so."""

from __future__ import annotations

import hashlib
import os
import time
import uuid

import pytest

from conftest import ran_on_executors

WAREHOUSE = os.environ.get("MLRT_WAREHOUSE_DIR", "")
ENDPOINT = os.environ.get("MLRT_S3_ENDPOINT", "")
MLFLOW_ARTIFACTS = os.environ.get("MLRT_MLFLOW_ARTIFACTS_URI", "s3://mlflow/artifacts")
BIG_MB = 128  # above S3A's multipart block (fs.s3a.multipart.size, 64 MB): at least two parts

pytestmark = [
    pytest.mark.skipif(
        not WAREHOUSE.startswith("s3a://"),
        reason="this deployment has no object store (MLRT_WAREHOUSE_DIR is not s3a://); enable objectStore",
    ),
    pytest.mark.usefixtures("small_shuffles"),
]


def bucket_of(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[0]


@pytest.fixture
def s3_dir():
    """A fresh directory in the lake's bucket."""
    return f"s3a://{bucket_of(WAREHOUSE)}/smoke/{uuid.uuid4().hex[:12]}"


def hadoop_fs(spark, uri: str, **overrides: str):
    """A Hadoop FileSystem for uri; with overrides, a new instance on a copy of the session's configuration."""
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    conf = spark._jsc.hadoopConfiguration()
    if not overrides:
        return path.getFileSystem(conf), path
    conf = jvm.org.apache.hadoop.conf.Configuration(conf)
    for key, value in overrides.items():
        conf.set(key, value)
    return jvm.org.apache.hadoop.fs.FileSystem.newInstance(path.toUri(), conf), path


def boto3_client():
    import boto3

    return boto3.client("s3", endpoint_url=ENDPOINT or None)


def test_warehouse_and_credentials_come_from_the_deployment(spark):
    assert spark.conf.get("spark.sql.warehouse.dir") == WAREHOUSE
    if ENDPOINT:
        assert spark.sparkContext._jsc.hadoopConfiguration().get("fs.s3a.endpoint") == ENDPOINT
    import boto3

    credentials = boto3.Session().get_credentials()
    secret = credentials.secret_key if credentials else None
    if not secret or credentials.method != "shared-credentials-file":
        pytest.skip("no static key pair here (web identity or an instance role)")
    # Never a Spark property, never on a command line `ps` shows, never on the Spark UI's Environment page.
    sc = spark.sparkContext
    assert not any(secret in value for _, value in sc.getConf().getAll())
    import urllib.request

    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/environment"
    with urllib.request.urlopen(url, timeout=10) as response:
        environment_page = response.read().decode()
    assert "fs.s3a.endpoint" in environment_page  # the page lists Hadoop properties, the key pair is not there
    assert secret not in environment_page
    for cmdline in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{cmdline}/cmdline", "rb") as handle:
                assert secret.encode() not in handle.read(), f"the secret key is on process {cmdline}'s command line"
        except OSError:
            continue


def test_parquet_and_delta_round_trip_across_executors(spark, s3_dir):
    from pyspark.sql import functions as F

    rows = spark.range(0, 100_000, numPartitions=8).select(
        "id", (F.col("id") * 7 % 1000).alias("k"), F.sha2(F.col("id").cast("string"), 256).alias("h")
    )
    expected = rows.agg(F.count("*"), F.sum("k"), F.sum(F.crc32("h"))).first()
    with ran_on_executors(spark, "s3a Parquet and Delta writes") as evidence:
        rows.write.parquet(f"{s3_dir}/parquet")
        rows.write.format("delta").save(f"{s3_dir}/delta")
    for fmt in ("parquet", "delta"):
        back = spark.read.format(fmt).load(f"{s3_dir}/{fmt}")
        assert back.agg(F.count("*"), F.sum("k"), F.sum(F.crc32("h"))).first() == expected, fmt
        assert back.exceptAll(rows).count() == 0 and rows.exceptAll(back).count() == 0, fmt
    fs, path = hadoop_fs(spark, f"{s3_dir}/parquet")
    parts = [s.getPath().getName() for s in fs.listStatus(path) if s.getPath().getName().endswith(".parquet")]
    assert len(parts) == 8, parts
    # The objects are in the bucket for any S3 client, not only through Spark.
    listed = boto3_client().list_objects_v2(Bucket=bucket_of(s3_dir), Prefix=s3_dir.split("/", 3)[3] + "/delta/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith("_delta_log/00000000000000000000.json") for k in keys), keys
    print(f"s3a: Parquet and Delta written by executors on {sorted(evidence.hosts)}")


def test_a_large_write_goes_through_multipart_upload(spark, s3_dir):
    fs, path = hadoop_fs(spark, f"{s3_dir}/big.bin")
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    started = time.monotonic()
    out = fs.create(path, True)
    for i in range(BIG_MB):
        chunk = block[i:] + block[:i]  # every MiB differs
        digest.update(chunk)
        out.write(bytearray(chunk))
    out.close()
    written = time.monotonic() - started
    stats = out.getIOStatistics().counters()
    assert stats.get("multipart_upload_part_put") >= 2, dict(stats)
    assert fs.getFileStatus(path).getLen() == BIG_MB << 20

    # Read back by another client (boto3, not S3A): the bytes are what was written.
    started = time.monotonic()
    back = hashlib.sha256()
    body = boto3_client().get_object(Bucket=bucket_of(s3_dir), Key=s3_dir.split("/", 3)[3] + "/big.bin")["Body"]
    for chunk in body.iter_chunks(8 << 20):
        back.update(chunk)
    read = time.monotonic() - started
    assert back.hexdigest() == digest.hexdigest()
    print(f"s3a: {BIG_MB} MB in {stats.get('multipart_upload_part_put')} parts: write {written:.1f}s, read {read:.1f}s")


def test_mlflow_artifacts_land_in_the_bucket(spark):
    import mlflow
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    experiment = mlflow.set_experiment(f"mlrt-s3-{uuid.uuid4().hex[:8]}")
    x = pd.DataFrame(np.random.RandomState(1).rand(100, 2), columns=["a", "b"])
    model = LinearRegression().fit(x, x["a"] * 3 - x["b"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", input_example=x[:2])
    bucket, _, prefix = MLFLOW_ARTIFACTS.split("://", 1)[1].partition("/")
    listed = boto3_client().list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{experiment.experiment_id}/".lstrip("/"))
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert any(k.endswith("/MLmodel") for k in keys), f"no MLmodel under {MLFLOW_ARTIFACTS}: {keys}"
    predict = mlflow.pyfunc.spark_udf(spark, info.model_uri, result_type="double")
    with ran_on_executors(spark, "spark_udf of a model from the bucket"):
        scored = spark.createDataFrame(x).repartition(4).select(predict("a", "b").alias("p")).toPandas()["p"]
    assert np.allclose(np.sort(scored.to_numpy()), np.sort(model.predict(x)), atol=1e-6)


def _fails_fast(spark, uri: str, expect: tuple[str, ...], **overrides: str) -> str:
    """The first use of uri (a new FileSystem with these settings: S3A probes the bucket as it starts) fails
    within seconds, its message holding every text in expect."""
    started = time.monotonic()
    with pytest.raises(Exception) as caught:  # noqa: PT011 (a Py4J error wrapping S3A's)
        fs, path = hadoop_fs(spark, uri, **{"fs.s3a.bucket.probe": "2", **overrides})
        try:
            fs.listStatus(path)
        finally:
            fs.close()
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert elapsed < 30, f"{uri}: the error took {elapsed:.0f}s"
    for text in expect:
        assert text in message, f"{uri}: {text!r} not in {message[:800]}"
    return f"{elapsed:.1f}s"


def test_bad_input_fails_fast_naming_what_to_fix(spark):
    bucket = bucket_of(WAREHOUSE)
    wrong_key = _fails_fast(
        spark,
        f"s3a://{bucket}/",
        ("AccessDeniedException", bucket, "403"),
        **{"fs.s3a.access.key": "mlrt-wrong-key", "fs.s3a.secret.key": "mlrt-wrong-secret"},
    )
    missing = _fails_fast(spark, "s3a://mlrt-no-such-bucket/", ("Bucket does not exist", "mlrt-no-such-bucket"))
    dead = _fails_fast(
        spark,
        f"s3a://{bucket}/",
        ("Connect to", "failed"),
        **{"fs.s3a.endpoint": "http://127.0.0.1:9", "fs.s3a.endpoint.region": "us-east-1"},
    )
    print(f"s3a errors: wrong key {wrong_key}, missing bucket {missing}, dead endpoint {dead}")
