"""The example notebooks shipped in the notebook image: clean (no outputs), runnable by the image's kernel, one per
framework the runtime ships. The smoke tests execute them on the cluster (smoke_tests/test_notebooks.py)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

EXAMPLES = ROOT / "images" / "notebook" / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
# What the examples must cover: a word each notebook's file name carries.
TOPICS = ["getting-started", "pyspark-ml", "pandas-on-spark", "joblibspark", "hyperopt", "xgboost", "torch-distributor",
          "mirrored-strategy", "horovod", "mlflow-spark-udf", "delta", "graphframes", "mleap",
          "ray-on-spark", "optuna-mlflow-spark-study", "lightgbm", "deepspeed", "transformers",
          "table-catalog", "libraries", "dbutils-and-jobs"]  # fmt: skip


def test_every_topic_has_a_notebook():
    names = [p.stem for p in NOTEBOOKS]
    for topic in TOPICS:
        assert any(topic in n for n in names), f"no example notebook for {topic}: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path):
    notebook = json.loads(path.read_text())
    assert notebook["nbformat"] == 4 and notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code), "commit without outputs"
    assert notebook["cells"][0]["cell_type"] == "markdown", "the first cell says what the notebook shows"
    requires = notebook["metadata"].get("mlrt", {}).get("requires_jvm_packages", [])
    pins = (ROOT / "versions.env").read_text()
    for key in requires:
        assert f"\n{key}=" in pins, f"{path.name} requires {key}, which versions.env does not define"
