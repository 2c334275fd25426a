"""The chart's Spark component (templates/spark/): the shared Spark defaults, the drivers' namespaced, minimal RBAC."""

from __future__ import annotations

import pytest

from tooling import k8s, versions

from .chart import check_rbac_namespaced_and_minimal, conf, env_of, executor_template, pod_specs, render


def test_rbac_is_namespaced_and_minimal(docs):
    check_rbac_namespaced_and_minimal(docs)


def test_spark_defaults_come_from_the_shared_file(docs):
    shared = (versions.ROOT / "images/spark/conf/spark-defaults.conf").read_text().strip()
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and "spark-defaults.conf" in d.get("data", {}))
    assert shared in conf["data"]["spark-defaults.conf"]
    assert f"spark.kubernetes.namespace                       {k8s.NAMESPACE}" in conf["data"]["spark-defaults.conf"]


def test_gpu_executors_request_their_gpus_and_discover_them_with_the_images_script():
    """spark.executor.gpus: each executor pod asks the device plugin for nvidia.com/gpu and Spark schedules
    tasks on the GPUs the ml image's discovery script finds in it (tests/images/test_ml.py runs the script)."""
    docs = render("spark.executor.gpus=2")
    lines = dict(line.split(None, 1) for line in conf(docs).splitlines() if line.strip() and not line.startswith("#"))
    assert lines["spark.executor.resource.gpu.amount"] == "2"
    assert lines["spark.executor.resource.gpu.vendor"] == "nvidia.com"
    assert lines["spark.executor.resource.gpu.discoveryScript"] == "/opt/mlrt/bin/mlrt-gpu-discovery"
    assert lines["spark.task.resource.gpu.amount"] == "1"
    container = executor_template(docs)["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    cpu_only = render()
    assert "spark.executor.resource.gpu" not in conf(cpu_only)
    assert "resources" not in executor_template(cpu_only)["spec"]["containers"][0]


def test_maven_repositories_reach_every_driver_and_are_checked():
    """spark.mavenRepositories: the notebook, the Connect server, the test pod and cluster-mode drivers resolve
    --packages from it (the entrypoint's Ivy settings); unset, no pod names it and the images' Maven Central
    default holds. A value that is no repository URL is refused by the schema."""
    repos = ["file:///srv/maven", "https://nexus.internal/m2"]
    docs = render("connect.enabled=true", *(f"spark.mavenRepositories[{i}]={r}" for i, r in enumerate(repos)))
    named = {name for name, spec in pod_specs(docs) if env_of(spec).get("MLRT_MAVEN_REPOSITORIES") == ",".join(repos)}
    assert named == {"StatefulSet/mlrt-jupyter", "Deployment/mlrt-connect", "Pod/mlrt-smoke-tests"}, named
    lines = dict(line.split(None, 1) for line in conf(docs).splitlines() if line.strip() and not line.startswith("#"))
    assert lines["spark.kubernetes.driverEnv.MLRT_MAVEN_REPOSITORIES"] == ",".join(repos)
    default = render("connect.enabled=true")
    assert not any("MLRT_MAVEN_REPOSITORIES" in env_of(spec) for _, spec in pod_specs(default))
    assert "MLRT_MAVEN_REPOSITORIES" not in conf(default)
    with pytest.raises(RuntimeError, match="/spark/mavenRepositories/0"):
        k8s.render(sets=["spark.mavenRepositories[0]=ftp://mirror/m2"])
