"""The Helm chart and the kustomize overlays, rendered offline: schema-valid (strict), secure by default,
least-privilege RBAC, network policies, bad values rejected with clear messages, no drift between the two."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

import k8s
import versions

VALUE_SETS = [None, *sorted(k8s.VALUE_SETS.glob("*.yaml"))]
IDS = ["default"] + [p.stem for p in VALUE_SETS[1:]]
WORKLOADS = {"Deployment", "StatefulSet", "Pod", "Job", "DaemonSet"}


def rendered(values) -> list[dict]:
    return k8s.documents(k8s.render([values] if values else None))


def pod_specs(docs: list[dict]):
    """(name, pod spec) of every workload, plus the Spark executor pod template from the ConfigMap."""
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            spec = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
            yield f"{doc['kind']}/{doc['metadata']['name']}", spec
        if doc["kind"] == "ConfigMap" and "executor-pod-template.yaml" in doc.get("data", {}):
            yield "executor pod template", yaml.safe_load(doc["data"]["executor-pod-template.yaml"])["spec"]


@pytest.fixture(scope="module", params=VALUE_SETS, ids=IDS)
def docs(request):
    return rendered(request.param)


def test_strict_schema_validation(docs):
    out = k8s.kubeconform(yaml.safe_dump_all(docs))
    assert "Invalid: 0, Errors: 0" in out, out


def test_schema_validation_can_fail():
    bad = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n"
    with pytest.raises(RuntimeError, match="additional properties 'portz' not allowed"):
        k8s.kubeconform(bad)


def test_pod_security_restricted_everywhere(docs):
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


def test_rbac_is_namespaced_and_minimal(docs):
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "nothing cluster-wide"
    roles = [doc for doc in docs if doc["kind"] == "Role"]
    assert len(roles) == 1
    for rule in roles[0]["rules"]:
        assert rule["apiGroups"] == [""]
        assert set(rule["resources"]) <= {"pods", "services", "configmaps", "persistentvolumeclaims"}
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
    binding = next(doc for doc in docs if doc["kind"] == "RoleBinding")
    assert binding["roleRef"]["kind"] == "Role"
    assert all(s["namespace"] == k8s.NAMESPACE for s in binding["subjects"])
    for name, spec in pod_specs(docs):
        if spec.get("serviceAccountName") != binding["subjects"][0]["name"]:
            assert spec.get("automountServiceAccountToken") is False, f"{name} gets an API token it does not need"


def test_network_policies_default_deny_and_allow_spark(docs):
    policies = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "NetworkPolicy"}
    deny = policies["mlrt-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    assert deny["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == k8s.RELEASE
    driver_ports = {p["port"] for rule in policies["mlrt-driver"]["spec"]["ingress"] for p in rule["ports"]}
    assert {7078, 7079, 8888} <= driver_ports
    assert "mlrt-executor" in policies


def test_every_workload_is_covered_by_the_default_deny(docs):
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == k8s.RELEASE, doc["metadata"]["name"]


def test_spark_defaults_come_from_the_shared_file(docs):
    shared = (versions.ROOT / "images/spark/conf/spark-defaults.conf").read_text().strip()
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and "spark-defaults.conf" in d.get("data", {}))
    assert shared in conf["data"]["spark-defaults.conf"]
    assert f"spark.kubernetes.namespace                       {k8s.NAMESPACE}" in conf["data"]["spark-defaults.conf"]


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


def test_generated_secrets_are_random_and_not_in_notes():
    docs = rendered(None)
    secrets = [d for d in docs if d["kind"] == "Secret"]
    values = [v for s in secrets for k, v in s["data"].items() if k != "username"]
    # Jupyter token, Spark auth secret, the bundled object store's key pair, MLflow's admin password.
    assert len(values) == 5 and all(len(v) >= 32 for v in values) and len(set(values)) == 5
    notes = render_notes(["jupyter.token=" + "s" * 24])
    assert "s" * 24 not in notes and "port-forward" in notes and "jsonpath='{.data.token}'" in notes


@pytest.mark.parametrize("delete", [False, True], ids=["kept", "deleted-with-release"])
def test_workspace_claim_is_kept_by_uninstall_unless_asked_and_notes_say_so(delete):
    setting = f"jupyter.workspace.deleteWithRelease={str(delete).lower()}"
    docs = k8s.documents(k8s.render(sets=[setting]))
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("-jupyter"))
    policy = statefulset["spec"].get("persistentVolumeClaimRetentionPolicy")
    assert policy == ({"whenDeleted": "Delete", "whenScaled": "Retain"} if delete else None)
    notes = " ".join(render_notes([setting]).split())
    assert "workspace-x-mlrt-jupyter-0" in notes
    if delete:
        assert "deleted with the release" in notes
    else:
        assert "`helm uninstall` keeps it, and a reinstall under the same name re-attaches it" in notes
        assert "x-mlrt-lake is kept" in notes and "x-mlrt-objectstore is kept" in notes


def test_chart_version_follows_versions_file():
    chart = yaml.safe_load((k8s.CHART / "Chart.yaml").read_text())
    version = versions.load()["MLRT_VERSION"]
    assert chart["appVersion"] == version and chart["version"] == version


def test_images_default_to_the_built_tag():
    docs = rendered(None)
    images = {
        c["image"] for _, spec in pod_specs(docs) if "containers" in spec for c in spec["containers"] if "image" in c
    }
    tag = versions.load()["MLRT_VERSION"]
    assert images and all(image.endswith(f":{tag}") for image in images), images


@pytest.mark.parametrize(
    "sets, message",
    [
        (["spark.executor.memory=2GB"], "/spark/executor/memory"),
        (["jupyter.servce.port=1"], "additional properties 'servce' not allowed"),
        (["image.tag=latest"], "/image/tag"),
        (["spark.executor.instances=-1"], "/spark/executor/instances"),
        (["jupyter.token=short"], "/jupyter/token"),
        (["eventLog.accessMode=ReadOnlyMany"], "/eventLog/accessMode"),
        (["spark.conf.executor\\.memory=1g"], "'executor.memory' does not match pattern '^spark"),
        (["networkPolicy.apiServerCIDR=everywhere"], "/networkPolicy/apiServerCIDR"),
        (["mlflow.auth.password=short"], "/mlflow/auth/password"),
        (["mlflow.auth.username=a b"], "/mlflow/auth/username"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(sets, message):
    with pytest.raises(RuntimeError) as err:
        k8s.render(sets=sets)
    assert "values don't meet the specifications of the schema" in str(err.value)
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("overlay", [p.name for p in k8s.overlays()])
def test_kustomize_overlays_are_valid_and_secure(overlay):
    text = k8s.kustomize_build(k8s.KUSTOMIZE / "overlays" / overlay)
    assert "Invalid: 0, Errors: 0" in k8s.kubeconform(text)
    docs = k8s.documents(text)
    assert {d["metadata"]["namespace"] for d in docs} == {k8s.NAMESPACE}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    assert secrets == {"mlrt-jupyter", "mlrt-spark-auth", "mlrt-objectstore", "mlrt-mlflow-auth"}
    test_pod_security_restricted_everywhere(docs)
    test_rbac_is_namespaced_and_minimal(docs)
    test_network_policies_default_deny_and_allow_spark(docs)


def test_kustomize_base_does_not_drift_from_the_chart():
    assert k8s.BASE.read_text() == k8s.kustomize_base_text(), "run `make k8s-kustomize-base`"


def test_kustomize_and_chart_agree_on_every_object():
    chart = {(d["kind"], d["metadata"]["name"]) for d in rendered(None) if not k8s.is_helm_test(d)}
    kustomized = {
        (d["kind"], d["metadata"]["name"])
        for d in k8s.documents(k8s.kustomize_build(k8s.KUSTOMIZE / "overlays" / "prod"))
    }
    assert chart == kustomized


def test_no_latest_tags_anywhere():
    for values in VALUE_SETS:
        text = k8s.render([values] if values else None)
        assert not re.search(r"image: \S+:latest\b", text)


def test_values_reference_is_current():
    assert k8s.VALUES_DOC.read_text() == k8s.values_doc_text(), "run `make k8s-docs`"


def test_network_flows_doc_is_current():
    assert k8s.FLOWS_DOC.read_text() == k8s.flows_doc_text(), "run `make k8s-docs`"


def test_jupyter_proxies_the_releases_history_server_and_mlflow(docs):
    """The notebook's proxied UIs point at this release's services (and only at enabled ones)."""
    jupyter = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("-jupyter"))
    env = {e["name"]: e.get("value") for e in jupyter["spec"]["template"]["spec"]["containers"][0]["env"]}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    for variable in ("MLRT_HISTORY_URL", "MLFLOW_TRACKING_URI"):
        if variable in env:
            host = env[variable].split("//")[1].split(":")[0]
            assert host in services, f"{variable}={env[variable]}: no such Service in the release"
    history = any(d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-history") for d in docs)
    assert ("MLRT_HISTORY_URL" in env) == history


def test_ray_on_spark_opens_drivers_to_their_executors_only(docs):
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "mlrt-ray-on-spark")
    assert policy["spec"]["podSelector"]["matchLabels"]["mlrt.io/spark-role"] == "driver"
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "executor" and "ports" not in rule
    off = k8s.render(sets=["networkPolicy.rayOnSpark=false"])
    assert "mlrt-ray-on-spark" not in off


@pytest.mark.parametrize("overlay", [p.name for p in k8s.overlays()])
def test_secrets_are_written_for_every_generator_with_random_values_and_never_overwritten(overlay, tmp_path):
    copy = tmp_path / overlay
    shutil.copytree(k8s.KUSTOMIZE / "overlays" / overlay, copy, ignore=shutil.ignore_patterns("*-secret.env"))
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    wanted = {env for gen in kustomization["secretGenerator"] for env in gen["envs"]}
    written = k8s.write_secrets(copy)
    assert {p.name for p in written} == wanted, "each secretGenerator env file needs a .env.example"
    values = []
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o600
        pairs = dict(line.split("=", 1) for line in path.read_text().splitlines())
        assert pairs and all(pairs.values()) and "CHANGE_ME" not in path.read_text()
        values += [v for k, v in pairs.items() if k != "username"]
    assert len(set(values)) == len(values), "every secret value is its own random value"
    before = {p: p.read_text() for p in written}
    assert k8s.write_secrets(copy) == []
    assert {p: p.read_text() for p in written} == before


def test_secrets_of_a_directory_without_examples_name_the_fix(tmp_path):
    with pytest.raises(RuntimeError, match="overlays/dev"):
        k8s.write_secrets(tmp_path)


def test_chart_templates_hold_one_kind_each_in_a_folder_per_component():
    """Where a change goes: templates/<component>/<kind>.yaml (a release-wide file only at the top)."""
    for path in sorted((k8s.CHART / "templates").rglob("*.yaml")):
        kinds = set(re.findall(r"^kind: (\w+)", path.read_text(), re.M))
        assert len(kinds) == 1, f"{path.relative_to(k8s.CHART)} holds {sorted(kinds)}: one kind per template file"


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_the_published_names_are_the_release_s_objects_and_submit_finds_them(values):
    import submit

    docs = rendered(values)
    selector = dict(pair.split("=") for pair in submit.NAMES_SELECTOR.format(release=k8s.RELEASE).split(","))
    published = [d for d in docs if d["kind"] == "ConfigMap" and selector.items() <= d["metadata"]["labels"].items()]
    assert len(published) == 1
    names = published[0]["data"]
    objects = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for kind, key in [
        ("ServiceAccount", "serviceAccount"),
        ("ConfigMap", "sparkConfigMap"),
        ("Secret", "sparkAuthSecret"),
        ("PersistentVolumeClaim", "eventLogClaim"),
    ]:
        assert (kind, names[key]) in objects, f"{key}: no {kind} {names[key]}"
    assert all(name.startswith(names["prefix"]) for _, name in objects if not name.startswith("kube"))
