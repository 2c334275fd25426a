"""mlrt.metastore's supervisor (images/spark/python/mlrt/metastore.py) with a stand-in server and database: the
server runs while the database's port answers, stops when it does not, starts again, checked, when it does.
The real metastore and PostgreSQL: tests/cluster/test_catalog.py."""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("mlrt_metastore", ROOT / "images/spark/python/mlrt/metastore.py")
metastore = importlib.util.module_from_spec(spec)
spec.loader.exec_module(metastore)


class Database:
    """A TCP port that answers, or not."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen()

    def down(self):
        self.sock.close()

    def up(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen()


def until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_server_runs_only_while_its_database_answers(monkeypatch):
    monkeypatch.setattr(metastore, "PROBE_S", 0.1)
    db = Database()
    checks = []
    server = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = metastore.Supervisor(server, ("127.0.0.1", db.port), lambda: checks.append(time.monotonic()))
    result = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()))
    thread.start()
    try:
        until(lambda: supervisor.child is not None and supervisor.child.poll() is None)
        first = supervisor.child
        db.down()
        until(lambda: first.poll() is not None)  # stopped: sessions get no answer instead of "no such database"
        db.up()
        until(lambda: supervisor.child is not first and supervisor.child.poll() is None)
        assert len(checks) == 2, "the account and schema are checked before each start"
    finally:
        supervisor.stop()
        thread.join(30)
        db.down()
    assert result == [0] and supervisor.child.poll() is not None


def test_a_server_that_ends_on_its_own_ends_the_supervisor_with_its_status(monkeypatch):
    monkeypatch.setattr(metastore, "PROBE_S", 0.1)
    db = Database()
    try:
        supervisor = metastore.Supervisor([sys.executable, "-c", "raise SystemExit(3)"], ("127.0.0.1", db.port))
        assert supervisor.run() == 3
    finally:
        db.down()


def refusal(check, within_s: float) -> tuple[str, float]:
    """What Supervisor.checked raises with this check (it must raise), and after how many seconds."""
    supervisor = metastore.Supervisor([sys.executable, "-c", "pass"], ("127.0.0.1", 9), check)
    started = time.monotonic()
    with pytest.raises(metastore.MetastoreError) as err:
        supervisor.checked(within_s=within_s)
    assert supervisor.child is None, "no server started"
    return str(err.value), time.monotonic() - started


def test_a_database_starting_up_gets_a_grace_and_a_wrong_account_ends_it_at_once(monkeypatch):
    monkeypatch.setattr(metastore, "PROBE_S", 0.05)
    said = []

    def starting_then_refused():
        said.append(1)
        if len(said) < 3:
            raise metastore.MetastoreError("cannot reach ...: FATAL: the database system is starting up; check ...")
        raise metastore.MetastoreError('cannot reach ...: FATAL: password authentication failed for user "hive"')

    message, took = refusal(starting_then_refused, within_s=30)
    assert "password authentication failed" in message
    assert len(said) == 3 and took < 5, "retried while starting up, not after the refusal"

    def still_starting():
        raise metastore.MetastoreError("cannot reach ...: Connection refused; check ...")

    message, took = refusal(still_starting, within_s=0.3)
    assert "Connection refused" in message and 0.3 <= took < 5


def test_the_database_address_comes_from_the_jdbc_url():
    assert metastore.database_address("jdbc:postgresql://postgres:5432/metastore?ssl=true") == ("postgres", 5432)
    assert metastore.database_address("jdbc:postgresql://db.example/metastore") == ("db.example", 5432)


def test_alive_is_the_thrift_port_answering_or_the_database_not_answering():
    server, db = Database(), Database()
    try:
        assert metastore.alive(server.port, ("127.0.0.1", db.port)), "serving"
        server.down()
        assert not metastore.alive(server.port, ("127.0.0.1", db.port)), "the database answers, the server does not"
        db.down()
        assert metastore.alive(server.port, ("127.0.0.1", db.port)), "waiting for its database: not restarted"
    finally:
        server.down()
        db.down()


def test_the_schema_step_runs_in_a_child_and_its_error_comes_back_named(monkeypatch):
    """serve checks the schema in a child process (its JDBC JVM ends with it); the child's error line is the
    supervisor's, without the child's prefix."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "images/spark/python"))
    monkeypatch.delenv("MLRT_METASTORE_DB_URL", raising=False)
    with pytest.raises(metastore.MetastoreError) as err:
        metastore.schema_step()
    assert str(err.value).startswith("MLRT_METASTORE_DB_URL='' is not set or not valid"), str(err.value)
