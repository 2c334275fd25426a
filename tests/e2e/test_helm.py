"""The Helm chart on a real cluster: install, JupyterLab login, Spark from the notebook with executor pods,
`helm test` (every smoke test, executors as pods), spark-submit in cluster mode, faults (a lost executor pod, a
barrier job losing one, the JupyterLab pod deleted), and uninstall and reinstall."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from tests import standins
from tests.conftest import ROOT
from tests.e2e.conftest import (
    CHART,
    HELM,
    KUBECTL,
    VALUES,
    enforcement,
    executor_pods,
    failure_lines,
    kjson,
    kubectl,
    namespace_health,
    notebook_job_runs_on_executor_pods,
    only_kept_claims_are_left,
    port_forward,
    probe_pods,
    reach,
    reach_until,
    run,
    secret_value,
)
from tests.k8s.chart import QUICK_SMOKE_FILES

RELEASE = "mlrt"
FULLNAME = "mlrt"
# The shared catalog's table and view that `helm test` (smoke_tests/test_catalog.py) creates and keeps: later
# tests read them by name from Spark Connect, a cluster-mode driver, and after an upgrade and a reinstall.
CATALOG_TABLE, CATALOG_VIEW, CATALOG_ROWS = "mlrt_smoke.catalog_events", "mlrt_smoke.catalog_events_even", (1000, 500)


def catalog_rows(namespace: str) -> tuple[int, int]:
    """The shared catalog's table and view, read by name through the release's Spark Connect server (from the
    host, through a port-forward: a long-running session, which finds the catalog after its pods were replaced)."""
    from pyspark.sql import SparkSession

    token = secret_value(namespace, f"{FULLNAME}-connect", "token")
    with port_forward(namespace, f"svc/{FULLNAME}-connect", 15002) as url:
        port = url.rsplit(":", 1)[1]
        spark = SparkSession.builder.remote(f"sc://localhost:{port}/;token={token}").create()
        try:
            deadline = time.monotonic() + 120
            while True:  # its Hive client reconnects to a replaced metastore on the next call
                try:
                    return spark.table(CATALOG_TABLE).count(), spark.table(CATALOG_VIEW).count()
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(3)
        finally:
            spark.stop()


PIP_CA_CONFIGMAP = "mlrt-pip-ca"  # made by the test as a user would, before installing: an uninstall keeps it
SCOPE_SECRET, JOB_SECRET = "demo", "k8s-job-secret-" + uuid.uuid4().hex[:12]  # values-local.yaml's secretScopes
USERS_OWN = (f"configmap/{PIP_CA_CONFIGMAP}", f"secret/{SCOPE_SECRET}")


def apply_created(namespace: str, *create: str) -> None:
    """`kubectl create <create...>`, applied (made, or left as it is when a reinstall finds it there)."""
    manifest = kubectl("-n", namespace, "create", *create, "--dry-run=client", "-o", "yaml").stdout
    kubectl("-n", namespace, "apply", "-f", "-", stdin=manifest)


def secret_scope(namespace: str) -> None:
    """The dbutils secret scope the values name, made before installing as a user would (an uninstall keeps it)."""
    apply_created(namespace, "secret", "generic", SCOPE_SECRET, f"--from-literal=token={JOB_SECRET}")


def pip_ca_values(namespace: str) -> list[str]:
    """The CA bundle this host's pip and image builds trust, as the release's libraries.caBundleConfigMap (pods reach
    PyPI through the same network), or nothing when there is none."""
    from tooling.images import ca_bundle

    ca = ca_bundle()
    if ca is None:
        return []
    apply_created(namespace, "configmap", PIP_CA_CONFIGMAP, f"--from-file=ca.pem={ca}")
    return ["--set", f"libraries.caBundleConfigMap={PIP_CA_CONFIGMAP}"]


def install(namespace: str) -> None:
    secret_scope(namespace)
    started = time.monotonic()
    run(HELM, "install", RELEASE, str(CHART), "-n", namespace, "-f", str(VALUES), *pip_ca_values(namespace),
        "--wait", "--timeout", "15m", timeout=1000)  # fmt: skip
    print(f"helm install --wait: {time.monotonic() - started:.0f} s", file=sys.stderr)


@pytest.fixture(scope="module")
def release(namespace):
    install(namespace)
    yield namespace
    run(HELM, "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "5m", check=False, timeout=400)


def test_jupyterlab_login_through_port_forward(release):
    token = secret_value(release, f"{FULLNAME}-jupyter", "token")
    with port_forward(release, f"svc/{FULLNAME}-jupyter", 8888) as url:
        assert requests.get(f"{url}/api/status", timeout=30).status_code == 403
        wrong = requests.get(f"{url}/api/status", headers={"Authorization": "token wrong"}, timeout=30)
        assert wrong.status_code == 403
        page = requests.get(f"{url}/lab", params={"token": token}, timeout=60)
        assert page.status_code == 200 and "JupyterLab" in page.text


def test_notebook_session_runs_on_executor_pods(release):
    """A plain SparkSession in the notebook pod is a Kubernetes driver: executors are pods of the release."""
    notebook_job_runs_on_executor_pods(release, f"{FULLNAME}-jupyter-0", f"{FULLNAME}-exec")


# --- the team workspace (hub.enabled; values-local.yaml: its culler stops servers idle for HUB_IDLE_SECONDS) ----

HUB_IDLE_SECONDS, HUB_CULL_EVERY = 120, 10
HUB_PASSWORD = "e2e-" + uuid.uuid4().hex[:12]
HUB: dict = {}  # what the first hub test leaves for the culling test: when alice's server fell idle, her token
# A user's session: executors of 1 GiB in all (the small test node holds two users' at once), their pod names.
USER_SESSION = """
import os, socket, sys, time
from pyspark.sql import SparkSession
spark = (SparkSession.builder.appName("mlrt-e2e-hub")
         .config("spark.kubernetes.executor.request.cores", "100m").config("spark.executor.memory", "512m")
         .config("spark.executor.memoryOverhead", "512m").getOrCreate())
