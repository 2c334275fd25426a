"""Start the MLflow tracking server with its artifacts in object storage, after moving older artifacts there.

  python -m mlrt.mlflow_server [mlflow server arguments ...]

Before the object store, the server kept artifacts on its volume (MLRT_MLFLOW_LOCAL_ARTIFACTS, e.g.
/opt/mlrt/mlflow/artifacts). Runs record artifact URIs relative to the server (mlflow-artifacts:/...), so once
--artifacts-destination is s3://bucket/prefix every file from that directory is copied to the same relative key
under it (existing objects of the same size are kept), then the server starts; older runs keep working. The
local files stay on the volume; a marker file records the copy, so later starts skip it.

Authentication: with MLRT_MLFLOW_CREDENTIALS_DIR (files username and password) the server runs MLflow's basic-auth
app: that account is its admin (created on first start; its password set again from the file on every start, so
the file stays the one source), every other request without valid credentials gets 401 (/health stays open for
probes). Users and permissions live in MLRT_MLFLOW_AUTH_DATABASE_URI (its own tables beside the tracking store's;
the same database may serve both). Runs logged before authentication was switched on stay as they were.

S3 comes from boto3's defaults: MLFLOW_S3_ENDPOINT_URL for an S3-compatible endpoint, credentials from
~/.aws/credentials (the image entrypoint writes it from MLRT_S3_CREDENTIALS_DIR), web identity or an instance
role.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
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


def fail(message: str) -> SystemExit:
    return SystemExit(f"mlflow-server: ERROR: {message}")


def read_account(directory: Path) -> tuple[str, str]:
    """The (username, password) of the admin account from MLRT_MLFLOW_CREDENTIALS_DIR."""
    values = []
    for name in ("username", "password"):
        path = directory / name
        value = path.read_text().strip() if path.is_file() else ""
        if not value:
            raise fail(
                f"MLRT_MLFLOW_CREDENTIALS_DIR={directory} needs a non-empty file {name!r} (the MLflow admin account; "
                "make up generates MLFLOW_ADMIN_PASSWORD in .env, the Helm chart a Secret)"
            )
        values.append(value)
    return values[0], values[1]


def auth_config(username: str, password: str, database_uri: str, directory: Path) -> Path:
    """Write MLflow's basic-auth configuration (mode 600) into `directory`; its path."""
    path = directory / "basic_auth.ini"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = {database_uri.replace('%', '%%')}\n"
            f"admin_username = {username}\n"
            f"admin_password = {password.replace('%', '%%')}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # A password check is a deliberately slow hash (~1 s of CPU here): without this cache every request of a
            # client (Optuna's MLflow storage makes dozens a trial) paid it, and a study crawled. A changed password
            # reaches every worker within this time; the account's file changes it at the next start anyway.
            "auth_cache_ttl_seconds = 120\n"
        )
    return path


def sync_admin(username: str, password: str, database_uri: str) -> str:
    """Create the admin account, or set its password from the file when it changed; what was done."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(database_uri)
    if not store.has_user(username):
        store.create_user(username, password, is_admin=True)
        return "created"
    if not store.authenticate_user(username, password):
        store.update_user(username, password=password, is_admin=True)
        return "password updated"
    return "unchanged"


def enable_auth(args: list[str], credentials: Path) -> list[str]:
    """Configure the basic-auth app in this process's environment; the server arguments to use."""
    database_uri = os.environ.get("MLRT_MLFLOW_AUTH_DATABASE_URI", "")
    if not database_uri:
        raise fail(
            "MLRT_MLFLOW_CREDENTIALS_DIR is set but MLRT_MLFLOW_AUTH_DATABASE_URI is not; set it to the database "
            "for users and permissions, e.g. sqlite:////opt/mlrt/mlflow/basic_auth.db"
        )
    username, password = read_account(credentials)
    try:
        done = sync_admin(username, password, database_uri)
    except Exception as err:  # noqa: BLE001 -- any database error: say which setting to check
        raise fail(f"the auth database {database_uri.split('@')[-1]} failed: {err}") from None
    print(f"mlflow-server: authentication on, admin account {username!r} {done}", file=sys.stderr)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(
        auth_config(username, password, database_uri, Path(tempfile.mkdtemp(prefix="mlrt-mlflow-auth-")))
    )
    # Flask's session and CSRF key: the same on every worker and across restarts, and known only to whoever
    # knows the admin password already.
    os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"] = hashlib.sha256(f"mlrt-mlflow-flask:{password}".encode()).hexdigest()
    return ["--app-name", "basic-auth", *args]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    credentials = os.environ.get("MLRT_MLFLOW_CREDENTIALS_DIR")
    if credentials:
        args = enable_auth(args, Path(credentials))
    dest = destination(args)
    local = os.environ.get("MLRT_MLFLOW_LOCAL_ARTIFACTS")
    if dest and local:
        copied = copy_local_artifacts(Path(local), dest)
        if copied:
            print(f"mlflow-server: copied {copied} artifact files from {local} to {dest}", file=sys.stderr)
    os.execvp("mlflow", ["mlflow", "server", *args])


if __name__ == "__main__":
    main()
