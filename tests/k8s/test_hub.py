"""The chart's team workspace (templates/hub/): off by default; on, JupyterHub (the hub image) whose settings name
the notebook image for users' servers, a Spark defaults file for them without the single notebook's driver,
executor names or shared Secrets (the hub adds each user's own), narrow RBAC, and NetworkPolicies that keep one
user's server out of another's reach."""

from __future__ import annotations

import yaml

from .chart import by, env_of, render, render_notes


def hub_settings(docs) -> tuple[dict, str]:
    data = by(docs, "ConfigMap", "mlrt-hub")["data"]
    return yaml.safe_load(data["hub.yaml"]), data["spark-defaults.conf"]


def test_the_hub_is_off_by_default():
    assert not [d for d in render() if "-hub" in d["metadata"]["name"]]


def test_the_hub_runs_its_image_with_settings_a_secret_and_a_kept_volume():
    docs = render("hub.enabled=true")
    spec = by(docs, "Deployment", "mlrt-hub")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"].startswith("mlrt/hub:")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert env_of(spec)["MLRT_HUB_ADMIN_PASSWORD_FILE"] == "/etc/mlrt/hub-secret/admin-password"
    assert by(docs, "Secret", "mlrt-hub")["data"]["admin-password"]
    claim = by(docs, "PersistentVolumeClaim", "mlrt-hub")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert by(docs, "Service", "mlrt-hub-public")["spec"]["ports"][0]["targetPort"] == "proxy"
    settings, _ = hub_settings(docs)
    assert settings["singleuser"]["image"].startswith("mlrt/notebook:")
    assert settings["singleuser"]["serviceAccount"] == "mlrt-hub-user"
    assert settings["auth"] == {**settings["auth"], "type": "native", "admins": ["admin"]}
    assert settings["mlflow"]["auth"] is True


def test_users_spark_defaults_leave_out_the_single_notebooks_driver_and_shared_secrets():
    docs = render("hub.enabled=true")
    _, defaults = hub_settings(docs)
    single = by(docs, "ConfigMap", "mlrt-spark")["data"]["spark-defaults.conf"]
    left_out = [
        "spark.kubernetes.driver.pod.name",
        "spark.driver.host",
        "spark.kubernetes.executor.podNamePrefix",
        "spark.kubernetes.executor.secrets.mlrt-spark-auth",
        "spark.kubernetes.executor.secrets.mlrt-mlflow-auth",
    ]
    for line in left_out:
        assert line in single and line not in defaults, line
    assert "spark.kubernetes.authenticate.driver.serviceAccountName mlrt-hub-user" in defaults
    assert "spark.kubernetes.executor.podTemplateFile        /etc/mlrt/spark/executor-pod-template.yaml" in defaults


def test_users_service_account_manages_pods_and_configmaps_only():
    docs = render("hub.enabled=true")
    rules = by(docs, "Role", "mlrt-hub-user")["rules"]
    assert {r for rule in rules for r in rule["resources"]} == {"pods", "configmaps", "pods/log"}


def test_only_the_hub_reaches_a_users_server():
    docs = render("hub.enabled=true")
    user = by(docs, "NetworkPolicy", "mlrt-hub-user")["spec"]
    assert user["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "hub-user"
    server = next(rule for rule in user["ingress"] if {"port": 8888} in rule["ports"])
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in server["from"]] == ["hub"]
    driver = by(docs, "NetworkPolicy", "mlrt-driver")["spec"]["podSelector"]
    assert {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["hub-user"]} in driver[
        "matchExpressions"
    ]
    assert any({"port": 8081} in rule.get("ports", []) for rule in user["egress"])


def test_oauth_takes_its_client_secret_from_a_secret_and_reaches_the_provider():
    docs = render("hub.enabled=true", "hub.auth.type=oauth", "hub.auth.oauth.clientSecretSecret=sso",
                  "hub.auth.oauth.config.client_id=mlrt")  # fmt: skip
    spec = by(docs, "Deployment", "mlrt-hub")["spec"]["template"]["spec"]
    env = spec["containers"][0]["env"]
    secret = next(e for e in env if e["name"] == "OAUTH_CLIENT_SECRET")
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "sso", "key": "client-secret"}
    settings, _ = hub_settings(docs)
    assert settings["auth"]["oauth"]["config"] == {"client_id": "mlrt"}
    egress = by(docs, "NetworkPolicy", "mlrt-hub")["spec"]["egress"]
    assert any(rule["to"][0].get("ipBlock") for rule in egress)


def test_notes_say_where_the_team_logs_in_and_what_an_uninstall_keeps():
    notes = render_notes(["hub.enabled=true"])
    assert "port-forward svc/x-mlrt-hub-public 8000:80" in notes
    assert "get secret x-mlrt-hub -o jsonpath='{.data.admin-password}'" in notes
    assert "claims x-mlrt-workspace-<user>) are kept by `helm uninstall`" in notes
    assert "Team workspace" not in render_notes([])
