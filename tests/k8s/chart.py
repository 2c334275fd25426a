"""Rendering the chart offline and finding things in what it renders: shared by the chart's tests, which mirror
its templates (test_<component>.py for templates/<component>/, test_chart.py for the release-wide files)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

from tooling import k8s, versions

VALUE_SETS = [None, *sorted(k8s.VALUE_SETS.glob("*.yaml"))]
IDS = ["default"] + [p.stem for p in VALUE_SETS[1:]]
WORKLOADS = {"Deployment", "StatefulSet", "Pod", "Job", "DaemonSet"}

# The smoke test files of helm test's quick suite, in order (templates/tests/smoke-tests-pod.yaml; the e2e times them).
QUICK_SMOKE_FILES = (
    "test_spark_cluster.py",
    "test_object_storage.py",
    "test_ml_mlflow.py",
    "test_catalog.py",
    "test_jupyter.py",
)


def rendered(values) -> list[dict]:
    return k8s.documents(k8s.render([values] if values else None))


def render(*sets: str) -> list[dict]:
    return k8s.documents(k8s.render(sets=list(sets) or None))


def by(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def env_of(spec: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in spec["containers"][0].get("env", [])}


def conf(docs: list[dict]) -> str:
    return by(docs, "ConfigMap", "mlrt-spark")["data"]["spark-defaults.conf"]


def executor_template(docs: list[dict]) -> dict:
    return yaml.safe_load(by(docs, "ConfigMap", "mlrt-spark")["data"]["executor-pod-template.yaml"])


def pod_specs(docs: list[dict]):
    """(name, pod spec) of every workload, plus the Spark executor pod template from the ConfigMap."""
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            spec = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
            yield f"{doc['kind']}/{doc['metadata']['name']}", spec
        if doc["kind"] == "CronJob":
            yield f"CronJob/{doc['metadata']['name']}", doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        if doc["kind"] == "ConfigMap" and "executor-pod-template.yaml" in doc.get("data", {}):
            yield "executor pod template", yaml.safe_load(doc["data"]["executor-pod-template.yaml"])["spec"]


def render_notes(sets: list[str]) -> str:
    """NOTES.txt as `helm install` prints it (helm template skips NOTES.txt, so render a renamed copy)."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "mlrt"
        shutil.copytree(k8s.CHART, chart)  # follows the files/ symlinks
        (chart / "templates" / "NOTES.txt").rename(chart / "files" / "NOTES.txt")
        (chart / "templates" / "notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data: {notes: {{ tpl (.Files.Get "files/NOTES.txt") . | quote }}}\n'
        )
        cmd = [
            k8s.tool("helm"),
            "template",
            "x",
            str(chart),
            "--namespace",
            "ns",
            "--show-only",
            "templates/notes.yaml",
            "--kube-version",
            versions.load()["KUBERNETES_VERSION"],
        ]
        for item in sets:
            cmd += ["--set", item]
        return yaml.safe_load(k8s.run(cmd))["data"]["notes"]


def check_pod_security_restricted(docs):
    specs = list(pod_specs(docs))
    assert any(name == "executor pod template" for name, _ in specs)
    for name, spec in specs:
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, f"{name}: runAsNonRoot"
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp"
        for container in spec["containers"]:
            sc = container.get("securityContext", {})
            where = f"{name}/{container['name']}"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert not sc.get("privileged"), f"{where}: privileged"
            if name != "executor pod template":  # Spark sets executor requests/limits from its conf
                assert container["resources"].get("requests") and container["resources"].get("limits"), where
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name


def check_rbac_namespaced_and_minimal(docs):
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    roles = [doc for doc in docs if doc["kind"] == "Role"]
    assert len(roles) == 1
    for rule in roles[0]["rules"]:
        assert rule["apiGroups"] == [""]
        if rule["resources"] == ["pods/log"]:  # an app job's run reads its cluster-mode driver's log
            assert rule["verbs"] == ["get"], rule
            continue
        assert set(rule["resources"]) <= {"pods", "services", "configmaps", "persistentvolumeclaims"}
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    binding = next(doc for doc in docs if doc["kind"] == "RoleBinding")
    assert binding["roleRef"]["kind"] == "Role"
    assert all(s["namespace"] == k8s.NAMESPACE for s in binding["subjects"])
    for name, spec in pod_specs(docs):
        if spec.get("serviceAccountName") != binding["subjects"][0]["name"]:
            assert spec.get("automountServiceAccountToken") is False, f"{name} gets an API token it does not need"


def check_network_policies_default_deny_and_allow_spark(docs):
    policies = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "NetworkPolicy"}
    deny = policies["mlrt-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    assert deny["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == k8s.RELEASE
    driver_ports = {p["port"] for rule in policies["mlrt-driver"]["spec"]["ingress"] for p in rule["ports"]}
    assert {7078, 7079, 8888} <= driver_ports
    assert "mlrt-executor" in policies
