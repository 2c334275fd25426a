"""The chart's objectStore section (templates/objectstore/, and what drivers, executors and MLflow get), rendered
offline for each mode: bundled, external with a Secret, external with web identity, none."""

from __future__ import annotations

import pytest

from tooling import k8s

from .chart import by, conf, env_of, executor_template, pod_specs, render


def test_bundled_store_is_the_default():
    docs = render()
    store = by(docs, "Deployment", "mlrt-objectstore")["spec"]["template"]["spec"]
    assert store["containers"][0]["image"].startswith("mlrt/objectstore:")
    assert env_of(store)["MLRT_OBJECTSTORE_BUCKETS"] == "lake,mlflow"
    assert by(docs, "PersistentVolumeClaim", "mlrt-objectstore")["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }
    assert set(by(docs, "Secret", "mlrt-objectstore")["data"]) == {"access_key_id", "secret_access_key"}
    jupyter = dict(pod_specs(docs))["StatefulSet/mlrt-jupyter"]
    env = env_of(jupyter)
    assert env["MLRT_S3_ENDPOINT"] == "http://mlrt-objectstore:8333"
    assert env["MLRT_WAREHOUSE_DIR"] == "s3a://lake/warehouse"
    assert env["MLRT_S3_CREDENTIALS_DIR"] == "/etc/mlrt/s3"
    assert {"name": "s3-credentials", "secret": {"secretName": "mlrt-objectstore"}} in jupyter["volumes"]
    # Executors and cluster-mode drivers mount the same Secret; the key pair itself is in no Spark property.
    spark_conf = conf(docs)
    assert "spark.kubernetes.executor.secrets.mlrt-objectstore /etc/mlrt/s3" in spark_conf
    assert "spark.kubernetes.driver.secrets.mlrt-objectstore /etc/mlrt/s3" in spark_conf
    assert not [
        line
        for line in spark_conf.splitlines()
        if line.startswith(("spark.hadoop.fs.s3a.access.key", "spark.hadoop.fs.s3a.secret.key"))
    ]
    mlflow = by(docs, "Deployment", "mlrt-mlflow")["spec"]["template"]["spec"]
    # The image's entrypoint must run (it writes the key pair boto3 reads): args only, no command.
    assert "command" not in mlflow["containers"][0]
    assert "python -m mlrt.mlflow_server" in mlflow["containers"][0]["args"][2]
    assert "--artifacts-destination=s3://mlflow/artifacts" in mlflow["containers"][0]["args"][2]
    assert env_of(mlflow)["MLFLOW_S3_ENDPOINT_URL"] == "http://mlrt-objectstore:8333"


def test_only_drivers_executors_mlflow_and_the_metastore_reach_the_store():
    docs = render()
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    store = policies["mlrt-objectstore"]
    assert store["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "objectstore"
    allowed = [peer["podSelector"]["matchLabels"] for peer in store["ingress"][0]["from"]]
    assert [a.get("mlrt.io/spark-role") or a["app.kubernetes.io/component"] for a in allowed] == [
        "driver",
        "executor",
        "mlflow",
        "metastore",
    ]
    assert store["ingress"][0]["ports"] == [{"port": 8333}] and len(store["ingress"]) == 1
    for client in ("driver", "executor", "mlflow", "metastore"):
        egress = policies[f"mlrt-s3-client-{client}"]["egress"]
        assert egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "objectstore"


def test_external_endpoint_with_an_existing_secret():
    docs = render(
        "objectStore.mode=external",
        "objectStore.external.endpoint=https://s3.example.org:9000",
        "objectStore.external.existingSecret=s3-keys",
        "objectStore.external.egressCIDR=192.0.2.0/24",
    )
    assert not [d for d in docs if d["metadata"]["name"] == "mlrt-objectstore"]
    env = env_of(dict(pod_specs(docs))["StatefulSet/mlrt-jupyter"])
    assert env["MLRT_S3_ENDPOINT"] == "https://s3.example.org:9000"
    assert "spark.kubernetes.executor.secrets.s3-keys /etc/mlrt/s3" in conf(docs)
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    egress = policies["mlrt-s3-client-executor"]["egress"][0]
    assert egress["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    assert {p["port"] for p in egress["ports"]} == {443, 80, 9000}


def test_aws_s3_with_web_identity_has_no_static_keys():
    docs = render(
        "objectStore.mode=external",
        "objectStore.external.region=eu-west-1",
        "objectStore.external.webIdentity.enabled=true",
        "objectStore.external.webIdentity.serviceAccountAnnotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/r",
    )
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    for name in ("mlrt-spark", "mlrt-s3"):
        assert accounts[name]["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}
    env = env_of(dict(pod_specs(docs))["StatefulSet/mlrt-jupyter"])
    assert "MLRT_S3_ENDPOINT" not in env and "MLRT_S3_CREDENTIALS_DIR" not in env
    assert env["MLRT_S3_REGION"] == "eu-west-1"
    spark_conf = conf(docs)
    assert "spark.kubernetes.authenticate.executor.serviceAccountName mlrt-s3" in spark_conf
    assert "mlrt-objectstore" not in spark_conf and "/etc/mlrt/s3" not in spark_conf
    mlflow = by(docs, "Deployment", "mlrt-mlflow")["spec"]["template"]["spec"]
    assert mlflow["serviceAccountName"] == "mlrt-s3"
    assert not any(v.get("name") == "s3-credentials" for v in mlflow["volumes"])


@pytest.mark.parametrize(
    "sets, message",
    [
        (
            [
                "objectStore.mode=external",
                "objectStore.external.existingSecret=k",
                "objectStore.external.webIdentity.enabled=true",
            ],
            "existingSecret (static keys) and webIdentity.enabled (no static keys) are both set; choose one",
        ),
        (["objectStore.external.webIdentity.enabled=true"], "webIdentity.enabled needs objectStore.mode external"),
        (["objectStore.mode=minio"], "/objectStore/mode"),
        (["objectStore.buckets.lake=Lake_Bucket"], "/objectStore/buckets/lake"),
        (["objectStore.external.endpoint=s3.example.org"], "/objectStore/external/endpoint"),
    ],
)
def test_contradictory_or_bad_object_store_values_fail_naming_the_fix(sets, message):
    with pytest.raises(RuntimeError) as err:
        k8s.render(sets=sets)
    assert message in str(err.value), str(err.value)


def test_no_object_store_keeps_tables_and_artifacts_on_volumes():
    docs = render("objectStore.mode=none")
    assert not [d for d in docs if "objectstore" in d["metadata"]["name"] or "s3-client" in d["metadata"]["name"]]
    env = env_of(dict(pod_specs(docs))["StatefulSet/mlrt-jupyter"])
    assert not [k for k in env if k.startswith("MLRT_S3") or k == "MLRT_WAREHOUSE_DIR"]
    mlflow = by(docs, "Deployment", "mlrt-mlflow")["spec"]["template"]["spec"]
    assert "--artifacts-destination=/opt/mlrt/mlflow/artifacts" in mlflow["containers"][0]["args"][2]
    assert executor_template(docs)["spec"]["containers"][0]["env"][0]["name"] == "SPARK_JAVA_OPT_999"
