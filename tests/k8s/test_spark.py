"""The chart's Spark component (templates/spark/): the shared Spark defaults, the drivers' namespaced, minimal RBAC."""

from __future__ import annotations

from tooling import k8s, versions

from .chart import check_rbac_namespaced_and_minimal


def test_rbac_is_namespaced_and_minimal(docs):
    check_rbac_namespaced_and_minimal(docs)


def test_spark_defaults_come_from_the_shared_file(docs):
    shared = (versions.ROOT / "images/spark/conf/spark-defaults.conf").read_text().strip()
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and "spark-defaults.conf" in d.get("data", {}))
    assert shared in conf["data"]["spark-defaults.conf"]
    assert f"spark.kubernetes.namespace                       {k8s.NAMESPACE}" in conf["data"]["spark-defaults.conf"]
