"""The notebook image: JupyterLab (the driver) on the same Python environment as the executors, with the workspace
(proxied cluster UIs, Spark job progress, example notebooks) and no outbound calls."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid

import pytest

from tests.conftest import ROOT

from .conftest import PINS, run

IMAGE = "notebook"


def test_jupyterlab_version(image):
    assert (
        run(image, "python", "-c", "import jupyterlab; print(jupyterlab.__version__)").strip()
        == PINS["JUPYTERLAB_VERSION"]
    )


def test_empty_token_does_not_disable_authentication(image):
    script = (
        "import os, sys; sys.argv = ['x'];"
        "from traitlets.config import Config;"
        "os.environ['JUPYTER_TOKEN'] = '';"
        "exec(open('/etc/jupyter/jupyter_server_config.py').read(), {'get_config': Config});"
        "print('JUPYTER_TOKEN' in os.environ)"
    )
    assert run(image, "python", "-c", script, env={"MLRT_EXAMPLES_DIR": "/nonexistent"}).strip() == "False"


def test_default_command_is_jupyterlab_in_the_work_volume(image):
    out = run(image, "bash", "-c", "pwd; stat -c %u /home/mlrt/work")
    assert out.split() == ["/home/mlrt/work", "185"]


def test_workspace_extensions_are_installed_and_enabled(image):
    out = run(image, "bash", "-c", "jupyter server extension list 2>&1; jupyter labextension list 2>&1")
    for line in ("jupyter_server_proxy \x1b[32menabled", "sparkmonitor v" + PINS["SPARKMONITOR_VERSION"]):
        assert line in out, f"{line!r} missing:\n{out}"
    assert "@jupyterhub/jupyter-server-proxy v" + PINS["JUPYTER_SERVER_PROXY_VERSION"] in out


PROXIES = """
import json, os
from mlrt.workspace import proxied_servers
servers = proxied_servers()
def icon(entry):  # the launcher tile's icon: an SVG file the image ships
    path = entry.icon_path
    return bool(path) and os.path.isfile(path) and open(path).read().lstrip().startswith("<svg")
print(json.dumps({n: [getattr(s, "host", "localhost"), s.port, s.launcher_entry.title, icon(s.launcher_entry)]
                  for n, s in servers.items()}))
"""


def test_proxied_uis_follow_the_environment(image):
    env = {
        "MLRT_HISTORY_URL": "http://spark-history:18080",
        "MLFLOW_TRACKING_URI": "http://mlflow:5000",
        "MLRT_SPARK_MASTER_UI_URL": "http://spark-master:8080/",
    }
    servers = json.loads(run(image, "python", "-c", PROXIES, env=env).strip().splitlines()[-1])
    assert servers == {
        "spark-ui": ["localhost", 4040, "Spark UI", True],
        "spark-history": ["spark-history", 18080, "Spark history", True],
        "mlflow": ["mlflow", 5000, "MLflow", True],
        "spark-master": ["spark-master", 8080, "Spark master", True],
    }
    # A file-based MLflow store has no UI to proxy; nothing else is configured.
    alone = json.loads(
        run(image, "python", "-c", PROXIES, env={"MLFLOW_TRACKING_URI": "file:///tmp/m"}).splitlines()[-1]
    )
    assert list(alone) == ["spark-ui"]


def test_a_bad_ui_url_names_the_variable(image):
    result = run(image, "python", "-c", PROXIES, env={"MLRT_HISTORY_URL": "spark-history:18080"}, check=False)
    assert result.returncode != 0 and "MLRT_HISTORY_URL=spark-history:18080 is not an http(s)" in result.stderr


def test_kernels_load_the_job_progress_extension(image):
    out = run(image, "bash", "-c", "cat /etc/ipython/ipython_kernel_config.py; ls /opt/mlrt/examples")
    assert "mlrt.job_progress" in out
    assert "00-getting-started.ipynb" in out


HTTP = """
import sys, urllib.error, urllib.request
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None
request = urllib.request.Request("http://localhost:8888" + sys.argv[1])
if len(sys.argv) > 2:
    request.add_header("Authorization", "token " + sys.argv[2])
