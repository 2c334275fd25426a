"""Cluster libraries from a wheelhouse in the object store, as an air-gapped deployment has them (docs/libraries.md):
mlrt.libraries' cluster install in the driver container against the compose cluster's S3 server, with
MLRT_LIBRARIES_WHEELHOUSE=s3a://lake/<prefix>/ and an index that does not answer. The wheels (one needing the other)
are built here. The install is the entrypoint's (`python -m mlrt.libraries cluster`) without touching the container's
own cluster libraries; `make test`'s smoke tests check those on executors."""

from __future__ import annotations

import uuid

from tests.wheels import wheel

from .conftest import compose

SCRIPT = """
import glob, os, subprocess, sys
from pathlib import Path
import boto3
from botocore.config import Config
from mlrt import libraries

source, prefix, target = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=os.environ["MLRT_S3_ENDPOINT"], config=Config(s3={"addressing_style": "path"}))
for path in glob.glob(source + "/*.whl"):
    s3.upload_file(path, "lake", prefix + os.path.basename(path))
os.environ["MLRT_LIBRARIES_WHEELHOUSE"] = f"s3a://lake/{prefix}"
os.environ["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple"  # no index: only the wheelhouse can serve them
try:
    site = libraries.cluster("mlrt_house_app==1.0", Path(target), lambda line: print(line, flush=True))
    probe = "import mlrt_house_app, mlrt_house_dep; print('VALUES', mlrt_house_app.VALUE, mlrt_house_dep.VALUE)"
    print(subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True).stdout)
finally:
    for obj in s3.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", []):
        s3.delete_object(Bucket="lake", Key=obj["Key"])
"""


def test_cluster_libraries_install_from_a_wheelhouse_in_the_object_store(tmp_path):
    run = uuid.uuid4().hex[:8]
    wheel(tmp_path, "mlrt_house_dep", "1.0", code="VALUE = 'dep'\n")
    wheel(tmp_path, "mlrt_house_app", "1.0", requires=["mlrt_house_dep"], code="VALUE = 'app'\n")
    source, target = f"/tmp/house-src-{run}", f"/tmp/house-{run}"
    compose("exec", "-T", "jupyter", "mkdir", "-p", source)
    for path in tmp_path.glob("*.whl"):
        compose("cp", str(path), f"jupyter:{source}/{path.name}")
    try:
        out = compose("exec", "-T", "jupyter", "python", "-c", SCRIPT, source, f"tmp/house-{run}/", target).stdout
    finally:
        compose("exec", "-T", "jupyter", "rm", "-rf", source, target, check=False)
    assert "mlrt-libraries: installed mlrt-house-app==1.0, mlrt-house-dep==1.0" in out, out
    assert "VALUES app dep" in out, out
