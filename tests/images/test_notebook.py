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
