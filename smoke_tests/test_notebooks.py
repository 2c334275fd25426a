"""The example notebooks shipped in the notebook image, executed headless (nbclient, one fresh kernel each) in the
driver's environment: any cell error fails. A notebook whose JVM packages the image lacks is skipped with the
jar lock's reason. The kernels are the image's own: they load mlrt.job_progress, so the Spark listener that feeds
the progress display is on in every session a notebook starts.

Every notebook must also have run on the cluster, not in the driver: once they have run, the history server must
list each one's Spark application (by its appName, started after the notebook) with tasks on
>= MLRT_SMOKE_MIN_EXECUTORS executor hosts. A smoke test marked `example` proves the same library as a notebook:
`make test` runs them on compose with three of the notebooks (`make smoke` runs all), `helm test` on Kubernetes."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import MIN_EXECUTORS, require_jars, tasks_by_host

EXAMPLES = Path(os.environ.get("MLRT_EXAMPLES_DIR", "/opt/mlrt/examples"))
CELL_TIMEOUT_S = int(os.environ.get("MLRT_NOTEBOOK_CELL_TIMEOUT_S", "600"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# Where a deployment cannot run them yet, it says why here (the Helm chart's test pod does: see its template).
NOT_HERE = os.environ.get("MLRT_SMOKE_NOTEBOOKS_SKIP", "")
HISTORY_URL = os.environ.get("MLRT_HISTORY_URL", "http://spark-history:18080")
HISTORY_WAIT_S = 120
RAN: dict[str, tuple[float, str]] = {}  # notebook -> (when it started, epoch ms; its Spark application's name)
pytestmark = pytest.mark.skipif(bool(NOT_HERE), reason=f"example notebooks not run here: {NOT_HERE}")


def test_examples_are_shipped():
    assert len(NOTEBOOKS) >= 19, f"example notebooks in {EXAMPLES}: {[p.name for p in NOTEBOOKS]}"


def test_smoke_tests_marked_example_name_a_shipped_notebook():
    here = Path(__file__).parent
    named = {m for f in here.glob("test_*.py") for m in re.findall(r'mark\.example\("([^"]+)"\)', f.read_text())}
    assert named, "no smoke test is marked example"
    missing = named - {p.stem for p in NOTEBOOKS}
    assert not missing, f"smoke tests marked example name notebooks that are not shipped: {sorted(missing)}"


def execute(notebook, cwd: Path, timeout: int) -> None:
    """Run every cell, as "Run All" does; dbutils.notebook.exit(value) ends the notebook there, as on Databricks."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    resources = {"metadata": {"path": str(cwd)}}
    try:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources).execute()
    except CellExecutionError as error:
        if error.ename != "NotebookExit":
            raise


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_example_notebook_runs(path, tmp_path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    require_jars(*notebook.metadata.get("mlrt", {}).get("requires_jvm_packages", []))
    started_ms = time.time() * 1000 - 1000
    try:
        execute(notebook, tmp_path, CELL_TIMEOUT_S)
    finally:
        # The executed copy, outputs included, for a look after a failure.
        nbformat.write(notebook, tmp_path / path.name)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    RAN[path.stem] = (started_ms, application_name(notebook))


def test_kernel_sessions_report_job_progress(tmp_path):
    """A plain SparkSession in a kernel has sparkmonitor's listener registered and its socket connected."""
    import nbformat

    code = (
        "import os\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('mlrt-job-progress').getOrCreate()\n"
        "print(spark.sparkContext.getConf().get('spark.extraListeners'))\n"
        "print(os.environ['SPARKMONITOR_KERNEL_PORT'])\n"
        "print(spark.range(1000).count())\n"
        "print('conf' in globals())\n"
        "spark.stop()\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    execute(notebook, tmp_path, 300)
    lines = "".join(o.get("text", "") for o in notebook.cells[0].outputs).split()
    assert lines[0] == "sparkmonitor.listener.JupyterSparkMonitorListener", lines
    assert lines[1].isdigit() and lines[2] == "1000", lines
    assert lines[3] == "False", "sparkmonitor's `conf` was left in the user's namespace"


def application_name(notebook) -> str:
    names = {n for c in notebook.cells if c.cell_type == "code" for n in re.findall(r'appName\("([^"]+)"\)', c.source)}
    assert len(names) == 1, f"an example names its Spark application once (.appName(...)); found {sorted(names)}"
    return names.pop()


def history(path: str):
    with urllib.request.urlopen(f"{HISTORY_URL}/api/v1/{path}", timeout=10) as response:
        return json.load(response)


def test_example_notebooks_ran_their_tasks_on_several_executors():
    """Read from the history server after the notebooks ran (it lists an application a few seconds after it ends):
    each executed notebook's application ran tasks on several executor hosts, none only in the driver."""
    if not RAN:
        pytest.skip("no example notebook ran in this session")
    deadline = time.monotonic() + HISTORY_WAIT_S
    while True:
        found = {}
        for app in history("applications?status=completed&limit=500"):
            for stem, (started_ms, name) in RAN.items():
                if app["name"] == name and app["attempts"][0]["startTimeEpoch"] >= started_ms:
                    found[stem] = app["id"]
        if len(found) == len(RAN) or time.monotonic() > deadline:
            break
        time.sleep(2)
    missing = sorted(set(RAN) - set(found))
    assert not missing, f"the history server at {HISTORY_URL} lists no finished application of {missing}"
    spread = {}
    for stem, app_id in sorted(found.items()):
        counts = tasks_by_host(history(f"applications/{app_id}/allexecutors"))
        spread[stem] = sorted(host for host, tasks in counts.items() if tasks > 0)
        print(f"{stem} ({app_id}): tasks on {spread[stem]}")
    narrow = {stem: hosts for stem, hosts in spread.items() if len(hosts) < MIN_EXECUTORS}
    assert not narrow, f"notebooks whose tasks ran on fewer than {MIN_EXECUTORS} executor hosts: {narrow}"