print("READY", time.time(), flush=True)
hosts = spark.sparkContext.parallelize(range(16), 16).map(lambda i: (socket.gethostname(), i * i)).collect()
print("SUM", sum(v for _, v in hosts))
print("HOSTS", ",".join(sorted({h for h, _ in hosts})))
print("USER", spark.sparkContext.sparkUser(), os.environ["LOGNAME"], flush=True)
import mlflow  # with the user's own MLflow account (the hub made it): a run in an experiment of their own
mlflow.set_experiment(f"e2e-hub-{os.environ['LOGNAME']}")
with mlflow.start_run() as run:
    mlflow.log_metric("sum", 1240)
import configparser
account = configparser.ConfigParser()
account.read(os.path.expanduser("~/.mlflow/credentials"))
print("MLFLOW", mlflow.get_run(run.info.run_id).info.user_id, account["mlflow"]["mlflow_tracking_username"], flush=True)
if sys.argv[1:] == ["hold"]:
    time.sleep(900)
spark.stop()
"""


def user_pod(user: str) -> str:
    return f"{FULLNAME}-user-{user}"


def user_executors(namespace: str, user: str) -> list[str]:
    pods = executor_pods(namespace, f"mlrt.io/user={user}")
    return sorted(p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running")


def session_lines(out: str) -> dict[str, str]:
    keys = ("READY", "SUM", "HOSTS", "USER", "MLFLOW")
    return dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(keys))


def test_team_workspace_people_log_in_to_servers_and_spark_of_their_own(release, cluster):
    """hub.enabled: two people sign up and are approved, log in, each gets a JupyterLab pod that is the driver of
    their Spark sessions with executor pods of their own at the same time; one's token opens nothing of the
    other's; a stopped server's executors go; a notebook survives its server's restart."""
    from tests.e2e.hub import Hub, browser_login

    admin_password = secret_value(release, f"{FULLNAME}-hub", "admin-password")
    with port_forward(release, f"svc/{FULLNAME}-hub-public", 80) as url:
        hub = Hub(url)
        hub.wait_until_up()
        assert "Invalid username or password" in hub.login("admin", "not-the-password")[1]
        admin, page = hub.login("admin", admin_password)
        assert page == "", page[:300]
        for user in ("alice", "bob"):
            assert "sent to the admin" in hub.signup(user, HUB_PASSWORD)
        assert "has not been authorized by an administrator" in hub.login("alice", HUB_PASSWORD)[1]
        for user in ("alice", "bob"):
            admin.get(f"{url}/hub/authorize/{user}", timeout=60).raise_for_status()
        # bob logs in and starts his server through the hub's API; alice in a browser, which opens her JupyterLab
        bob_web, page = hub.login("bob", HUB_PASSWORD)
        assert page == "", page[:300]
        tokens = {"bob": hub.token(admin, "bob")}
        hub.start(tokens["bob"], "bob")
        logged_in = browser_login(url, "alice", HUB_PASSWORD, ROOT / ".cache" / "screenshots")  # the node's clock
        tokens["alice"] = hub.token(admin, "alice")
        for user in ("bob", "alice"):
            hub.wait(tokens[user], user, ready=True, timeout=300)
        # a user's server is owned by the hub's settings, as their Secrets and Spark defaults are: an uninstall
        # stops it (and its executors, which it owns) rather than leaving it on the release's claims
        for user in ("alice", "bob"):
            owners = kjson("-n", release, "get", "pod", user_pod(user))["metadata"].get("ownerReferences", [])
            assert [(o["kind"], o["name"]) for o in owners] == [("ConfigMap", f"{FULLNAME}-hub")], owners
        # where policies are enforced: alice's server cannot reach bob's, only the hub's API and the services
        if (state := enforcement(cluster)).startswith("enforced"):
            bob_ip = kjson("-n", release, "get", "pod", user_pod("bob"))["status"]["podIP"]
            wanted = {f"{bob_ip}:8888": "timeout", f"{FULLNAME}-hub:8081": "open", f"{FULLNAME}-mlflow:5000": "open"}
            flows = reach(release, user_pod("alice"), *wanted)
            assert flows == wanted, flows
        else:
            print(f"hub: alice-to-bob flow not probed: NetworkPolicy {state}", file=sys.stderr)

        # bob holds a session (executors up) while alice runs a job on executors of her own
        bob = subprocess.Popen(
            [KUBECTL, "-n", release, "exec", "-i", user_pod("bob"), "--", "python", "-", "hold"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        bob.stdin.write(USER_SESSION)
        bob.stdin.close()
        try:
            deadline = time.monotonic() + 240
            while len(bob_executors := user_executors(release, "bob")) < 2:
                assert bob.poll() is None, f"bob's session ended: {bob.stderr.read()[-3000:]}"
                assert time.monotonic() < deadline, f"bob's executors: {bob_executors}\n{namespace_health(release)}"
                time.sleep(2)
            assert all(name.startswith(f"{FULLNAME}-exec-bob-") for name in bob_executors), bob_executors
            out = kubectl("-n", release, "exec", "-i", user_pod("alice"), "--", "python", "-",
                          stdin=USER_SESSION, timeout=600).stdout  # fmt: skip
            lines = session_lines(out)
            since_login = float(lines["READY"].split()[0]) - logged_in
            print(f"hub: alice's login to a running Spark session: {since_login:.0f} s", file=sys.stderr)
            assert int(lines["SUM"]) == sum(i * i for i in range(16))
            hosts = lines["HOSTS"].split(",")
            assert len(hosts) >= 2 and all(h.startswith(f"{FULLNAME}-exec-alice-") for h in hosts), hosts
            assert lines["USER"] == "alice alice", lines["USER"]
            assert lines["MLFLOW"] == "alice alice", lines["MLFLOW"]  # the run's user, and the MLflow account's
            assert set(bob_executors) <= set(user_executors(release, "bob")), "bob's executors went during alice's job"

            # the workspace's proxies work in her own JupyterLab: the history server lists her application as hers,
            # MLflow (with her account) her experiment
            deadline = time.monotonic() + 60
            while True:
                history = hub.api(tokens["alice"], "GET", "/user/alice/spark-history/api/v1/applications")
                # the history server is the team's: it lists bob's application of the same name too, as his
                users = {a["attempts"][0]["sparkUser"] for a in history.json() if a["name"] == "mlrt-e2e-hub"}
                if {"alice", "bob"} <= users or time.monotonic() > deadline:
                    break
                time.sleep(3)
            assert {"alice", "bob"} <= users, (history.status_code, history.text[:500])
            search = hub.api(tokens["alice"], "GET", "/user/alice/mlflow/api/2.0/mlflow/experiments/search",
                             params={"max_results": 100})  # fmt: skip
            assert search.ok and "e2e-hub-alice" in search.text, (search.status_code, search.text[:500])

            # one user's token opens nothing of another's server: files, kernels, the contents API
            for path in ("api/contents", "api/kernels", "files/examples", "lab"):
                assert hub.api(tokens["alice"], "GET", f"/user/bob/{path}", allow_redirects=False).status_code == 403
            notebook = {
                "type": "notebook",
                "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
            }
            saved = hub.api(tokens["alice"], "PUT", "/user/alice/api/contents/kept.ipynb", json=notebook)
            assert saved.status_code in (200, 201), saved.text
            # and in a browser: bob's hub login cookie takes him through the hub's OAuth to a refusal of alice's
            refused = bob_web.get(f"{url}/user/alice/lab", timeout=60)
            assert refused.status_code == 403, (refused.status_code, refused.url)

            # bob's server stops: his executor pods go with it
            hub.stop(tokens["bob"], "bob")
            hub.wait(tokens["bob"], "bob", ready=False, timeout=120)
            deadline = time.monotonic() + 90
            while left := user_executors(release, "bob"):
                assert time.monotonic() < deadline, f"bob's executors outlived his server: {left}"
                time.sleep(2)

            # alice's notebook survives her server's restart (her workspace claim stays)
            hub.stop(tokens["alice"], "alice")
            hub.wait(tokens["alice"], "alice", ready=False, timeout=120)
            hub.start(tokens["alice"], "alice")
            hub.wait(tokens["alice"], "alice", ready=True, timeout=300)
            kept = hub.api(tokens["alice"], "GET", "/user/alice/api/contents/kept.ipynb")
            assert kept.status_code == 200 and kept.json()["type"] == "notebook", kept.text

            # then alice leaves her server alone: the culler stops it while the next tests run (the last test of
            # the hub below checks that it did, in time)
            HUB.update(idle_since=time.time(), token=tokens["alice"])
        finally:
            bob.kill()


# The example notebooks run in the notebook pod. By default the one that shows what differs on Kubernetes (the
# getting-started tour: executors as pods, the UIs, MLflow): each framework's distributed run on executor pods
# (Delta on the release's lake included) is proven, with assertions, by `helm test` below, and every notebook
# runs on compose. MLRT_E2E_NOTEBOOKS=all runs all of them here too (~15 min more), or a pytest -k expression.
E2E_NOTEBOOKS = os.environ.get("MLRT_E2E_NOTEBOOKS", "getting-started or examples_are_shipped or several_executors")


def smoke_tests_in_the_notebook_pod(release: str, module: str, *args: str, timeout: int) -> str:
    """Run smoke_tests/MODULE (with its conftest) by pytest in the notebook pod, as a user's kernels run there; its
    output, asserting it passed."""
    pod = f"{FULLNAME}-jupyter-0"
    folder = f"/tmp/e2e-{module.removesuffix('.py')}"
    for name in ("conftest.py", module):
        source = (ROOT / "smoke_tests" / name).read_text()
        kubectl("-n", release, "exec", "-i", pod, "--", "bash", "-c", f"mkdir -p {folder} && cat > {folder}/{name}",
                stdin=source)  # fmt: skip
    started = time.monotonic()
    proc = kubectl(
        "-n", release, "exec", pod, "--", "python", "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rs",
        "--durations=0", *args, f"{folder}/{module}", check=False, timeout=timeout,
    )  # fmt: skip
    print(f"{module} in the notebook pod: {time.monotonic() - started:.0f} s", file=sys.stderr)
    print(proc.stdout[-5000:], file=sys.stderr)
    assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-3000:]
    return proc.stdout


def test_example_notebooks_run_in_the_notebook_pod(release):
    """Example notebooks of the image, executed headless in the notebook pod (as a user opens them there):
    smoke_tests/test_notebooks.py run by pytest in that pod, each notebook a Kubernetes driver of its own."""
    select = [] if E2E_NOTEBOOKS == "all" else ["-k", E2E_NOTEBOOKS]
    smoke_tests_in_the_notebook_pod(release, "test_notebooks.py", *select, timeout=2400)


def test_notebook_libraries_reach_executor_pods_and_cluster_libraries_every_session(release):
    """smoke_tests/test_libraries.py in the notebook pod: `%pip install` in a kernel reaches the executor pods of
    its session (pure Python and compiled), a second kernel's session sees none of it, the pinned stack is guarded,
    a wheel from the object store installs, and the release's cluster libraries (values-local.yaml:
    libraries.packages) are importable on the driver and executor pods of new sessions."""
    out = smoke_tests_in_the_notebook_pod(release, "test_libraries.py", "-s", timeout=900)
    assert "SKIPPED" not in out, out[-3000:]


def test_graphframes_and_mleap_run_on_executor_pods_with_jars_given_to_the_session(release, tmp_path):
    """tests/standins.py in the notebook pod: notebooks 11 and 12, each session a Kubernetes driver given the jars
    (Spark ships them to its executor pods), their tasks checked on several executors. The GraphFrames and MLeap
    smoke tests with the same jars run on compose (tests/cluster/test_jvm_standins.py): each backend runs the
    libraries once."""
    found = standins.session_jars(tmp_path / "jars")
    pod = f"{FULLNAME}-jupyter-0"
    subprocess.run([KUBECTL, "-n", release, "exec", "-i", pod, "--", "bash", "-c", standins.UNPACK],
                   input=standins.bundle(found), capture_output=True, check=True, timeout=120)  # fmt: skip
    command, passed = standins.pytest_command(found, standins.NOTEBOOKS_RUN)
    started = time.monotonic()
    done = kubectl("-n", release, "exec", pod, "--", *command, check=False, timeout=1800)
    print(f"{command[-1]} with the stand-in jars: {time.monotonic() - started:.0f} s", file=sys.stderr)
    standins.check(done, passed)


def test_team_workspace_culls_an_idle_server_in_the_configured_time(release):
    """alice's server, left idle by the test above, is stopped by the culler (its log says so) within its timeout and
    one round of its checks; her workspace claim stays."""
    from tests.e2e.hub import Hub

    assert HUB, "the team workspace test above did not get to leaving alice's server idle"
    deadline = HUB["idle_since"] + HUB_IDLE_SECONDS + 2 * HUB_CULL_EVERY + 60
    with port_forward(release, f"svc/{FULLNAME}-hub-public", 80) as url:
        hub = Hub(url)
        while (server := hub.server(HUB["token"], "alice")) is not None:
            assert time.time() < deadline, f"alice's idle server is still there: {server}"
            time.sleep(3)
    log = kubectl("-n", release, "logs", f"deploy/{FULLNAME}-hub", timeout=60).stdout
    culled = [line for line in log.splitlines() if "Culling server alice" in line]
    assert culled, "the hub's log has no culling of alice's server (was it stopped by something else?)"
    when = datetime.strptime(culled[0].split("]")[0].split(" ", 1)[1][:23], "%Y-%m-%d %H:%M:%S.%f")
    idle = when.replace(tzinfo=timezone.utc).timestamp() - HUB["idle_since"]
    print(f"hub: alice's idle server culled {idle:.0f} s after she left it", file=sys.stderr)
    assert HUB_IDLE_SECONDS - 5 <= idle <= HUB_IDLE_SECONDS + 2 * HUB_CULL_EVERY + 10, idle
    assert kubectl("-n", release, "get", "pvc", f"{FULLNAME}-workspace-alice", check=False).returncode == 0


def test_helm_test_runs_every_smoke_test_with_executor_pods(release):
    """`helm test` runs smoke_tests/ in a driver pod of its own (values-local.yaml: tests.suite=full): the quick suite
    a user's plain `helm test` runs, which must pass within helm's default 5 minutes, then every other smoke test in
    the same session. The pod is deleted when it succeeds, so the test follows its log while it runs (each line
    timed: the quick suite ends where the first other file's test starts) and records the executor pods it owns."""
    seen: set[str] = set()
    log: list[tuple[float, str]] = []
    done = threading.Event()
    pod = f"{FULLNAME}-smoke-tests"

    def follow(stream):
        for line in stream:
            log.append((time.monotonic(), line))

    def watch():
        follower = None
        while not done.is_set():
            for executor in executor_pods(release):
                if pod in {o["name"] for o in executor["metadata"].get("ownerReferences", [])}:
                    seen.add(executor["metadata"]["name"])
            if follower is None:
                phase = run(KUBECTL, "-n", release, "get", "pod", pod, "-o", "jsonpath={.status.phase}", check=False)
                if phase.stdout in ("Running", "Succeeded", "Failed"):
                    follower = subprocess.Popen([KUBECTL, "-n", release, "logs", "-f", pod], stdout=subprocess.PIPE,
                                                text=True)  # fmt: skip
                    threading.Thread(target=follow, args=(follower.stdout,), daemon=True).start()
            done.wait(3)
        if follower is not None:
            follower.wait(timeout=30)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [HELM, "test", RELEASE, "-n", release, "--timeout", "40m"], capture_output=True, text=True, timeout=2500
        )
        finished = time.monotonic()
        done.set()
        watcher.join(timeout=60)
        output = "".join(line for _, line in log)
        test_lines = [(at, line) for at, line in log if "::" in line and line.startswith("test_")]
        rest = [at for at, line in test_lines if not line.startswith(QUICK_SMOKE_FILES)]
        quick = (rest[0] if rest else finished) - started
        print(f"helm test: {finished - started:.0f} s, its quick suite {quick:.0f} s", file=sys.stderr)
        print(output[-20000:], file=sys.stderr)
        assert proc.returncode == 0, (
            f"helm test failed ({proc.stderr.strip()[-500:]}):\n{failure_lines(output)}\n{namespace_health(release)}"
        )
    finally:
        done.set()
    assert proc.stdout.count("Phase:          Succeeded") == 1, proc.stdout
    summaries = [line for line in output.splitlines() if line.startswith("=") and " passed" in line]
    assert len(summaries) == 1 and not [s for s in summaries if " failed" in s or " error" in s], output[-4000:]
    assert rest, f"no smoke test beyond the quick suite ran:\n{output[-4000:]}"
    assert len(seen) >= 2, f"executor pods of the smoke-test driver: {sorted(seen)}"
    assert quick < 300, f"helm test's default (quick) suite took {quick:.0f} s: over helm's default 5 minutes"


