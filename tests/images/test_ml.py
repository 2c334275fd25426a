"""The ml image and its children: every framework at its pin, horovod built with both bindings."""

from __future__ import annotations

import json
import subprocess

import pytest

from .conftest import PINS, run

IMAGE = "ml"
MODULES = {  # import name -> versions.env key, in import order
    # torch and torchvision before TensorFlow: anything that loads triton's native library (torchvision,
    # torch.compile) after `import tensorflow` crashes the process (docs/ml-runtime.md, known issues).
    "torch": "TORCH_VERSION",
    "torchvision": "TORCHVISION_VERSION",
    "tensorflow": "TENSORFLOW_VERSION",
    "keras": "KERAS_VERSION",
    "tf_keras": "TF_KERAS_VERSION",
    "tensorboard": "TENSORBOARD_VERSION",
    "xgboost": "XGBOOST_VERSION",
    "sklearn": "SCIKIT_LEARN_VERSION",
    "mlflow": "MLFLOW_VERSION",
    "hyperopt": "HYPEROPT_VERSION",
    "horovod": "HOROVOD_VERSION",
    "pandas": "PANDAS_VERSION",
    "pyarrow": "PYARROW_VERSION",
    "pyspark": "PYSPARK_VERSION",
    # on the executors too: tasks from notebooks can reference IPython's classes
    "IPython": "IPYTHON_VERSION",
    # the modern stack
    "ray": "RAY_VERSION",
    "optuna": "OPTUNA_VERSION",
    "lightgbm": "LIGHTGBM_VERSION",
    "transformers": "TRANSFORMERS_VERSION",
    "accelerate": "ACCELERATE_VERSION",
    "deepspeed": "DEEPSPEED_VERSION",
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


MIGRATE = """
import boto3, os, pathlib
from mlrt.mlflow_server import copy_local_artifacts, destination
local = pathlib.Path("/tmp/old-artifacts")
(local / "1" / "run1" / "artifacts" / "model").mkdir(parents=True)
(local / "1" / "run1" / "artifacts" / "model" / "MLmodel").write_text("flavors: {}")
(local / "1" / "run1" / "artifacts" / "metrics.json").write_text("{}")
dest = destination(["--host=0.0.0.0", "--artifacts-destination", "s3://mlflow/artifacts"])
print("COPIED", copy_local_artifacts(local, dest))
print("AGAIN", copy_local_artifacts(local, dest))
s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
print("KEYS", sorted(o["Key"] for o in s3.list_objects_v2(Bucket="mlflow")["Contents"]))
try:
    copy_local_artifacts(pathlib.Path("/tmp/old-artifacts/1"), "s3://no-such-bucket/x")
except SystemExit as err:
    print("ERR", err)
"""


def test_mlflow_server_copies_artifacts_from_the_volume_into_the_store(image, tmp_path):
    """Runs from before the object store keep their artifacts: mlrt.mlflow_server copies the volume's files to
    the same keys under the S3 destination once (a real store), and names the fix when the bucket is missing."""
    from .conftest import objectstore

    with objectstore(f"mlrt/objectstore:{PINS['MLRT_VERSION']}", tmp_path) as (name, keys, _):
        done = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                f"container:{name}",
                "-v",
                f"{keys}:/keys:ro",
                "-e",
                "MLRT_S3_CREDENTIALS_DIR=/keys",
                "-e",
                "MLFLOW_S3_ENDPOINT_URL=http://127.0.0.1:8333",
                "-e",
                "AWS_DEFAULT_REGION=us-east-1",
                image,
                "python",
                "-c",
                MIGRATE,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    out = done.stdout
    assert "COPIED 2" in out and "AGAIN 0" in out, out + done.stderr[-2000:]
    assert "KEYS ['artifacts/1/run1/artifacts/metrics.json', 'artifacts/1/run1/artifacts/model/MLmodel']" in out
    assert "ERR mlflow-server: ERROR: copying the artifacts" in out and "Check that bucket no-such-bucket" in out


AUTH = r"""
import os, shutil, subprocess, sys, time
import requests
from mlflow import MlflowClient

URL = "http://127.0.0.1:5000"
API = URL + "/api/2.0/mlflow/experiments/search?max_results=5"
ENV = {**os.environ, "MLRT_MLFLOW_AUTH_DATABASE_URI": "sqlite:////tmp/auth.db"}


def serve(auth, env=ENV):
    if auth:
        env = {**env, "MLRT_MLFLOW_CREDENTIALS_DIR": "/tmp/account"}
    log = open("/tmp/server.log", "a")
    proc = subprocess.Popen([sys.executable, "-m", "mlrt.mlflow_server", "--host=127.0.0.1", "--port=5000",
                             "--backend-store-uri=sqlite:////tmp/mlflow.db", "--workers=1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            requests.get(URL + "/health", timeout=2)
            return proc
        except requests.ConnectionError:
            if proc.poll() is not None:
                return proc
            time.sleep(0.5)
    raise SystemExit("no server")


def stop(proc):
    proc.terminate()
    proc.wait(30)


os.makedirs("/tmp/account")
shutil.copy("/account/username", "/tmp/account/username")
shutil.copy("/account/password", "/tmp/account/password")
user, password = open("/tmp/account/username").read().strip(), open("/tmp/account/password").read().strip()

# Before authentication: a run in the store the server will use (logged straight into it, as a server without
# an account did: one server start fewer).
client = MlflowClient("sqlite:////tmp/mlflow.db")
run = client.create_run("0")
client.log_metric(run.info.run_id, "loss", 0.5)

proc = serve(auth=True)
print("ANON", requests.get(API, timeout=10).status_code)
print("WRONG", requests.get(API, auth=(user, "not-the-password"), timeout=10).status_code)
print("ADMIN", requests.get(API, auth=(user, password), timeout=10).status_code)
ui = [requests.get(URL + "/", auth=a, timeout=10).status_code for a in (None, (user, password))]
print("UI", *ui)
print("HEALTH", requests.get(URL + "/health", timeout=10).status_code)
os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, password
print("OLD RUN", MlflowClient(URL).get_run(run.info.run_id).data.metrics)
stop(proc)

# The file is the one source of the password: a new one replaces the old on the next start.
open("/tmp/account/password", "w").write(password + "-rotated")
proc = serve(auth=True)
print("OLD PASSWORD", requests.get(API, auth=(user, password), timeout=10).status_code)
print("NEW PASSWORD", requests.get(API, auth=(user, password + "-rotated"), timeout=10).status_code)
stop(proc)

# Credentials without a database for users: refused with the setting to fix.
env = {k: v for k, v in ENV.items() if k != "MLRT_MLFLOW_AUTH_DATABASE_URI"}
proc = serve(auth=True, env=env)
print("EXIT", proc.wait(30))
log = open("/tmp/server.log").read()
print("\n".join(line for line in log.splitlines() if line.startswith("mlflow-server:")))
print(log[-3000:])
"""


def test_mlflow_server_authenticates_every_request_and_keeps_runs_from_before(image, tmp_path):
    """With an account (MLRT_MLFLOW_CREDENTIALS_DIR) the server runs MLflow's basic-auth app: anonymous or wrong
    credentials get 401 on the API and the UI, /health stays open, a run logged before auth was on stays readable,
    the account's file is the one source of its password (changed there, changed on the next start), and a missing
    auth database is named."""
    if not image.startswith("mlrt/ml:"):
        pytest.skip("the MLflow server runs the ml image; its children carry the same module unchanged")
    account = tmp_path / "account"
    account.mkdir()
    (account / "username").write_text("admin\n")
    (account / "password").write_text("a-generated-password-0123456789\n")
    account.chmod(0o755)
    out = run(image, "python", "-c", AUTH, volumes={str(account): "/account"})
    assert "ANON 401" in out and "WRONG 401" in out and "ADMIN 200" in out, out[-3000:]
    assert "UI 401 200" in out and "HEALTH 200" in out, out[-3000:]
    assert "OLD RUN {'loss': 0.5}" in out, out[-3000:]
    assert "OLD PASSWORD 401" in out and "NEW PASSWORD 200" in out, out[-3000:]
    assert "admin account 'admin' created" in out and "admin account 'admin' password updated" in out, out[-3000:]
    assert "EXIT 1" in out and "MLRT_MLFLOW_AUTH_DATABASE_URI is not" in out, out[-3000:]


def test_connect_server_refuses_to_start_without_a_usable_token(image, tmp_path):
    """The Spark Connect server never starts open: no token file, an unreadable one or a short one is named."""
    missing = run(image, "python", "-m", "mlrt.connect_server", check=False)
    assert missing.returncode != 0 and "MLRT_CONNECT_TOKEN_FILE is not set" in missing.stderr, missing.stderr
    gone = run(image, "python", "-m", "mlrt.connect_server", check=False, env={"MLRT_CONNECT_TOKEN_FILE": "/nope"})
    assert gone.returncode != 0 and "MLRT_CONNECT_TOKEN_FILE=/nope cannot be read" in gone.stderr, gone.stderr
    (tmp_path / "token").write_text("short\n")
    tmp_path.chmod(0o755)
    (tmp_path / "token").chmod(0o644)
    short = run(
        image, "python", "-m", "mlrt.connect_server", check=False,
        env={"MLRT_CONNECT_TOKEN_FILE": "/t/token"}, volumes={str(tmp_path): "/t"},
    )  # fmt: skip
    assert short.returncode != 0 and "at least 16" in short.stderr, short.stderr


def test_deepspeed_uses_the_cpu_accelerator_without_a_gpu(image):
    """DeepSpeed's accelerator is chosen at run time: `cpu` (gloo) here, `cuda` where a GPU is visible."""
    out = run(image, "python", "-c", "from deepspeed.accelerator import get_accelerator as a; print(a()._name)")
    assert out.strip().splitlines()[-1] == "cpu", out


GPU_FACTS = """
import json, os, pathlib, site
import torch
import xgboost
info = xgboost.build_info()
import tensorflow as tf
tf_build = tf.sysconfig.get_build_info()
nvidia = pathlib.Path(site.getsitepackages()[0]) / "nvidia"
print(json.dumps({
    "torch_cuda": torch.version.cuda,
    "xgboost_cuda": info.get("USE_CUDA") and ".".join(map(str, info["CUDA_VERSION"])),
    "xgboost_nccl_dlopen": info.get("USE_DLOPEN_NCCL"),
    "tf_built_cuda": tf_build.get("cuda_version"),
    "cudart_majors": sorted({p.name.split(".so.")[1].split(".")[0] for p in nvidia.rglob("libcudart.so.*")}),
    "libnccl": [str(p.relative_to(nvidia)) for p in nvidia.rglob("libnccl.so*")],
}))
"""


def test_one_cuda_runtime_and_one_nccl_in_the_image(image):
    """What docs/gpu.md says the image carries: one CUDA runtime, torch's (13 from PyPI); XGBoost with its CUDA
    12.9 kernels built in and NCCL opened at run time (one libnccl for both); TensorFlow's wheel, built for CUDA
    12, with no CUDA 12 runtime to find, so on CPU unless TENSORFLOW_CUDA=yes locks its libraries."""
    facts = json.loads(run(image, "python", "-c", GPU_FACTS).strip().splitlines()[-1])
    cuda = "12" if PINS["TENSORFLOW_CUDA"] == "yes" else "13"  # yes: torch from a CUDA 12 build (docs/gpu.md)
    assert facts["torch_cuda"].startswith(f"{cuda}."), facts
    assert facts["xgboost_cuda"].startswith("12.") and facts["xgboost_nccl_dlopen"], facts
    assert facts["tf_built_cuda"].startswith("12."), facts
    assert facts["cudart_majors"] == [cuda], facts
    assert facts["libnccl"] == ["nccl/lib/libnccl.so.2"], "one NCCL for torch and XGBoost"


def test_gpu_discovery_script_answers_spark_with_the_gpus_it_sees(image):
    """Spark runs /opt/mlrt/bin/mlrt-gpu-discovery on GPU workers and executors; in a container without GPUs
    it answers an empty list (Spark then names the missing resource) rather than failing or inventing one."""
    out = run(image, "/opt/mlrt/bin/mlrt-gpu-discovery")
    assert json.loads(out) == {"name": "gpu", "addresses": []}


def test_a_gpu_worker_runs_the_discovery_script_and_without_gpus_names_the_missing_resource(image):
    """Spark itself runs the script (a standalone worker asked for one GPU) and parses its answer: in a container
    without GPUs the worker refuses to start, naming the resource, instead of offering a GPU it does not have."""
    opts = (
        "-Dspark.worker.resource.gpu.amount=1 "
        "-Dspark.worker.resource.gpu.discoveryScript=/opt/mlrt/bin/mlrt-gpu-discovery"
    )
    worker = "timeout 90 $SPARK_HOME/bin/spark-class org.apache.spark.deploy.worker.Worker spark://127.0.0.1:7077"
    done = run(image, "-c", f"{worker} 2>&1", entrypoint="bash", env={"SPARK_WORKER_OPTS": opts}, check=False)
    assert "Discovering resources for gpu with script: /opt/mlrt/bin/mlrt-gpu-discovery" in done.stdout, done.stdout
    assert "Resource: gpu, with addresses:  is less than what the user requested: 1" in done.stdout, done.stdout


RAY_USAGE = """
import ray._common.usage.usage_lib as usage
print("cloud", usage.get_cloud_from_metadata_requests.__module__, usage.get_cloud_from_metadata_requests())
print("report", usage.UsageReportClient.report_usage_data(None, "https://usage-stats.ray.io/", {}))
"""


def test_rays_usage_opt_out_sends_nothing(image):
    """RAY_USAGE_STATS_ENABLED=0 (the images' default): no cloud-metadata probe, no "disabled" report
    (mlrt.ray_usage; without network a probe would take its 1 s timeouts and answer "unknown" just the same, so
    the function itself is checked); =1 leaves Ray's own functions."""
    quiet = run(image, "python", "-c", RAY_USAGE)
    assert "cloud mlrt.ray_usage unknown" in quiet and "report None" in quiet, quiet
    code = "import ray._common.usage.usage_lib as u; print(u.UsageReportClient.report_usage_data.__module__)"
    opted_in = run(image, "python", "-c", code, env={"RAY_USAGE_STATS_ENABLED": "1"})
    assert "ray._common.usage.usage_lib" in opted_in, opted_in