try:
    with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
        print(response.status); print(response.read().decode())
except urllib.error.HTTPError as err:
    print(err.code); print(err.read().decode())
"""


def http(name: str, path: str, token: str | None = "t0ken") -> tuple[int, str]:
    """GET path from JupyterLab inside the container (it has no network): status and body, redirects not followed."""
    out = subprocess.run(
        ["docker", "exec", name, "python", "-c", HTTP, path, *([token] if token else [])],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    status, _, body = out.stdout.partition("\n")
    return int(status or 0), body


def wait_up(name: str) -> None:
    deadline = time.monotonic() + 90
    while http(name, "/api", None)[0] != 200:
        assert time.monotonic() < deadline, subprocess.run(["docker", "logs", name], capture_output=True).stderr
        time.sleep(1)


@pytest.fixture
def lab(image, tmp_path):
    """JupyterLab started by the image's default command on a fresh work volume, without any network."""
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    mine = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5, "mine": true}'
    (work / "examples" / "01-pyspark-ml.ipynb").write_text(mine)
    subprocess.run(["chown", "-R", "185:185", str(work)], check=True)
    name = f"mlrt-lab-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "none", "-e", "JUPYTER_TOKEN=t0ken",
         "-v", f"{work}:/home/mlrt/work", image],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        wait_up(name)
        yield name, work, mine
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def test_examples_are_copied_once_and_never_over_a_users_file(lab):
    name, work, mine = lab
    copied = sorted(p.name for p in (work / "examples").glob("*.ipynb"))
    assert "00-getting-started.ipynb" in copied and len(copied) >= 13, copied
    assert (work / "examples" / "01-pyspark-ml.ipynb").read_text() == mine, "a user's file was overwritten"
    # Deleted by the user: not copied again on the next start.
    subprocess.run(["docker", "exec", name, "rm", "/home/mlrt/work/examples/02-pandas-on-spark.ipynb"], check=True)
    subprocess.run(["docker", "restart", name], check=True, capture_output=True)
    wait_up(name)
    assert not (work / "examples" / "02-pandas-on-spark.ipynb").exists()


def test_no_news_no_update_checks_no_extension_listing(lab):
    name, _, _ = lab
    assert json.loads(http(name, "/lab/api/news")[1]) == {"news": []}
    assert json.loads(http(name, "/lab/api/update")[1]) == {"notification": None}
    page = http(name, "/lab")[1]
    assert "@jupyterlab/apputils-extension:announcements" in page, "the news prompt's plugin is not disabled"
    assert '"extensionManager": {"can_install": false' in page or "readonly" in page


def test_proxy_routes_answer_behind_the_login(lab):
    name, _, _ = lab
    code = http(name, "/spark-ui/", None)[0]
    assert code in (302, 403), f"the Spark UI route answered {code} without a token"
    assert http(name, "/spark-ui/")[0] == 503
    assert "No Spark application is running in this container" in http(name, "/spark-ui/")[1]


CULL = """
import json, time, urllib.request
def call(method, path):
    request = urllib.request.Request("http://localhost:8888" + path, method=method,
                                     headers={"Authorization": "token t0ken"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)
kernel = call("POST", "/api/kernels")["id"]
started = time.monotonic()
while any(k["id"] == kernel for k in call("GET", "/api/kernels")):
    if time.monotonic() - started > 60:
        raise SystemExit("the idle kernel was not shut down in 60 s")
    time.sleep(1)
print(f"idle kernel shut down after {time.monotonic() - started:.0f} s")
"""


