"""The objectstore image: rclone's S3 server over a volume, its key pair from files, its buckets made at start."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import PINS, key_pair_dir, objectstore, run

IMAGE = "objectstore"
CLIENT = f"mlrt/spark:{PINS['MLRT_VERSION']}"  # boto3 is in the spark layer


@pytest.fixture
def store(image, tmp_path):
    with objectstore(image, tmp_path) as running:
        yield running


def boto3_in(store_name: str, script: str, key: str, secret: str) -> subprocess.CompletedProcess:
    prelude = (
        "import boto3, botocore.config as c\n"
        f"s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:8333', aws_access_key_id={key!r}, "
        f"aws_secret_access_key={secret!r}, region_name='us-east-1', config=c.Config(retries={{'max_attempts': 1}}))\n"
    )
    return subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            f"container:{store_name}",
            "--entrypoint",
            "python",
            CLIENT,
            "-c",
            prelude + script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_s3_api_with_the_key_pair_from_files(store):
    name, keys, data = store
    secret = (keys / "secret_access_key").read_text()
    script = """
import hashlib, os
assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"]) == ["lake", "mlflow"]
s3.put_object(Bucket="lake", Key="a/b.txt", Body=b"hello")
assert s3.get_object(Bucket="lake", Key="a/b.txt")["Body"].read() == b"hello"
assert s3.head_object(Bucket="lake", Key="a/b.txt")["ETag"].strip('"') == hashlib.md5(b"hello").hexdigest()
part = os.urandom(5 << 20)
up = s3.create_multipart_upload(Bucket="lake", Key="big.bin")
etags = [s3.upload_part(Bucket="lake", Key="big.bin", UploadId=up["UploadId"], PartNumber=n, Body=part)["ETag"]
         for n in (1, 2)]
s3.complete_multipart_upload(Bucket="lake", Key="big.bin", UploadId=up["UploadId"],
    MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in zip((1, 2), etags)]})
assert s3.get_object(Bucket="lake", Key="big.bin")["Body"].read() == part + part
s3.copy_object(Bucket="mlflow", Key="c.txt", CopySource={"Bucket": "lake", "Key": "a/b.txt"})
s3.delete_object(Bucket="lake", Key="a/b.txt")
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake").get("Contents", [])]
assert keys == ["big.bin"], keys
print("ok")
"""
    done = boto3_in(name, script, "mlrt-test-key", secret)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    # Objects are plain files on the volume: nothing is lost with the container.
    assert (data / "mlflow" / "c.txt").read_bytes() == b"hello"
    assert (data / "lake" / "big.bin").stat().st_size == 10 << 20
    # The key pair is on no command line inside the container.
    cmdlines = subprocess.run(
        ["docker", "exec", name, "bash", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"],
        capture_output=True,
        text=True,
    ).stdout
    assert "rclone serve s3" in cmdlines and secret not in cmdlines


def test_a_wrong_key_is_refused(store):
    name, _, _ = store
    done = boto3_in(name, "s3.list_objects_v2(Bucket='lake')", "mlrt-test-key", "not-the-secret")
    assert done.returncode != 0 and ("SignatureDoesNotMatch" in done.stderr), done.stderr[-1500:]


def test_starts_beside_kubernetes_service_links(image, tmp_path):
    """A Service named <release>-objectstore makes Kubernetes inject MLRT_OBJECTSTORE_PORT=tcp://IP:PORT into
    pods (found on the e2e cluster with release mlrt): the store's own settings must not be shadowed by it."""
    clash = {"MLRT_OBJECTSTORE_PORT": "tcp://10.96.0.9:8333", "MLRT_OBJECTSTORE_SERVICE_HOST": "10.96.0.9"}
    with objectstore(image, tmp_path, env=clash) as (name, _, _):
        assert "rclone serve s3" in subprocess.run(["docker", "top", name], capture_output=True, text=True).stdout


def test_refuses_to_start_without_a_key_pair(image):
    result = run(image, check=False)
    assert result.returncode == 64 and "MLRT_S3_CREDENTIALS_DIR is not set" in result.stderr, result.stderr
    result = run(image, check=False, env={"MLRT_S3_CREDENTIALS_DIR": "/nonexistent"})
    assert result.returncode == 64 and "/nonexistent/access_key_id is missing" in result.stderr, result.stderr


def test_a_bad_bucket_name_is_named(image, tmp_path):
    keys = key_pair_dir(tmp_path / "keys", "k", "s")
    env = {"MLRT_S3_CREDENTIALS_DIR": "/keys", "MLRT_OBJECTSTORE_BUCKETS": "lake,Bad_Bucket"}
    done = run(image, check=False, env=env, volumes={keys: "/keys"})
    assert done.returncode == 64 and "'Bad_Bucket' is not an S3 bucket name" in done.stderr, done.stderr


def test_rclone_is_the_pinned_version(image):
    assert run(image, "rclone", "version").startswith(f"rclone {PINS['RCLONE_VERSION']}")
