"""The chart's Spark component (templates/spark/): the shared Spark defaults, the drivers' namespaced, minimal RBAC."""

from __future__ import annotations

from tooling import k8s, versions

from .chart import check_rbac_namespaced_and_minimal, conf, executor_template, render


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