def test_an_idle_kernel_is_shut_down_and_gives_its_session_back(image):
    """MLRT_KERNEL_IDLE_TIMEOUT_S (default an hour) culls idle kernels, whose Spark sessions end with them."""
    name = f"mlrt-lab-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "none", "-e", "JUPYTER_TOKEN=t0ken",
         "-e", "MLRT_KERNEL_IDLE_TIMEOUT_S=4", image],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        wait_up(name)
        out = subprocess.run(
            ["docker", "exec", name, "python", "-c", CULL], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0 and "shut down after" in out.stdout, out.stdout + out.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    bad = run(image, "jupyter", "lab", env={"MLRT_KERNEL_IDLE_TIMEOUT_S": "1h"}, check=False, timeout=120)
    assert bad.returncode != 0 and "MLRT_KERNEL_IDLE_TIMEOUT_S=1h is not a number of seconds" in bad.stderr


LINKS = """
from mlflow.tracking._tracking_service import client
from mlrt import mlflow_links
print("wired", getattr(client.TrackingServiceClient._log_url, "_mlrt", False))
print(mlflow_links.proxied("http://mlflow:5000/"), mlflow_links.proxied("http://elsewhere:5000"))
print(mlflow_links.links_html("3", "abc", "first-run", {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann"}))
"""


def test_mlflow_run_links_open_through_jupyterlab(image):
    """Kernels wire MLflow's "View run" links when a cell first imports MLflow (not at start: it takes seconds);
    the links are relative to JupyterLab's base URL, under its /mlflow/ proxy, for the proxied server only."""
    out = run(
        image, "ipython", "--ext", "mlrt.mlflow_links", "-c", LINKS, env={"MLFLOW_TRACKING_URI": "http://mlflow:5000"}
    )
    assert "wired True" in out and "True False" in out, out
    assert 'href="/user/ann/mlflow/#/experiments/3/runs/abc"' in out, out
    assert "mlrt.mlflow_links" in run(image, "cat", "/etc/ipython/ipython_kernel_config.py")


def test_the_image_carries_the_checkouts_smoke_tests_for_helm_test(image):
    """/opt/mlrt/smoke-tests holds smoke_tests/*.py as built (`helm test` runs them; the chart cannot carry files
    from outside itself)."""
    listing = run(image, "bash", "-c", "cd /opt/mlrt/smoke-tests && sha256sum *.py")
    shipped = dict(reversed(line.split()) for line in listing.strip().splitlines())
    here = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "smoke_tests").glob("*.py")}
    assert shipped == here, "the image's smoke tests differ from the checkout's: run make build"


# ---- dbutils and jobs (mlrt.dbutils, mlrt.jobs): real kernels, papermill, a local Spark session ----------------------
# dbutils.fs's calls over a local Spark session's file system (the clusters' tests use s3a://), and the widgets
# the example does not use.
FS_CELL = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
d = "file:/tmp/fs-test"
print("mkdirs", dbutils.fs.mkdirs(d + "/a/b"))
dbutils.fs.put(d + "/a/one.txt", "hello fs")
try:
    dbutils.fs.put(d + "/a/one.txt", "again")
except FileExistsError as e:
    print("FileExistsError", e)
print("cp", dbutils.fs.cp(d + "/a/one.txt", d + "/two.txt"))
print("mv", dbutils.fs.mv(d + "/two.txt", d + "/a/b/three.txt"))
try:
    dbutils.fs.cp(d + "/a", d + "/c")
except Exception as e:
    print(type(e).__name__, e)
print("cp -r", dbutils.fs.cp(d + "/a", d + "/c", recurse=True))
print("ls", [f.name for f in dbutils.fs.ls(d)], [f.name for f in dbutils.fs.ls(d + "/c/b")])
print("head", dbutils.fs.head(d + "/c/b/three.txt", 5))
print("rm", dbutils.fs.rm(d + "/c", recurse=True), dbutils.fs.rm(d + "/nothing"))
print("after", [f.name for f in dbutils.fs.ls(d)])
"""
WIDGETS_CELL = """
dbutils.widgets.combobox("color", "teal", ["red", "blue"], "Color")
dbutils.widgets.multiselect("days", "mon", ["mon", "tue", "wed"])
dbutils.widgets.dropdown("size", "s", ["s", "m"])
print("all", sorted(dbutils.widgets.getAll().items()))
dbutils.widgets.remove("size")
print("getArgument", dbutils.widgets.getArgument("size", "gone"))
dbutils.library.restartPython()
"""
# An app job: spark-submit (client mode here, the driver in the runner's container), parameters through dbutils.
APP = """
from pyspark.sql import SparkSession
from mlrt import dbutils
spark = SparkSession.builder.getOrCreate()
rows = int(dbutils.widgets.get("rows"))
assert spark.range(rows).count() == rows
print("APP", spark.sparkContext.appName, rows)
"""
JOBS_SCRIPT = (
    f"FS_CELL, WIDGETS_CELL, APP = {FS_CELL!r}, {WIDGETS_CELL!r}, {APP!r}\n"
    + r"""
