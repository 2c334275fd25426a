"""MLflow in the chart, rendered offline: its server jobs off unless mlflow.jobs.enabled; its authentication
(mlflow.auth): the account reaches the server, the notebook, the test pod, drivers and executors as a mounted Secret,
never as an environment variable or a Spark property; the auth database follows the tracking store; off means none
of it."""

from __future__ import annotations

import base64

from .chart import by, conf, env_of, pod_specs, render

CLIENTS = ("StatefulSet/mlrt-jupyter", "Pod/mlrt-smoke-tests")


def mounts(spec: dict) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in spec["containers"][0].get("volumeMounts", [])}


def secret_of(spec: dict, volume: str) -> str | None:
    found = [v["secret"]["secretName"] for v in spec.get("volumes", []) if v["name"] == volume]
    return found[0] if found else None


def test_auth_is_on_by_default_with_a_generated_account_mounted_everywhere():
    docs = render()
    secret = by(docs, "Secret", "mlrt-mlflow-auth")["data"]
    assert base64.b64decode(secret["username"]).decode() == "admin" and len(secret["password"]) >= 32
    specs = dict(pod_specs(docs))
    server = specs["Deployment/mlrt-mlflow"]
    env = env_of(server)
    assert env["MLRT_MLFLOW_CREDENTIALS_DIR"] == "/etc/mlrt/mlflow"
    assert env["MLRT_MLFLOW_AUTH_DATABASE_URI"] == "sqlite:////opt/mlrt/mlflow/basic_auth.db"
    for name in ("Deployment/mlrt-mlflow", *CLIENTS):
        assert mounts(specs[name])["mlflow-account"] == "/etc/mlrt/mlflow", name
        assert secret_of(specs[name], "mlflow-account") == "mlrt-mlflow-auth", name
    for name in CLIENTS:
        assert env_of(specs[name])["MLRT_MLFLOW_CREDENTIALS_DIR"] == "/etc/mlrt/mlflow", name
    spark = conf(docs)
    assert "spark.kubernetes.executor.secrets.mlrt-mlflow-auth /etc/mlrt/mlflow" in spark
    assert "spark.executorEnv.MLRT_MLFLOW_CREDENTIALS_DIR    /etc/mlrt/mlflow" in spark
    # the password itself: in the Secret only
    password = base64.b64decode(secret["password"]).decode()
    others = [d for d in docs if d["kind"] != "Secret"]
    assert password not in str(others) and "MLFLOW_TRACKING_PASSWORD" not in str(others)


def test_auth_database_follows_an_external_tracking_store():
    docs = render("mlflow.backendStore.existingSecret=mlflow-db")
    env = dict(pod_specs(docs))["Deployment/mlrt-mlflow"]["containers"][0]["env"]
    auth_db = next(e for e in env if e["name"] == "MLRT_MLFLOW_AUTH_DATABASE_URI")
    assert auth_db["valueFrom"]["secretKeyRef"] == {"name": "mlflow-db", "key": "uri"}


def test_an_existing_account_secret_is_used_instead_of_a_generated_one():
    docs = render("mlflow.auth.existingSecret=my-mlflow-account")
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "mlrt-mlflow-auth"]
    specs = dict(pod_specs(docs))
    for name in ("Deployment/mlrt-mlflow", *CLIENTS):
        assert secret_of(specs[name], "mlflow-account") == "my-mlflow-account", name
    assert "spark.kubernetes.executor.secrets.my-mlflow-account /etc/mlrt/mlflow" in conf(docs)


def test_auth_off_leaves_no_account_anywhere():
    docs = render("mlflow.auth.enabled=false")
    assert not [d for d in docs if d["kind"] == "Secret" and "mlflow" in d["metadata"]["name"]]
    specs = dict(pod_specs(docs))
    for name in ("Deployment/mlrt-mlflow", *CLIENTS):
        assert "mlflow-account" not in mounts(specs[name]) and "MLRT_MLFLOW_CREDENTIALS_DIR" not in env_of(specs[name])
    assert "/etc/mlrt/mlflow" not in conf(docs)


def test_server_jobs_are_off_by_default_and_a_value_turns_them_on():
    """MLflow's server jobs add a job runner and Huey consumers (~1.8 GB) to the server's pod: off unless asked."""
    server = "Deployment/mlrt-mlflow"
    assert env_of(dict(pod_specs(render()))[server])["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    on = dict(pod_specs(render("mlflow.jobs.enabled=true")))[server]
    assert env_of(on)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
