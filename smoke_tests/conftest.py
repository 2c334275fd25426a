"""Shared fixtures of the cluster smoke tests. They run inside the driver (jupyter) container, where a plain
SparkSession.builder.getOrCreate() attaches to the cluster configured by the image (spark.master etc.)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

JAR_LOCK = Path("/opt/mlrt/locks/jars.lock")
MIN_EXECUTORS = int(os.environ.get("MLRT_SMOKE_MIN_EXECUTORS", "2"))
EXECUTOR_WAIT_S = int(os.environ.get("MLRT_SMOKE_EXECUTOR_WAIT_S", "180"))
EXIT_STATUS = pytest.StashKey[int]()


def registered_executors(spark) -> list[str]:
    """Host:port of every registered executor (the driver's own block manager excluded)."""
    sc = spark.sparkContext
    driver = f"{sc.getConf().get('spark.driver.host')}:"
    status = sc._jsc.sc().getExecutorMemoryStatus()
    hosts = [status.keys().toList().apply(i) for i in range(status.size())]
    return [h for h in hosts if not h.startswith(driver)]


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "example(notebook): proves the same library on the cluster as the example notebook of that name (which "
        "also checks its tasks ran on several executors, see test_notebooks.py), quicker: in the shared session",
    )


# Files whose tests run first, in this order (helm test's full suite: the quick suite, timed by the e2e, then the
# rest in the same session). Names separated by spaces.
FIRST_ENV = "MLRT_SMOKE_FIRST"


def pytest_collection_modifyitems(session, config, items):
    first = os.environ.get(FIRST_ENV, "").split()
    if first:
        rank = {name: i for i, name in enumerate(first)}
        items.sort(key=lambda item: rank.get(item.path.name, len(first)))  # stable: each file's own order kept


def native_threads() -> dict[str, int]:
    """Threads of this process by name (/proc: native ones included, which threading.enumerate() misses)."""
    names: dict[str, int] = {}
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        names[name] = names.get(name, 0) + 1
    return names


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config.stash[EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave with pytest's exit status once everything is reported, without the interpreter's finalization.

    The session loads ray, gRPC, TensorFlow, torch, Arrow and XGBoost into this one process; their native threads
    outlive the tests and tearing the interpreter down under them is not what the suite tests. Once that
    finalization crashed with every test passed (SIGSEGV in libc's memmove on a non-main thread, CI, exit 139);
    the threads still alive are listed so such a crash can be traced to its library."""
    status = config.stash.get(EXIT_STATUS, None)
    if status is None:  # pytest stopped before a session ran (usage error, collection only): its normal exit
        return
    print(f"threads alive at exit: {native_threads()}", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@pytest.fixture(autouse=True)
def pickle_test_functions_by_value(request):
    """Executors cannot import the test modules: ship functions defined in them by value (pyspark, horovod
    and the other launchers pickle functions with cloudpickle)."""
    import cloudpickle
    from pyspark import cloudpickle as spark_cloudpickle

    for pickler in (cloudpickle, spark_cloudpickle):
        if request.module.__name__ not in getattr(pickler.cloudpickle, "_PICKLE_BY_VALUE_MODULES", set()):
            pickler.register_pickle_by_value(request.module)


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = SparkSession.builder.appName("mlrt-smoke-tests").getOrCreate()
    master = session.sparkContext.master
    if not master.startswith(("spark://", "k8s://")):
        pytest.fail(f"the driver is not attached to a cluster (spark.master={master}); set SPARK_MASTER_URL")
    deadline = time.monotonic() + EXECUTOR_WAIT_S
    while len(executors := registered_executors(session)) < MIN_EXECUTORS:
        if time.monotonic() > deadline:
            session.stop()
            pytest.fail(
                f"only {len(executors)} executor(s) registered within {EXECUTOR_WAIT_S}s "
                f"(want {MIN_EXECUTORS}): {executors}; check the workers' logs"
            )
        time.sleep(1)
    yield session
    session.stop()


SMALL_SHUFFLES = {
    # Delta rebuilds a table's state in 50 partitions, and joins (MERGE, exceptAll) shuffle into 200: the
    # smoke tests' tables are small.
    "spark.databricks.delta.snapshotPartitions": "4",
    "spark.sql.shuffle.partitions": "8",
}


@pytest.fixture
def small_shuffles(spark):
    for key, value in SMALL_SHUFFLES.items():
        spark.conf.set(key, value)
    yield
    for key in SMALL_SHUFFLES:
        spark.conf.unset(key)


def executor_summaries(spark) -> list[dict]:
    """Spark's REST ExecutorSummary list from the driver's own UI."""
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/executors"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def executor_task_counts(spark) -> dict[str, int]:
    """Completed+active tasks per executor host, from the driver's own REST API."""
    return tasks_by_host(executor_summaries(spark))


def busy_executors(spark) -> dict[str, int]:
    """Active tasks per executor id, those with none left out."""
    return {e["id"]: e["activeTasks"] for e in executor_summaries(spark) if e["id"] != "driver" and e["activeTasks"]}


def tasks_by_host(executors: list[dict]) -> dict[str, int]:
    """Completed+active tasks per executor host, from Spark's REST ExecutorSummary list (the driver's own UI or
    the history server's), the driver left out."""
    counts: dict[str, int] = {}
    for executor in executors:
        if executor["id"] == "driver":
            continue
        host = executor["hostPort"].rsplit(":", 1)[0]
        counts[host] = counts.get(host, 0) + executor["completedTasks"] + executor["activeTasks"]
    return counts


class Evidence:
    hosts: set[str]


@contextmanager
def ran_on_executors(spark, framework: str, at_least: int = MIN_EXECUTORS):
    """Assert that the work in the block ran tasks on >= at_least distinct executor hosts."""
    before = executor_task_counts(spark)
    evidence = Evidence()
    yield evidence
    deadline = time.monotonic() + 5  # the REST API lags task completion slightly: ask again until then
    while True:
        after = executor_task_counts(spark)
        evidence.hosts = {host for host, count in after.items() if count > before.get(host, 0)}
        if len(evidence.hosts) >= at_least or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert len(evidence.hosts) >= at_least, (
        f"{framework}: tasks ran on {sorted(evidence.hosts)} only; want >= {at_least} executor hosts"
    )


DRIVER_HOST = socket.gethostname()


def session_jars() -> list[str]:
    """File names of the jars that sessions started from this environment are given: --jars in
    PYSPARK_SUBMIT_ARGS (what `pyspark --jars` sets; kernels inherit it), which Spark ships to its executors."""
    args = shlex.split(os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
    given = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--jars"]
    return [jar.rsplit("/", 1)[-1] for value in given for jar in value.split(",") if jar]


def require_jars(*keys: str) -> None:
    """Skip, with the lock's reason, unless every package under these versions.env keys is in the image or its
    jar is given to the sessions (session_jars)."""
    packages = {p["key"]: p for p in json.loads(JAR_LOCK.read_text())["packages"]}
    given = session_jars()
    for key in keys:
        package = packages[key]
        _, artifact, version = package["coordinate"].split(":")
        if package["status"] != "resolved" and not any(j.endswith(f"{artifact}-{version}.jar") for j in given):
            asked = "; ".join(f"{repo}: {answer}" for repo, answer in package["asked"].items())
            pytest.skip(
                f"{package['coordinate']} is not in the image: {package['reason']} ({asked}); point "
                f"MLRT_MAVEN_REPOSITORIES at a repository that serves it and run `make lock build`, or give the "
                f"sessions its jars (--jars in PYSPARK_SUBMIT_ARGS)"
            )
