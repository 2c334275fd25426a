"""The example notebooks shipped in the notebook image, executed headless (nbclient, one fresh kernel each) in the
driver's environment: any cell error fails. A notebook whose JVM packages the image lacks is skipped with the
jar lock's reason. The kernels are the image's own: they load mlrt.job_progress, so the Spark listener that feeds
the progress display is on in every session a notebook starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import require_jars

EXAMPLES = Path(os.environ.get("MLRT_EXAMPLES_DIR", "/opt/mlrt/examples"))
CELL_TIMEOUT_S = int(os.environ.get("MLRT_NOTEBOOK_CELL_TIMEOUT_S", "600"))
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# Where a deployment cannot run them yet, it says why here (the Helm chart's test pod does: see its template).
NOT_HERE = os.environ.get("MLRT_SMOKE_NOTEBOOKS_SKIP", "")
pytestmark = pytest.mark.skipif(bool(NOT_HERE), reason=f"example notebooks not run here: {NOT_HERE}")


def test_examples_are_shipped():
    assert len(NOTEBOOKS) >= 18, f"example notebooks in {EXAMPLES}: {[p.name for p in NOTEBOOKS]}"


def execute(notebook, cwd: Path, timeout: int) -> None:
    from nbclient import NotebookClient

    resources = {"metadata": {"path": str(cwd)}}
    NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources=resources).execute()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_example_notebook_runs(path, tmp_path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    require_jars(*notebook.metadata.get("mlrt", {}).get("requires_jvm_packages", []))
    try:
        execute(notebook, tmp_path, CELL_TIMEOUT_S)
    finally:
        # The executed copy, outputs included, for a look after a failure.
        nbformat.write(notebook, tmp_path / path.name)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]


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
