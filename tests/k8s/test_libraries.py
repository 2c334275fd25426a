"""templates/libraries/ and the libraries values on the release's Python-running pods: cluster libraries installed
at start by every pod that runs Spark's Python (the notebook, Spark Connect, helm test's driver, executors through
their template, cluster-mode drivers through spark.kubernetes.driverEnv), cached on the lake volume; pip's CA bundle,
index and wheelhouse; the NetworkPolicy egress to pip's index."""

from __future__ import annotations

import pytest

from tooling import k8s

from .chart import by, conf, env_of, executor_template, render

SETS = [
    "libraries.packages={tabulate==0.9.0,s3a://lake/wheels/x-1.0-py3-none-any.whl}",
    "libraries.caBundleConfigMap=corp-ca",
    "libraries.indexUrl=https://pypi.corp.example/simple",
    "libraries.wheelhouse=s3a://lake/wheelhouse/",
]


def python_pods(docs) -> dict[str, dict]:
    return {
        "jupyter": by(docs, "StatefulSet", "mlrt-jupyter")["spec"]["template"]["spec"],
        "connect": by(docs, "Deployment", "mlrt-connect")["spec"]["template"]["spec"],
        "smoke-tests": by(docs, "Pod", "mlrt-smoke-tests")["spec"],
        "executor": executor_template(docs)["spec"],
    }


def test_every_python_pod_installs_the_cluster_libraries_with_the_index_settings():
    docs = render("connect.enabled=true", *SETS)
    for name, spec in python_pods(docs).items():
        env = env_of(spec)
        assert env["MLRT_LIBRARIES"] == "tabulate==0.9.0 s3a://lake/wheels/x-1.0-py3-none-any.whl", name
        assert env["MLRT_LIBRARIES_DIR"] == "/opt/mlrt/lake/.mlrt-libraries", name
        assert env["MLRT_LIBRARIES_WHEELHOUSE"] == "s3a://lake/wheelhouse/", name
        assert env["MLRT_PIP_INDEX_URL"] == "https://pypi.corp.example/simple", name
        assert env["MLRT_PIP_CA_BUNDLE"] == "/etc/mlrt/pip-ca/ca.pem", name
        mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["pip-ca"] == "/etc/mlrt/pip-ca" and mounts["lake"] == "/opt/mlrt/lake", name
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["pip-ca"]["configMap"]["name"] == "corp-ca", name
    # executors fetch s3a:// wheels before Spark runs: they need the store's endpoint as the drivers have it
    assert env_of(executor_template(docs)["spec"])["MLRT_S3_ENDPOINT"] == "http://mlrt-objectstore:8333"
    spark = conf(docs)
    assert "spark.kubernetes.driverEnv.MLRT_LIBRARIES       tabulate==0.9.0 s3a://lake/wheels/" in spark
    assert "spark.kubernetes.driverEnv.MLRT_PIP_INDEX_URL   https://pypi.corp.example/simple" in spark


def test_no_libraries_no_install_and_without_the_lake_a_pod_local_cache():
    for name, spec in python_pods(render("connect.enabled=true")).items():
        env = env_of(spec)
        assert not {k for k in env if k.startswith(("MLRT_LIBRARIES", "MLRT_PIP_"))}, (name, env)
        assert "pip-ca" not in {v["name"] for v in spec["volumes"]}, name
    docs = render("connect.enabled=true", "lake.enabled=false", "libraries.packages={tabulate==0.9.0}")
    assert env_of(python_pods(docs)["jupyter"])["MLRT_LIBRARIES_DIR"] == "/tmp/mlrt-libraries"


def test_drivers_and_executors_may_reach_pips_index_unless_closed():
    docs = render()
    for role in ("driver", "executor"):
        policy = by(docs, "NetworkPolicy", f"mlrt-pip-index-{role}")["spec"]
        to_index = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}, {"port": 80}]}
        assert policy["egress"] == [to_index]
    assert (
        by(docs, "NetworkPolicy", "mlrt-pip-index-driver")["spec"]["podSelector"]["matchLabels"]["mlrt.io/spark-role"]
        == "driver"
    )
    closed = render("libraries.indexEgressCIDR=")
    assert not [d for d in closed if d["metadata"]["name"].startswith("mlrt-pip-index")]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["libraries.wheelhouse=/local/dir"], "/libraries/wheelhouse"),
        (["libraries.indexUrl=pypi.org/simple"], "/libraries/indexUrl"),
        (["libraries.packages={}", "libraries.typo=1"], "additional properties 'typo' not allowed"),
    ],
)
def test_bad_libraries_values_fail_naming_the_value(sets, message):
    with pytest.raises(RuntimeError) as err:
        k8s.render(sets=sets)
    assert message in str(err.value), str(err.value)
