"""The postgres image (the table catalog's database): Debian's PostgreSQL of versions.env, non-root, the
superuser's name and password from files, databases made at start, the password from the file again on every
start (a rotated Secret takes effect), and no start without a password."""

from __future__ import annotations

import subprocess
import uuid

from .conftest import PINS, inspect, run, wait_healthy

IMAGE = "postgres"


def test_is_the_pinned_major_version(image):
    assert f"(PostgreSQL) {PINS['POSTGRES_MAJOR']}." in run(image, "postgres", "--version")


def test_refuses_to_start_without_a_password_file(image):
    result = run(image, "serve", check=False)
    assert result.returncode == 64
    assert (
        "MLRT_POSTGRES_PASSWORD_FILE is not set; point it at a file holding the superuser's password" in result.stderr
    )


def sql(name: str, user: str, password: str, database: str, statement: str) -> subprocess.CompletedProcess:
    """A statement over TCP (scram-sha-256), as the metastore connects; the password through the environment of
    this one throwaway client."""
    command = ["docker", "exec", "-e", f"PGPASSWORD={password}", name, "psql", "-h", "127.0.0.1", "-U", user]
    return subprocess.run([*command, "-d", database, "-tAc", statement], capture_output=True, text=True, timeout=60)


def test_serves_the_account_from_files_keeps_its_data_and_takes_a_new_password_on_restart(image, tmp_path):
    account = tmp_path / "account"
    account.mkdir()
    (account / "username").write_text("catalog_admin\n")
    (account / "password").write_text("first-" + uuid.uuid4().hex)
    account.chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)
    name = f"mlrt-postgres-test-{uuid.uuid4().hex[:8]}"
    cmd = [
        "docker",
        "run",
        "-d",
        "--name",
        name,
        "-v",
        f"{account}:/account:ro",
        "-v",
        f"{data}:/var/lib/mlrt/postgres",
    ]
    cmd += ["-e", "MLRT_POSTGRES_USER_FILE=/account/username", "-e", "MLRT_POSTGRES_PASSWORD_FILE=/account/password"]
    subprocess.run([*cmd, "-e", "MLRT_POSTGRES_DATABASES=metastore,other", image], check=True, capture_output=True)
    try:
        wait_healthy(name, "postgres-entrypoint", "PostgreSQL")
        first = (account / "password").read_text()
        assert (
            sql(
                name, "catalog_admin", first, "metastore", "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)"
            ).returncode
            == 0
        )
        assert sql(name, "catalog_admin", first, "other", "SELECT 1").stdout.strip() == "1"
        refused = sql(name, "catalog_admin", "not-the-password", "metastore", "SELECT 1")
        assert refused.returncode != 0 and "password authentication failed" in refused.stderr
        assert (
            sql(name, "catalog_admin", first, "postgres", "SHOW password_encryption").stdout.strip() == "scram-sha-256"
        )
        top = subprocess.run(["docker", "top", name, "-o", "uid,pid,args"], capture_output=True, text=True, check=True)
        processes = [line.split(None, 2) for line in top.stdout.splitlines()[1:]]
        assert processes and all(uid == "185" for uid, _, _ in processes), top.stdout  # non-root, every process
        assert first not in top.stdout  # the password is on no command line
        (account / "password").write_text("second-" + uuid.uuid4().hex)
        subprocess.run(["docker", "restart", name], check=True, capture_output=True, timeout=120)
        wait_healthy(name, "postgres-entrypoint", "PostgreSQL")
        second = (account / "password").read_text()
        assert sql(name, "catalog_admin", second, "metastore", "SELECT n FROM kept").stdout.strip() == "7"
        assert sql(name, "catalog_admin", first, "metastore", "SELECT 1").returncode != 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_stops_with_postgres_fast_shutdown(image):
    # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client (the metastore's pool) until killed
    assert inspect(image, ".Config.StopSignal") == "SIGINT"