import json, os, subprocess, sys, time
from pathlib import Path

import nbformat
import psutil

ws = Path("/tmp/ws")
(ws / "nb").mkdir(parents=True)
scope = Path("/tmp/secrets/demo")
scope.mkdir(parents=True)
(scope / "token").write_text("s3cr3t-t0ken-value\n")
(ws / "nb" / "demo.ipynb").write_text(Path("/opt/mlrt/examples/20-dbutils-and-jobs.ipynb").read_text())

def notebook(name, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, ws / "nb" / name)

notebook("flaky.ipynb", "raise ValueError('boom: ' + dbutils.widgets.get('what'))")
notebook("hang.ipynb", "from pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()",
         "import time\ntime.sleep(600)")
notebook("child.ipynb", "dbutils.widgets.text('x', '1')", "dbutils.notebook.exit(int(dbutils.widgets.get('x')) * 2)",
         "raise AssertionError('not reached')")
notebook("parent.ipynb", "print('child said', dbutils.notebook.run('child', 120, {'x': '21'}))",
         "try:\n    dbutils.widgets.get('nope')\nexcept Exception as e:\n    print(type(e).__name__, e)",
         "try:\n    dbutils.secrets.get('nope', 'k')\nexcept Exception as e:\n    print(type(e).__name__, e)",
         "try:\n    dbutils.fs.mount('s3a://x', '/mnt/x')\nexcept NotImplementedError as e:\n"
         "    print('NotImplementedError', e)",
         FS_CELL, WIDGETS_CELL)
(ws / "nb" / "app.py").write_text(APP)
(ws / "jobs.yaml").write_text('''
jobs:
  - {name: demo, notebook: nb/demo.ipynb, parameters: {name: t1, rows: "100"}, timeoutSeconds: 240}
  - {name: flaky, notebook: nb/flaky.ipynb, parameters: {what: x}, maxRetries: 1, minRetryIntervalSeconds: 0}
  - {name: hang, notebook: nb/hang.ipynb, timeoutSeconds: 25}
  - {name: parent, notebook: nb/parent.ipynb, timeoutSeconds: 200}
  - {name: app, app: nb/app.py, parameters: {rows: "42"}, timeoutSeconds: 200}
''')
(ws / "bad.yaml").write_text('''
jobs:
  - {name: a, notebook: nb/demo.ipynb, schedule: {cron: "61 * * *"}}
  - {name: b, notebook: nb/missing.ipynb}
  - {name: c, notebook: nb/demo.ipynb, schedule: {cron: "0 6 * * *", timezone: Mars/Olympus}}
  - {name: d, notebook: nb/demo.ipynb, concurrencyPolicy: Sometimes}
  - {name: e, notebook: nb/demo.ipynb, schedule: {cron: "*/5 * * * *", timezone: Europe/Berlin}}
''')
env = {**os.environ, "MLRT_WORKSPACE_DIR": str(ws), "MLRT_SECRETS_DIR": "/tmp/secrets",
       "MLFLOW_TRACKING_URI": "sqlite:////tmp/mlflow.db",
       "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.sql.warehouse.dir=file:/tmp/ws/warehouse pyspark-shell"}
out = {}
def mlrt_jobs(*args):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mlrt.jobs", *args], env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    return {"code": done.returncode, "run": json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None,
            "stderr": done.stderr[-3000:], "stdout": done.stdout[-2000:], "seconds": time.monotonic() - started}
