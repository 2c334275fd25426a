"""spark-submit wrapper: bad input is refused with a message naming the fix, before anything is created."""

from __future__ import annotations

import pytest

from scripts import submit


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "job.py"
    path.write_text("print('hi')\n")
    return path


def run(capsys, *argv):
    code = submit.main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("target", ["compose", "k8s"])
def test_missing_application_file(capsys, tmp_path, target):
    code, err = run(capsys, target, str(tmp_path / "nope.py"))
    assert code == 2 and "does not exist" in err


def test_not_a_python_file(capsys, tmp_path):
    jar = tmp_path / "app.jar"
    jar.write_text("x")
    code, err = run(capsys, "compose", str(jar))
    assert code == 2 and "not a .py file" in err


@pytest.mark.parametrize("conf", ["executor.memory=2g", "spark.executor.memory", "spark.executor.memory="])
def test_invalid_conf(capsys, app, conf):
    code, err = run(capsys, "k8s", str(app), "--conf", conf)
    assert code == 2 and "spark.some.key=value" in err


def test_no_kubeconfig(capsys, app, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    code, err = run(capsys, "k8s", str(app), "--image", "registry.example.org/mlrt/ml:1")
    assert code == 2 and "no kubeconfig" in err and "KUBECONFIG" in err


def test_unreachable_cluster(capsys, app, tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    code, err = run(capsys, "k8s", str(app), "--image", "registry.example.org/mlrt/ml:1")
    assert code == 2 and "cannot reach the Kubernetes API at https://127.0.0.1:1" in err


def test_the_driver_image_is_the_releases_and_one_without_a_registry_must_be_here(monkeypatch):
    """The release publishes its ml image (image.registry and tag applied): a registry's is used as it is; one
    without a registry must be on this host (and the nodes), else the message names make build and make push."""
    assert submit.driver_image({"mlImage": "reg.example:5000/team/mlrt/ml:1.2"}) == "reg.example:5000/team/mlrt/ml:1.2"
    with pytest.raises(submit.BadInput) as refused:
        submit.driver_image({"mlImage": "mlrt/ml:not-built-0"})
    told = str(refused.value)
    assert "mlrt/ml:not-built-0 is not present" in told and "make build" in told
    assert "make push REGISTRY=" in told and "--set image.registry=" in told
    monkeypatch.setattr(submit.versions, "load", lambda: {"MLRT_VERSION": "not-built-1"})
    with pytest.raises(submit.BadInput, match="mlrt/ml:not-built-1 is not present"):
        submit.driver_image({})  # a release from before the chart published it


def test_submission_keeps_the_release_defaults_but_not_its_notebook_driver():
    release = (
        "spark.authenticate true\n"
        "spark.master k8s://https://kubernetes.default.svc:443\n"
        "spark.submit.deployMode client\n"
        "spark.driver.host mlrt-driver.ns.svc\n"
        "spark.kubernetes.driver.pod.name mlrt-jupyter-0\n"
        "# spark.master in a comment stays\n"
        "spark.executor.memory 2g\n"
    )
    kept = submit.submission_defaults(release)
    assert "spark.executor.memory 2g" in kept and "spark.authenticate true" in kept
    assert "deployMode" not in kept and "mlrt-jupyter-0" not in kept and "driver.host" not in kept
    assert "k8s://" not in kept and "# spark.master in a comment stays" in kept


def test_driver_template_mounts_the_app_and_event_log_and_gets_an_api_token():
    import yaml

    executor = "apiVersion: v1\nkind: Pod\nspec:\n  automountServiceAccountToken: false\n  containers:\n    - name: c\n"
    pod = yaml.safe_load(submit.driver_template(executor, "app-map", "mlrt-spark-events"))
    assert pod["spec"]["automountServiceAccountToken"] is True
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["mlrt-app"]["configMap"]["name"] == "app-map"
    assert volumes["spark-events"]["persistentVolumeClaim"]["claimName"] == "mlrt-spark-events"
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {"/opt/mlrt/app", "/opt/mlrt/spark-events"}


def test_make_submit_without_an_application_says_how_to_name_one():
    import os
    import subprocess

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("APP", "TARGET", "CONF")}
    done = subprocess.run(["make", "--no-print-directory", "submit"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "APP is not set: make submit APP=path/to/job.py" in done.stderr, done.stderr
