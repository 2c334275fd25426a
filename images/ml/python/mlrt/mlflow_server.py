"""Start the MLflow tracking server with its artifacts in object storage, after moving older artifacts there.

  python -m mlrt.mlflow_server [mlflow server arguments ...]

Before the object store, the server kept artifacts on its volume (MLRT_MLFLOW_LOCAL_ARTIFACTS, e.g.
/opt/mlrt/mlflow/artifacts). Runs record artifact URIs relative to the server (mlflow-artifacts:/...), so once
--artifacts-destination is s3://bucket/prefix every file from that directory is copied to the same relative key
under it (existing objects of the same size are kept), then the server starts; older runs keep working. The
local files stay on the volume; a marker file records the copy, so later starts skip it.

S3 comes from boto3's defaults: MLFLOW_S3_ENDPOINT_URL for an S3-compatible endpoint, credentials from
~/.aws/credentials (the image entrypoint writes it from MLRT_S3_CREDENTIALS_DIR), web identity or an instance
role.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

MARKER = ".mlrt-copied-to"


def destination(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--artifacts-destination="):
            return arg.split("=", 1)[1]
        if arg == "--artifacts-destination" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def copy_local_artifacts(local: Path, dest: str, client=None) -> int:
    """Copy the files under `local` to `dest` (s3://bucket/prefix); the number copied. Idempotent."""
    parsed = urlparse(dest)
    marker = local / MARKER
    if parsed.scheme != "s3" or not local.is_dir():
        return 0
    if marker.is_file() and marker.read_text().strip() == dest:
        return 0
    import boto3
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = client or boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL") or None)
    bucket, prefix = parsed.netloc, parsed.path.strip("/")
    copied = 0
    try:
        s3.head_bucket(Bucket=bucket)
        for path in sorted(p for p in local.rglob("*") if p.is_file() and p.name != MARKER):
            key = "/".join(filter(None, [prefix, path.relative_to(local).as_posix()]))
            try:
                if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == path.stat().st_size:
                    continue
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
            s3.upload_file(str(path), bucket, key)
            copied += 1
    except (ClientError, BotoCoreError, S3UploadFailedError) as err:
        raise SystemExit(
            f"mlflow-server: ERROR: copying the artifacts in {local} to {dest} failed: {err}. Check that bucket "
            f"{bucket} exists, the credentials (MLRT_S3_CREDENTIALS_DIR) and the endpoint "
            f"(MLFLOW_S3_ENDPOINT_URL={os.environ.get('MLFLOW_S3_ENDPOINT_URL', '')})"
        ) from None
    marker.write_text(dest + "\n")
    return copied


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    dest = destination(args)
    local = os.environ.get("MLRT_MLFLOW_LOCAL_ARTIFACTS")
    if dest and local:
        copied = copy_local_artifacts(Path(local), dest)
        if copied:
            print(f"mlflow-server: copied {copied} artifact files from {local} to {dest}", file=sys.stderr)
    os.execvp("mlflow", ["mlflow", "server", *args])


if __name__ == "__main__":
    main()
