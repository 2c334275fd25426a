"""The ml image and its children: every framework at its pin, horovod built with both bindings."""

from __future__ import annotations

import json

import pytest

from .conftest import PINS, run

IMAGE = "ml"
MODULES = {  # import name -> versions.env key
    "tensorflow": "TENSORFLOW_VERSION",
    "keras": "KERAS_VERSION",
    "tf_keras": "TF_KERAS_VERSION",
    "tensorboard": "TENSORBOARD_VERSION",
    "torch": "TORCH_VERSION",
    "xgboost": "XGBOOST_VERSION",
    "sklearn": "SCIKIT_LEARN_VERSION",
    "mlflow": "MLFLOW_VERSION",
    "hyperopt": "HYPEROPT_VERSION",
    "horovod": "HOROVOD_VERSION",
    "pandas": "PANDAS_VERSION",
    "pyarrow": "PYARROW_VERSION",
    "pyspark": "PYSPARK_VERSION",
}
DISTRIBUTIONS = {  # distribution name -> versions.env key (packages without a usable __version__)
    "joblibspark": "JOBLIBSPARK_VERSION",
    "spark-tensorflow-distributor": "SPARK_TENSORFLOW_DISTRIBUTOR_VERSION",
    "graphframes-py": "GRAPHFRAMES_PY_VERSION",
    "mleap": "MLEAP_VERSION",
}


@pytest.fixture(scope="module")
def found(image):
    script = (
        "import importlib, json; from importlib import metadata;"
        f"mods = {list(MODULES)!r}; dists = {list(DISTRIBUTIONS)!r};"
        "out = {m: importlib.import_module(m).__version__ for m in mods};"
        "out.update({d: metadata.version(d) for d in dists}); print(json.dumps(out))"
    )
    return json.loads(run(image, "python", "-c", script).strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(MODULES) + list(DISTRIBUTIONS))
def test_framework_at_its_pin(found, name):
    key = MODULES.get(name) or DISTRIBUTIONS[name]
    assert found[name].split("+")[0] == PINS[key], f"{name} {found[name]}, versions.env {key}={PINS[key]}"


def test_horovod_has_tensorflow_torch_and_gloo(image):
    out = run(image, "horovodrun", "--check-build")
    for line in ("[X] TensorFlow", "[X] PyTorch", "[X] Gloo"):
        assert line in out, out


def test_tf_keras_is_legacy_keras_and_keras_is_keras3(image):
    out = run(image, "python", "-c", "import tensorflow as tf, keras; print(tf.keras.__name__, keras.__version__)")
    name, version = out.split()[-2:]
    assert name.startswith("tf_keras") and version.startswith("3.")


def test_horovod_runner_api_is_importable(image):
    out = run(image, "python", "-c", "from sparkdl import HorovodRunner; HorovodRunner(np=0)", check=False)
    assert out.returncode != 0 and "np=0 is not allowed" in out.stderr


def test_horovod_is_an_installed_distribution(image):
    script = (
        "from importlib import metadata; import sysconfig, pathlib;"
        "site = pathlib.Path(sysconfig.get_paths()['purelib']);"
        "print(metadata.version('horovod'), (site / 'METADATA').exists())"
    )
    assert run(image, "python", "-c", script).split()[-2:] == [PINS["HOROVOD_VERSION"], "False"]


def test_horovod_libraries_are_stripped(image):
    sizes = run(image, "bash", "-c", "find /opt/mlrt/venv -path '*horovod*' -name '*.so' -printf '%s\\n'")
    assert sizes.split() and max(int(s) for s in sizes.split()) < 20_000_000, f"unstripped horovod: {sizes}"
