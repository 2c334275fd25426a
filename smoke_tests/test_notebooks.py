"""The example notebooks shipped in the notebook image, executed headless (nbclient, one fresh kernel each) in the
driver's environment: any cell error fails. A notebook whose JVM packages the image lacks is skipped with the
jar lock's reason. The kernels are the image's own: they load mlrt.job_progress, so the Spark listener that feeds
the progress display is on in every session a notebook starts.

Every notebook must also have run on the cluster, not in the driver: its Spark application's event log (the
driver's spark.eventLog.dir, the history server's folder) must show tasks on >= MLRT_SMOKE_MIN_EXECUTORS
executor hosts. A smoke test marked `example` proves the same library as a notebook; `make test` leaves those out on
compose, where the notebook runs, and `helm test` runs them on Kubernetes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from conftest import MIN_EXECUTORS, require_jars

EXAMPLES = Path(os.environ.get("MLRT_EXAMPLES_DIR", "/opt/mlrt/examples"))
CELL_TIMEOUT_S = int(os.environ.get("MLRT_NOTEBOOK_CELL_TIMEOUT_S", "600"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# Where a deployment cannot run them yet, it says why here (the Helm chart's test pod does: see its template).
NOT_HERE = os.environ.get("MLRT_SMOKE_NOTEBOOKS_SKIP", "")
EVENT_LOG_DIR = Path(os.environ.get("MLRT_EVENT_LOG_DIR", "/opt/mlrt/spark-events"))
pytestmark = pytest.mark.skipif(bool(NOT_HERE), reason=f"example notebooks not run here: {NOT_HERE}")


def test_examples_are_shipped():
    assert len(NOTEBOOKS) >= 18, f"example notebooks in {EXAMPLES}: {[p.name for p in NOTEBOOKS]}"


def test_smoke_tests_marked_example_name_a_shipped_notebook():
    import re

    here = Path(__file__).parent
    named = {m for f in here.glob("test_*.py") for m in re.findall(r'mark\.example\("([^"]+)"\)', f.read_text())}
    assert named, "no smoke test is marked example"
    missing = named - {p.stem for p in NOTEBOOKS}
    assert not missing, f"smoke tests marked example name notebooks that are not shipped: {sorted(missing)}"


def execute(notebook, cwd: Path, timeout: int) -> None:
    from nbclient import NotebookClient

    resources = {"metadata": {"path": str(cwd)}}
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources).execute()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_example_notebook_runs(path, tmp_path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    require_jars(*notebook.metadata.get("mlrt", {}).get("requires_jvm_packages", []))
    started_ms = time.time() * 1000
    try:
        execute(notebook, tmp_path, CELL_TIMEOUT_S)
    finally:
        # The executed copy, outputs included, for a look after a failure.
        nbformat.write(notebook, tmp_path / path.name)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    apps = applications_since(started_ms)
    assert apps, f"{path.name} started no Spark application with an event log in {EVENT_LOG_DIR}"
    for name, hosts in apps.items():
        print(f"{path.stem}: application {name!r} ran tasks on {sorted(hosts)}")
        assert len(hosts) >= MIN_EXECUTORS, (
            f"{path.name}: application {name!r} ran tasks on {sorted(hosts)}; want >= {MIN_EXECUTORS} executor hosts"
        )


def applications_since(started_ms: float) -> dict[str, set[str]]:
    """Name -> executor hosts that ran tasks, for every application whose event log says it started after
    started_ms (the smoke tests' own session started earlier)."""
    apps: dict[str, set[str]] = {}
    for log in EVENT_LOG_DIR.glob("*"):
        if not log.is_file() or log.stat().st_mtime * 1000 < started_ms:
            continue
        name, hosts = None, set()
        with log.open() as lines:
            for line in lines:
                if '"SparkListenerApplicationStart"' in line:
                    event = json.loads(line)
                    if event["Timestamp"] < started_ms:
                        break
                    name = event["App Name"]
                elif '"SparkListenerTaskEnd"' in line and name is not None:
                    hosts.add(json.loads(line)["Task Info"]["Host"])
        if name is not None:
            apps[name] = hosts
    return apps


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