def job_runs(url: str, headers: dict, job: str) -> list[dict]:
    """The run records (jobs/<job>/<run>.json) in JupyterLab's workspace, each with its executed notebook's text."""
    listed = requests.get(f"{url}/api/contents/jobs/{job}", headers=headers, timeout=30)
    if listed.status_code == 404:
        return []
    runs = []
    for entry in listed.json()["content"]:
        if entry["name"].endswith(".json"):
            run = json.loads(requests.get(f"{url}/api/contents/{entry['path']}", params={"type": "file",
                             "format": "text"}, headers=headers, timeout=30).json()["content"])  # fmt: skip
            saved = requests.get(f"{url}/api/contents/jobs/{job}/{run['output'].rsplit('/', 1)[1]}",
                                 params={"type": "file", "format": "text"}, headers=headers, timeout=30)  # fmt: skip
            run["notebook"] = saved.json()["content"] if saved.status_code == 200 else ""
            runs.append(run)
    return runs


def running_job_executors(namespace: str, prefix: str) -> list[str]:
    pods = executor_pods(namespace)
    return [p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith(prefix)
            and p["status"]["phase"] == "Running"]  # fmt: skip


def test_jobs_run_on_their_schedule_and_now_as_drivers_with_executor_pods(release):
    """The chart's jobs (values-local.yaml): the every-minute CronJob, resumed for this test, runs twice on its own;
    `make job TARGET=k8s` runs the example notebook now with a parameter (executors: pods of the run), an app in
    cluster mode (its driver a pod of its own, owned by the run's pod; its log copied into the run's), and a hung
    job until its timeout stops it with its executor pods. Each run's notebook is written back to JupyterLab's
    workspace, the secret scope's value redacted in it; each run is in MLflow (its record names the MLflow run)."""
    from tests.jobs import APP, HANG, TICK, run_together

    token = secret_value(release, f"{FULLNAME}-jupyter", "token")
    headers = {"Authorization": f"token {token}"}
    cronjob = f"{FULLNAME}-job-every-minute"
    with port_forward(release, f"svc/{FULLNAME}-jupyter", 8888) as url:
        requests.put(f"{url}/api/contents/jobs-test", json={"type": "directory"}, headers=headers, timeout=30)
        for name, text in (("tick", TICK), ("hang", HANG)):
            put = requests.put(f"{url}/api/contents/jobs-test/{name}.ipynb", headers=headers, timeout=30,
                               json={"type": "file", "format": "text", "content": text})  # fmt: skip
            assert put.status_code in (200, 201), put.text
        put = requests.put(f"{url}/api/contents/jobs-test/app.py", headers=headers, timeout=30,
                           json={"type": "file", "format": "text", "content": APP})  # fmt: skip
        assert put.status_code in (200, 201), put.text
        started = time.monotonic()
        kubectl("-n", release, "patch", "cronjob", cronjob, "-p", '{"spec": {"suspend": false}}')
        made: dict = {}

        def make_job(name: str, *params: str) -> None:
            began = time.monotonic()
            args = [str(ROOT / ".venv/bin/python"), "-m", "scripts.job", "k8s", name, "--namespace", release]
            done = run(*args, *[a for p in params for a in ("--param", p)], check=False, timeout=900)
            made[name] = (done, time.monotonic() - began)

        def watch_hang() -> None:
            seen = set()
            while "hang" not in made:
                seen |= set(running_job_executors(release, "hang-"))
                time.sleep(3)
            made["hang-executors"] = seen

        run_together(lambda: make_job("on-demand", "rows=1000"), lambda: make_job("hang"), watch_hang)
        # then the app (on this node's 2 cores three runs at once left a run's second executor pod pending), while
        # the schedule runs on
        make_job("app")
        deadline = started + 300
        while time.monotonic() < deadline:
            scheduled = [r for r in job_runs(url, headers, "every-minute") if r["trigger"] == "schedule"]
            if len(scheduled) >= 2:
                break
            time.sleep(10)
        kubectl("-n", release, "patch", "cronjob", cronjob, "-p", '{"spec": {"suspend": true}}')
        demo = job_runs(url, headers, "on-demand")
        app_runs = {r["run_id"]: r for r in job_runs(url, headers, "app")}
    print(f"jobs on Kubernetes: {time.monotonic() - started:.0f} s", file=sys.stderr)

    assert len(scheduled) >= 2, (scheduled, namespace_health(release))
    for record in scheduled[:2]:
        assert record["status"] == "SUCCEEDED" and record["exit_value"] == "100", record
        assert "the token is [REDACTED]" in record["notebook"] and JOB_SECRET not in record["notebook"]
        assert record["mlflow_run_id"], record
    done, seconds = made["on-demand"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["status"] == "SUCCEEDED" and record["parameters"]["rows"] == "1000", record
    value = json.loads(record["exit_value"])
    assert value["rows"] == 1000 and value["hosts"] >= 2 and value["folder"].startswith("s3a://"), value
    saved = next(r["notebook"] for r in demo if r["run_id"] == record["run_id"])
    assert "is [REDACTED] (" in saved and JOB_SECRET not in saved
    done, seconds = made["app"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["status"] == "SUCCEEDED", record
    log = app_runs[record["run_id"]]["notebook"]  # the app's run log, written back to the workspace
    line = next((x for x in log.splitlines() if x.startswith("APP job app ")), log[-3000:])
    words = line.split()
    driver, executors = words[words.index("driver") + 1], ast.literal_eval(line.split(" executors ", 1)[1])
    assert words[4] == "7" and driver.endswith("-1-driver") and len(executors) >= 2, line
    assert driver not in executors and all(h.startswith("app-") for h in executors), line
    hang, hang_seconds = made["hang"]
    assert hang.returncode != 0 and '"status": "TIMEDOUT"' in hang.stdout, hang.stdout[-2000:] + hang.stderr[-2000:]
    assert made["hang-executors"], "the hung job's executors never ran"
    freed = time.monotonic() + 60
    while (left := running_job_executors(release, "hang-")) and time.monotonic() < freed:
        time.sleep(3)
    assert left == [], left


def test_spark_connect_client_through_port_forward(release):
    """A client outside the cluster (the host's pyspark-client) reaches the release's Spark Connect server through
    `kubectl port-forward` with the release's token: its work runs on executor pods the server starts on demand;
    without the token it is refused."""
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    token = secret_value(release, f"{FULLNAME}-connect", "token")
    with port_forward(release, f"svc/{FULLNAME}-connect", 15002) as url:
        port = url.rsplit(":", 1)[1]
        spark = SparkSession.builder.remote(f"sc://localhost:{port}/;token={token}").create()
        try:
            # A UDF belongs to the active session: define it while the authenticated one is active.
            where = F.udf(lambda _: __import__("socket").gethostname(), "string")
            rows = spark.range(0, 2000, numPartitions=8).select(F.col("id"), where("id").alias("host")).toPandas()
            # the shared catalog: the table and view helm test's smoke suite created, by name
            catalog = (spark.table(CATALOG_TABLE).count(), spark.table(CATALOG_VIEW).count())
        finally:
            spark.stop()
        refused = SparkSession.builder.remote(f"sc://localhost:{port}/;token=wrong-token-0123456789").create()
        try:
            with pytest.raises(PySparkException, match="(?i)unauthenticated|authentication"):
                refused.range(1).collect()
        finally:
            refused.stop()
    assert rows["id"].sum() == sum(range(2000))
    assert catalog == CATALOG_ROWS, f"{CATALOG_TABLE}, {CATALOG_VIEW} through Connect: {catalog}"
    hosts = set(rows["host"])
    assert hosts and all(h.startswith(f"{FULLNAME}-connect-exec-") for h in hosts), hosts


def test_spark_submit_cluster_mode(release, tmp_path):
    app = tmp_path / "pi_job.py"
    app.write_text(
        "import socket\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('mlrt-e2e-submit').getOrCreate()\n"
        "rows = spark.sparkContext.parallelize(range(1000), 8).map(lambda i: (socket.gethostname(), i)).collect()\n"
        "print('E2E-SUM', sum(v for _, v in rows))\n"
        "print('E2E-HOSTS', ','.join(sorted({h for h, _ in rows})))\n"
        "lake = spark.conf.get('spark.sql.warehouse.dir').rsplit('/', 1)[0]\n"
        "table = f'{lake}/submitted/{spark.sparkContext.applicationId}'\n"
        "spark.range(500).write.format('delta').save(table)\n"
        "print('E2E-LAKE', lake, spark.read.format('delta').load(table).count())\n"
        f"print('E2E-CATALOG', spark.table('{CATALOG_TABLE}').count(), spark.table('{CATALOG_VIEW}').count())\n"
        "spark.stop()\n"
    )
    before = {p["metadata"]["name"] for p in kjson("-n", release, "get", "pods")["items"]}
    started = time.monotonic()
    proc = run(
        sys.executable,
        "-m",
        "scripts.submit",
        "k8s",
        str(app),
        "--namespace",
        release,
        "--release",
        RELEASE,
        check=False,
        timeout=900,
    )
    print(f"spark-submit cluster mode: {time.monotonic() - started:.0f} s", file=sys.stderr)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    drivers = [
        p
        for p in kjson("-n", release, "get", "pods", "-l", "spark-role=driver")["items"]
        if p["metadata"]["name"] not in before
    ]
    assert len(drivers) == 1, [p["metadata"]["name"] for p in drivers]
    driver = drivers[0]["metadata"]["name"]
    assert drivers[0]["status"]["phase"] == "Succeeded"
    logs = kubectl("-n", release, "logs", driver).stdout
    registered = [line[:17] for line in logs.splitlines() if "Registered executor" in line]
    stamps = [line[:17] for line in logs.splitlines() if line[:2].isdigit() and line[2:3] == "/"]
    if len(registered) >= 2 and stamps:
        from datetime import datetime

        def at(stamp: str) -> datetime:
            return datetime.strptime(stamp, "%y/%m/%d %H:%M:%S")

        print(f"driver's first log line to 2 executors registered: {(at(registered[1]) - at(stamps[0])).seconds} s")
    assert "E2E-SUM 499500" in logs
    assert "E2E-LAKE s3a://lake 500" in logs, "a submitted job writes its Delta table to the object store"
    assert "E2E-CATALOG {} {}".format(*CATALOG_ROWS) in logs, "a cluster-mode driver reads the shared catalog by name"
    hosts = next(line for line in logs.splitlines() if line.startswith("E2E-HOSTS")).split(" ", 1)[1].split(",")
    assert len(hosts) >= 2 and driver not in hosts, hosts
    kubectl("-n", release, "delete", "pod", driver)
    left = kubectl("-n", release, "get", "configmap", "-l", "app.kubernetes.io/part-of=mlrt-submit", "-o", "name")
    assert left.stdout.split() == [], f"submit left its application ConfigMap behind: {left.stdout}"


# Faults, each bounded in time and asserting the exact result: an executor pod deleted in the middle of a job
# (the job answers right, a replacement executor runs tasks), a barrier job (TorchDistributor) that loses an
# executor (it fails fast with the reason or retries; it never hangs), and the JupyterLab pod deleted (it comes
# back with the workspace).
NOTEBOOK = f"{FULLNAME}-jupyter-0"
TASKS = 240

# One driver for both jobs (a driver and its first executors cost ~40 s on this cluster): the short tasks first,
# then the barrier job on the same session's executors, the replacement of the first fault's victim included.
FAULTS = f"""
import socket, time
from pyspark.sql import SparkSession
from pyspark.ml.torch.distributor import TorchDistributor
spark = SparkSession.builder.appName("mlrt-e2e-faults").getOrCreate()
print("STARTED", flush=True)
def task(i):
    time.sleep(0.25)
    return socket.gethostname(), i
done = spark.sparkContext.parallelize(range({TASKS}), {TASKS}).map(task).collect()
print("SUM", sum(i for _, i in done))
print("HOSTS", ",".join(sorted({{h for h, _ in done}})), flush=True)

def train(steps):
    import time
    import torch
    import torch.distributed as dist
    dist.init_process_group("gloo")
    total = torch.zeros(1)
    for _ in range(steps):
        step = torch.ones(1)
        dist.all_reduce(step)
        total += step
        time.sleep(1)
    dist.destroy_process_group()
    return int(total.item())

print("BARRIER", flush=True)
started = time.monotonic()
try:
    result = TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(train, 30)
    print("RESULT", result, flush=True)
except Exception as err:
    print("FAILED", type(err).__name__, " ".join(str(err).split())[:3000], flush=True)
print("SECONDS", round(time.monotonic() - started), flush=True)
spark.stop()
"""


def start(namespace: str, code: str) -> tuple[subprocess.Popen, list[str]]:
    """Run Python in the notebook pod in the background; its output lines are collected as they come."""
    proc = subprocess.Popen(
        [KUBECTL, "-n", namespace, "exec", "-i", NOTEBOOK, "--", "python", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    proc.stdin.write(code)
    proc.stdin.close()
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.rstrip() for line in proc.stdout), daemon=True).start()
    return proc, lines


def running_executors(namespace: str) -> list[str]:
    """The notebook pod's running executor pods (the fault job's), not other drivers' (the Connect server's
    executors of an earlier test may still be going away)."""
    return [p["metadata"]["name"] for p in executor_pods(namespace) if p["status"].get("phase") == "Running"
            and p["metadata"]["name"].startswith(f"{FULLNAME}-exec-")]  # fmt: skip


def delete_an_executor_once_two_run(
    namespace: str, proc: subprocess.Popen, lines: list[str], after: str, settle_s: float
) -> str:
    """Once the job has printed `after` and two executors run, wait settle_s (tasks run on both), delete one."""
    deadline = time.monotonic() + 300
    while len(running := running_executors(namespace)) < 2 or after not in lines:
        assert proc.poll() is None, f"the job ended early: {lines}\n{proc.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, f"two executors never ran ({running}) or no {after}: {lines}"
        time.sleep(1)
    time.sleep(settle_s)
    victim = sorted(running)[0]
    kubectl("-n", namespace, "delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
    print(f"deleted executor pod {victim}", file=sys.stderr)
    return victim


def test_jobs_that_lose_an_executor_pod_answer_right_or_end_in_bounded_time(release):
    """An executor pod deleted in the middle of short tasks: a replacement runs tasks and the job answers right.
    Then, on the same session, TorchDistributor's ranks (one barrier stage) lose an executor pod mid-training:
    Spark kills the other rank and retries the stage on the replacement, or fails with the reason; the call
    returns either way, never hangs."""
    started = time.monotonic()
    proc, lines = start(release, FAULTS)
    victim = delete_an_executor_once_two_run(release, proc, lines, "STARTED", settle_s=10)
    # the ranks start on executors already up (torch's import, gloo's rendezvous): 20 s puts it mid-training
    delete_an_executor_once_two_run(release, proc, lines, "BARRIER", settle_s=20)
    print(f"short tasks with a deleted executor: {time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        proc.wait(timeout=480)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the barrier job hung for 8 minutes after losing an executor: {lines}")
    print(f"both jobs with a deleted executor each: {time.monotonic() - started:.0f} s; {lines}", file=sys.stderr)
    assert proc.returncode == 0, f"{lines}\n{proc.stderr.read()[-3000:]}"
    out = dict(line.split(" ", 1) for line in lines if line.startswith(("SUM", "HOSTS")))
    assert int(out["SUM"]) == sum(range(TASKS)), out
    hosts = out["HOSTS"].split(",")
    replacements = [h for h in hosts if h != victim and h > victim]
    assert replacements, f"no executor created after {victim} ran a task: {hosts}"
    outcome = [line for line in lines if line.startswith(("RESULT", "FAILED"))]
    assert outcome, f"{lines}\n{proc.stderr.read()[-3000:]}"
    if outcome[0].startswith("RESULT"):
        assert outcome[0] == "RESULT 60", outcome  # 30 all-reduced steps of 2 ranks: a full training run
    else:
        # Spark's own reason (the Py4J error's first line says only which call failed)
        assert any(word in outcome[0].lower() for word in ("barrier", "executor", "lost")), outcome


# --- NetworkPolicy, live: enforced on the Kubernetes test cluster (kube-network-policies; test_enforcement.py
# shows it first). Allowed flows are the ones the tests above used (executors <-> driver, driver -> API server,
# DNS, MLflow, the object store, the history server, helm test); here, who else gets in. "reached": a TCP
# connection was answered (accepted, or refused by a port nothing listens on); "dropped": the policy dropped it.

RELEASE_LABELS = {"app.kubernetes.io/name": "mlrt", "app.kubernetes.io/instance": RELEASE}
EXECUTOR_LABELS = {**RELEASE_LABELS, "app.kubernetes.io/component": "executor"}
PEER_LABELS = {"mlrt-e2e/peer": "allowed"}


# What the probes try: name -> (the release's Service, port). The driver's Service is headless: its pod's ports.
ENDPOINTS = {
    "jupyterlab": ("jupyter", 8888),
    "spark-ui": ("driver", 4040),
    "driver-rpc": ("driver", 7078),
    "block-manager": ("driver", 7079),
    "mlflow": ("mlflow", 5000),
    "history": ("history", 18080),
    "object-store": ("objectstore", 8333),
    "spark-connect": ("connect", 15002),
}
ALL_DROPPED = dict.fromkeys(ENDPOINTS, "dropped")


def expect_flows(release: str, namespace: str, pod: str, expected: dict[str, str]) -> None:
    """Probe every expected flow from the pod until all outcomes match (a policy change takes the agent a few
    seconds), then assert them: a table of what differs."""
    addresses = {name: f"{FULLNAME}-{ENDPOINTS[name][0]}.{release}.svc:{ENDPOINTS[name][1]}" for name in expected}

    def classify(raw: dict[str, str]) -> dict[str, str]:
        return {name: "dropped" if raw[address] == "timeout" else "reached" for name, address in addresses.items()}

    raw = reach_until(namespace, pod, list(addresses.values()), lambda outcomes: classify(outcomes) == expected)
    seen = classify(raw)
    wrong = {name: f"expected {want}, got {seen[name]} ({raw[addresses[name]]})" for name, want in expected.items()
             if seen[name] != want}  # fmt: skip
    print(f"flows from {namespace}/{pod}: {seen}", file=sys.stderr)
    assert not wrong, f"from {namespace}/{pod}: {wrong}"


# networkPolicy.ingressFrom: [] (the default): JupyterLab, the Spark UI, MLflow, the history server and Spark
# Connect are open to any pod of the release's namespace; Spark's RPC ports and the object store are not.
UI_PORTS = ("jupyterlab", "spark-ui", "mlflow", "history", "spark-connect")


def test_network_policies_keep_pods_of_other_namespaces_out(release, namespace_outside, enforced):
    with probe_pods((namespace_outside, "outsider", {})):
        expect_flows(release, namespace_outside, "outsider", ALL_DROPPED)


def test_network_policies_let_the_namespace_reach_the_uis_but_not_spark_rpc_or_the_object_store(release, enforced):
    with probe_pods((release, "neighbour", {})):
        expected = {**ALL_DROPPED, **dict.fromkeys(UI_PORTS, "reached")}
        expect_flows(release, release, "neighbour", expected)


def test_network_policies_let_executors_reach_their_driver_mlflow_and_the_store_only(release, enforced):
    with probe_pods((release, "executor-probe", EXECUTOR_LABELS)):
        expected = {
            # rayOnSpark (the default): executors may reach their driver on any port (the Ray head's ports)
            **dict.fromkeys(("jupyterlab", "spark-ui", "driver-rpc", "block-manager"), "reached"),
            "mlflow": "reached",
            "object-store": "reached",
            "history": "dropped",
        }
        expect_flows(release, release, "executor-probe", expected)


def test_ingress_from_opens_the_uis_to_exactly_the_peers_it_names(release, enforced):
    """networkPolicy.ingressFrom set (and rayOnSpark off): the UIs admit the named peers only; executors keep
    Spark's two ports on the driver and lose JupyterLab's. Rolled back afterwards."""
    peers = json.dumps([{"podSelector": {"matchLabels": PEER_LABELS}}])
    run(HELM, "upgrade", RELEASE, str(CHART), "-n", release, "--reuse-values",
        "--set", "networkPolicy.rayOnSpark=false", "--set-json", f"networkPolicy.ingressFrom={peers}",
        "--wait", "--timeout", "5m", timeout=400)  # fmt: skip
    try:
        pods = [(release, "peer", PEER_LABELS), (release, "stranger", {}), (release, "executor-probe", EXECUTOR_LABELS)]
        with probe_pods(*pods):
            expect_flows(release, release, "peer", {**ALL_DROPPED, **dict.fromkeys(UI_PORTS, "reached")})
            expect_flows(release, release, "stranger", ALL_DROPPED)
            expected = {"jupyterlab": "dropped", "spark-ui": "dropped", "driver-rpc": "reached",
                        "block-manager": "reached", "mlflow": "reached"}  # fmt: skip
            expect_flows(release, release, "executor-probe", expected)
    finally:
        run(HELM, "rollback", RELEASE, "-n", release, "--wait", "--timeout", "5m", timeout=400)


def test_the_catalog_keeps_its_tables_through_a_helm_upgrade_that_replaces_its_pods(release):
    """`helm upgrade` with changed catalog values replaces the metastore and database pods (the claim stays):
    a new session reads the table and the view by name."""

    def pods() -> set[str]:
        return {p["metadata"]["name"] for p in kjson("-n", release, "get", "pods")["items"]}

    before = pods()
    run(HELM, "upgrade", RELEASE, str(CHART), "-n", release, "--reuse-values",
        "--set", "catalog.metastore.resources.requests.cpu=60m",
        "--set", "catalog.database.bundled.resources.requests.cpu=60m",
        "--wait", "--timeout", "5m", timeout=400)  # fmt: skip
    # helm's --wait ends once the new pods are ready; an old pod may still be terminating (the metastore's stops
    # its Thrift server, then itself: seconds)
    started = time.monotonic()
    while len(replaced := {p for p in before - pods() if "-metastore-" in p or "-catalog-db-" in p}) < 2:
        assert time.monotonic() - started < 120, f"the upgrade replaced {sorted(replaced)} (2 minutes after it)"
        time.sleep(2)
    print(f"old catalog pods gone {time.monotonic() - started:.0f} s after helm upgrade --wait", file=sys.stderr)
    assert catalog_rows(release) == CATALOG_ROWS


def test_the_jupyterlab_pod_comes_back_with_its_workspace(release):
    notebook = f"kept-{uuid.uuid4().hex[:8]}.ipynb"
    kubectl("-n", release, "exec", NOTEBOOK, "--", "bash", "-c",
            f"cp /opt/mlrt/examples/00-getting-started.ipynb /home/mlrt/work/{notebook}")  # fmt: skip
    old = kjson("-n", release, "get", "pod", NOTEBOOK)["metadata"]["uid"]
    started = time.monotonic()
    kubectl("-n", release, "delete", "pod", NOTEBOOK, "--wait=false")
    while True:
        pod = kubectl("-n", release, "get", "pod", NOTEBOOK, "-o", "json", check=False)
        if pod.returncode == 0 and '"uid": "' + old + '"' not in pod.stdout:
            ready = kubectl("-n", release, "wait", "--for=condition=Ready", f"pod/{NOTEBOOK}", "--timeout=300s")
            assert ready.returncode == 0
            break
        assert time.monotonic() - started < 300, "the JupyterLab pod did not come back"
        time.sleep(2)
    print(f"JupyterLab pod back and ready: {time.monotonic() - started:.0f} s", file=sys.stderr)
    kept = kubectl("-n", release, "exec", NOTEBOOK, "--", "ls", "/home/mlrt/work")
    assert notebook in kept.stdout.split(), kept.stdout


KEPT_CLAIMS = [
    f"workspace-{FULLNAME}-jupyter-0",
    # the hub's database, and each hub user's workspace (the team workspace test's two users)
    f"{FULLNAME}-hub",
    f"{FULLNAME}-workspace-alice",
    f"{FULLNAME}-workspace-bob",
    f"{FULLNAME}-lake",
    f"{FULLNAME}-objectstore",
    f"{FULLNAME}-catalog-db",
]


def test_uninstall_keeps_the_workspace_and_a_reinstall_reattaches_it(release):
    """`helm uninstall` leaves nothing but the kept claims (notebooks, tables, the catalog); the same release name
    installed again finds its notebooks in JupyterLab (NOTES say so; jupyter.workspace.deleteWithRelease opts out)
    and its tables by name."""
    notebook = f"kept-{uuid.uuid4().hex[:8]}.ipynb"
    kubectl("-n", release, "exec", f"{FULLNAME}-jupyter-0", "--", "bash", "-c",
            f"cp /opt/mlrt/examples/00-getting-started.ipynb /home/mlrt/work/{notebook}")  # fmt: skip
    # A `helm test` that helm stops waiting for leaves its pod running, on the event-log claim: the uninstall's
    # first step (templates/tests/cleanup-job.yaml) deletes it, or `--wait` would wait on that claim for ever.
    left = run(HELM, "test", RELEASE, "-n", release, "--timeout", "20s", check=False, timeout=120)
    kept = kubectl("-n", release, "get", "pod", f"{FULLNAME}-smoke-tests", check=False)
    assert left.returncode != 0 and kept.returncode == 0, left.stderr + kept.stderr
    run(HELM, "uninstall", RELEASE, "-n", release, "--wait", "--timeout", "5m", timeout=400)
    only_kept_claims_are_left(release, KEPT_CLAIMS, delete=False, users_own=USERS_OWN)
    install(release)
    token = secret_value(release, f"{FULLNAME}-jupyter", "token")  # a new release: a new generated token
    with port_forward(release, f"svc/{FULLNAME}-jupyter", 8888) as url:
        got = requests.get(f"{url}/api/contents/{notebook}", params={"token": token}, timeout=60)
    assert got.status_code == 200 and got.json()["type"] == "notebook", got.text[:500]
    # the catalog on its kept claim, with the database account the new release generated
    assert catalog_rows(release) == CATALOG_ROWS


def test_uninstall_leaves_nothing_behind(release):
    run(HELM, "uninstall", RELEASE, "-n", release, "--wait", "--timeout", "5m", timeout=400)
    only_kept_claims_are_left(release, KEPT_CLAIMS, users_own=USERS_OWN)