def job(name):
    result = mlrt_jobs("run", name, *(["--param", "rows=1000"] if name == "demo" else []))
    run = result["run"]
    if run and run["output"].endswith(".ipynb") and Path(run["output"]).exists():
        result["notebook"] = Path(run["output"]).read_text()
    if run and run["output"].endswith(".log") and Path(run["output"]).exists():
        result["applog"] = Path(run["output"]).read_text()[-5000:]
    return result
def interactive():  # the example as JupyterLab's Run All runs it: the widgets' defaults, no job
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    nb = nbformat.read("/opt/mlrt/examples/20-dbutils-and-jobs.ipynb", as_version=4)
    for key in ("MLRT_WORKSPACE_DIR", "MLRT_SECRETS_DIR", "PYSPARK_SUBMIT_ARGS"):
        os.environ[key] = env[key]
    try:
        NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": "/tmp"}}).execute()
        ended = "no exit"
    except CellExecutionError as error:
        ended = error.ename
    return {"ended": ended, "text": json.dumps([o for c in nb.cells for o in c.get("outputs", [])])}
import mlflow
from concurrent.futures import ThreadPoolExecutor
mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
mlflow.search_experiments()  # the store's tables made once, before the runs use it at the same time
with ThreadPoolExecutor(6) as pool:  # runs at once, as a scheduler may start them
    names = ("demo", "flaky", "hang", "parent", "app")
    futures = {name: pool.submit(job, name) for name in names}
    futures["interactive"] = pool.submit(interactive)
    out.update({name: f.result() for name, f in futures.items()})
out["check"] = mlrt_jobs("check", str(ws / "bad.yaml"))
out["unknown"] = mlrt_jobs("run", "nope")
time.sleep(3)  # a finished kernel's Spark driver JVM exits on its own right after
out["left"] = [" ".join(p.cmdline())[:200] for p in psutil.process_iter(["cmdline"])
               if p.pid not in (1, os.getpid())
               and any(w in " ".join(p.info["cmdline"] or []) for w in ("ipykernel", "SparkSubmit"))]
runs = mlflow.search_runs(experiment_names=["/jobs/demo", "/jobs/flaky", "/jobs/hang"], output_format="list")
out["mlflow"] = [{"tags": {k: v for k, v in r.data.tags.items() if k.startswith("mlrt.")}, "params": r.data.params,
                  "status": r.info.status,
                  "artifacts": [a.path for a in mlflow.MlflowClient().list_artifacts(r.info.run_id, "job-run")]}
                 for r in runs]
