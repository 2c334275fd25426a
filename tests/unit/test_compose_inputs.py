"""The compose file's own checks of .env and of a user's overrides, through `docker compose config` (nothing
starts): a missing value names `make up`, which writes it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    if shutil.which("docker")
    else True,
    reason="docker compose is not installed (make bootstrap installs it)",
)


def config(env_file, *extra: str, quiet: bool = True) -> subprocess.CompletedProcess:
    """`docker compose config` with this env file (and -f files in extra); quiet: only check, print nothing."""
    return subprocess.run(
        ["docker", "compose", "--env-file", str(env_file), *extra, "config", *(["-q"] if quiet else [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_env_file_without_the_image_tag_names_make_up(tmp_path):
    env = tmp_path / ".env"
    env.write_text("JUPYTER_TOKEN=x\n")
    done = config(env)
    assert done.returncode != 0 and "run make up once, it writes MLRT_VERSION to .env" in done.stderr, done.stderr


def test_an_env_file_without_the_jupyter_token_names_make_up(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MLRT_VERSION=0.1.0\n")
    done = config(env)
    assert done.returncode != 0 and "it generates JUPYTER_TOKEN in .env" in done.stderr, done.stderr


def test_an_override_file_with_an_unknown_key_is_refused(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MLRT_VERSION=0.1.0\nJUPYTER_TOKEN=x\n")
    override = tmp_path / "compose.override.yaml"
    override.write_text("services:\n  jupyter:\n    enviroment:\n      X: y\n")
    done = config(env, "-f", str(ROOT / "compose.yaml"), "-f", str(override))
    assert done.returncode != 0 and "enviroment" in done.stderr, done.stderr


def test_the_gpu_file_gives_workers_the_hosts_gpus_and_spark_their_discovery(tmp_path):
    """compose.gpu.yaml (`make up GPU=1`) on top of compose.yaml: NVIDIA device reservations on the workers, the
    ml image's discovery script and a GPU count in the workers' Spark options, one GPU per executor and per task
    in the notebook's sessions; the workers' other options are kept."""
    env = tmp_path / ".env"
    env.write_text("MLRT_VERSION=0.1.0\nJUPYTER_TOKEN=x\nMLRT_WORKER_GPUS=2\n")
    files = ["-f", str(ROOT / "compose.yaml"), "-f", str(ROOT / "compose.gpu.yaml")]
    done = config(env, *files, quiet=False)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    worker = services["spark-worker"]
    assert worker["deploy"]["replicas"] == 2
    device = worker["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    opts = worker["environment"]["SPARK_WORKER_OPTS"].split()
    assert "-Dspark.worker.resource.gpu.amount=2" in opts
    assert "-Dspark.worker.resource.gpu.discoveryScript=/opt/mlrt/bin/mlrt-gpu-discovery" in opts
    assert "-Dspark.ui.reverseProxyUrl=/spark-master" in opts
    submit = services["jupyter"]["environment"]["PYSPARK_SUBMIT_ARGS"].split()
    assert "spark.executor.resource.gpu.amount=1" in submit and "spark.task.resource.gpu.amount=1" in submit
    assert submit[-1] == "pyspark-shell"


@pytest.mark.parametrize(("line", "expected"), [("", "false"), ("MLRT_MLFLOW_JOBS=true\n", "true")])
def test_mlflow_server_jobs_are_off_unless_the_env_file_turns_them_on(tmp_path, line, expected):
    """MLflow's server jobs (a job runner and Huey consumers, ~1.8 GB busy) start only with MLRT_MLFLOW_JOBS=true."""
    env = tmp_path / ".env"
    env.write_text(f"MLRT_VERSION=0.1.0\nJUPYTER_TOKEN=x\n{line}")
    done = config(env, quiet=False)
    assert done.returncode == 0, done.stderr
    assert (
        yaml.safe_load(done.stdout)["services"]["mlflow"]["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]
        == expected
    )


def test_make_up_gpu_without_the_nvidia_runtime_says_what_to_install():
    """`make up GPU=1` checks Docker before it builds or starts anything; without GPU=1 the check is a no-op."""
    runtimes = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True)
    if '"nvidia"' in runtimes.stdout:
        pytest.skip("this Docker has the NVIDIA runtime: there is nothing to refuse")
    done = subprocess.run(["make", "gpu-check", "GPU=1"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout
    assert "Docker has no nvidia runtime. Install the NVIDIA driver and the NVIDIA Container Toolkit" in done.stderr
    assert subprocess.run(["make", "gpu-check"], cwd=ROOT, capture_output=True, timeout=60).returncode == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [("", "https://repo1.maven.org/maven2"), ("MLRT_MAVEN_REPOSITORIES=file:///srv/m2 https://m/2\n", None)],
)
def test_maven_repositories_reach_every_spark_container_at_run_time(tmp_path, line, expected):
    """Where --packages resolve from is the containers' environment (from .env or the shell), Maven Central
    unless told: not a build argument, so that changing it rebuilds no image."""
    env = tmp_path / ".env"
    env.write_text(f"MLRT_VERSION=0.1.0\nJUPYTER_TOKEN=x\n{line}")
    done = config(env, quiet=False)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    expected = expected or line.strip().split("=", 1)[1]
    for name in ("spark-master", "spark-worker", "jupyter", "spark-connect"):
        assert services[name]["environment"]["MLRT_MAVEN_REPOSITORIES"] == expected, name


def test_a_changed_account_in_the_env_file_changes_every_container_s_label(tmp_path):
    """Compose recreates a container only when its configuration changes, and secrets' content is not part of
    it: every service carries .env's accounts digest as a label, so a new password or key (a fresh clone's .env,
    a rotation) recreates the containers instead of leaving them on the old one."""
    from scripts import dotenv

    env = tmp_path / ".env"
    env.write_text("MLRT_CATALOG_DB_PASSWORD=first\n")
    labels = []
    for password in ("first", "second"):  # the same .env but for one password
        env.write_text(env.read_text().replace("_PASSWORD=first", f"_PASSWORD={password}"))
        dotenv.update(env)
        done = config(env, quiet=False)
        assert done.returncode == 0, done.stderr
        services = yaml.safe_load(done.stdout)["services"]
        labels.append({name: (s.get("labels") or {}).get("mlrt.accounts-digest") for name, s in services.items()})
    for name in labels[0]:
        assert labels[0][name] and labels[1][name] and labels[0][name] != labels[1][name], name