print(json.dumps(out))
"""
)


@pytest.fixture(scope="module")
def jobs_run(image):
    result = run(image, "python", "-c", JOBS_SCRIPT, timeout=600)
    return json.loads(result.strip().splitlines()[-1])


def test_a_notebook_job_runs_with_its_parameters_secrets_redacted_and_an_mlflow_run(jobs_run):
    demo = jobs_run["demo"]
    assert demo["code"] == 0, demo
    run = demo["run"]
    assert run["status"] == "SUCCEEDED" and run["parameters"] == {"name": "t1", "rows": "1000"}, run
    assert json.loads(run["exit_value"])["rows"] == 1000, run
    saved = demo["notebook"]
    assert "s3cr3t-t0ken-value" not in saved and "is [REDACTED] (18 characters)" in saved
    assert "writing 1000 rows as t1" in saved
    record = next(r for r in jobs_run["mlflow"] if r["tags"]["mlrt.job"] == "demo")
    assert record["status"] == "FINISHED" and record["params"] == {"name": "t1", "rows": "1000"}
    assert record["tags"]["mlrt.job.status"] == "SUCCEEDED"
    assert any(a.endswith(".ipynb") for a in record["artifacts"]), record


def test_the_example_runs_as_run_all_does_with_its_widgets_defaults(jobs_run):
    run_all = jobs_run["interactive"]
    assert run_all["ended"] == "NotebookExit", run_all["text"][-3000:]
    assert "writing 1000 rows as dbutils-demo" in run_all["text"] and "Notebook exited: " in run_all["text"]
    assert "no secret scope 'demo' here" not in run_all["text"]  # MLRT_SECRETS_DIR holds the scope demo


def test_a_failing_job_is_retried_and_its_run_shows_the_error(jobs_run):
    run = jobs_run["flaky"]["run"]
    assert jobs_run["flaky"]["code"] == 1 and run["status"] == "FAILED", jobs_run["flaky"]
    assert [a["status"] for a in run["attempts"]] == ["FAILED", "FAILED"]
    assert run["error"].startswith("ValueError: boom: x"), run["error"]
    assert "boom: x" in jobs_run["flaky"]["notebook"]
    record = next(r for r in jobs_run["mlflow"] if r["tags"]["mlrt.job"] == "flaky")
    assert record["status"] == "FAILED" and "boom" in record["tags"]["mlrt.job.error"]


def test_a_timeout_stops_a_hung_job_with_its_kernel_and_spark_driver(jobs_run):
    hang = jobs_run["hang"]
    assert hang["run"]["status"] == "TIMEDOUT" and "timeout of 25 s" in hang["run"]["error"], hang
    assert hang["seconds"] < 60, hang["seconds"]
    assert jobs_run["left"] == [], "processes left behind: " + "; ".join(jobs_run["left"])
    record = next(r for r in jobs_run["mlflow"] if r["tags"]["mlrt.job"] == "hang")
    assert record["status"] == "KILLED"


def test_notebook_run_returns_the_child_s_exit_value_and_bad_calls_name_the_fix(jobs_run):
    parent = jobs_run["parent"]
    assert parent["code"] == 0, parent
    saved = parent["notebook"]
    assert "child said 42" in saved
    assert "InputWidgetNotDefined no input widget named 'nope'" in saved and "dbutils.widgets.text('nope'" in saved
    assert "no secret scope 'nope' (scopes here: demo)" in saved and "make secret SCOPE=nope" in saved
    assert "NotImplementedError dbutils.fs.mount has no meaning in mlrt" in saved
    # fs: mkdirs, put (and its refusal to overwrite), cp, mv, cp of a directory (refused, then recurse), ls, head, rm
    for line in (
        "mkdirs True",
        "FileExistsError dbutils.fs.put: file:/tmp/fs-test/a/one.txt exists; pass overwrite",
        "cp True",
        "mv True",
        "DbutilsError dbutils.fs.cp: file:/tmp/fs-test/a is a directory; pass recurse",
        "cp -r True",
        "ls ['a/', 'c/'] ['three.txt']",
        "head hello",
        "rm True False",
        "after ['a/']",
    ):
        assert line in saved, line
    assert "all [('color', 'teal'), ('days', 'mon'), ('size', 's')]" in saved and "getArgument gone" in saved
    assert "libraries installed with %pip are importable already" in saved


def test_an_app_job_runs_with_spark_submit_and_reads_its_parameters(jobs_run):
    app = jobs_run["app"]
    assert app["code"] == 0 and app["run"]["status"] == "SUCCEEDED", app
    assert app["run"]["output"].endswith(".log"), app["run"]
    assert "APP job app " in app["applog"] and " 42" in app["applog"], app["applog"][-2000:]


def test_a_bad_jobs_file_gets_one_error_per_job_naming_the_fix(jobs_run):
    check = jobs_run["check"]
    assert check["code"] == 1
    errors = [line for line in check["stderr"].splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, check["stderr"]
    assert "schedule.cron '61 * * *' is not a cron expression" in errors[0] and "minute hour" in errors[0]
    assert "'nb/missing.ipynb' is not a .ipynb file in the workspace" in errors[1]
    assert "'Mars/Olympus' is not a time zone" in errors[2]
    assert "concurrencyPolicy 'Sometimes' is not one of Allow, Forbid, Replace" in errors[3]
    assert "e: nb/demo.ipynb; cron '*/5 * * * *' Europe/Berlin" in check["stdout"]
    assert jobs_run["unknown"]["code"] == 2 and "no job 'nope'" in jobs_run["unknown"]["stderr"]
