"""The chart as a whole (values schema, Chart.yaml, NOTES.txt, _helpers.tpl, names.yaml), rendered offline with each
CI value set: strictly schema-valid, restricted pod security, images at the built tag, bad values rejected naming
the field, the published names."""

from __future__ import annotations

import re

import pytest
import yaml

from tooling import k8s, versions

from .chart import IDS, VALUE_SETS, check_pod_security_restricted, pod_specs, render_notes, rendered


def test_pod_security_restricted_everywhere(docs):
    check_pod_security_restricted(docs)


def test_every_probe_waits_longer_than_the_default_second(docs):
    """Kubernetes gives a probe 1 s to answer by default; a server sharing a busy node with Spark's executors can
    take longer, and failed liveness probes restart it mid-transfer (an MLflow artifact download, a notebook's
    kernel). Readiness waits 5 s, liveness 10 s."""
    probes = [
        (name, kind, container[kind].get("timeoutSeconds", 1))
        for name, spec in pod_specs(docs)
        for container in spec["containers"]
        for kind in ("readinessProbe", "livenessProbe")
        if kind in container
    ]
    assert probes
    short = [probe for probe in probes if probe[2] < (5 if probe[1] == "readinessProbe" else 10)]
    assert not short, f"probes with a short timeout: {short}"


def test_strict_schema_validation(docs):
    out = k8s.kubeconform(yaml.safe_dump_all(docs))
    assert "Invalid: 0, Errors: 0" in out, out


def test_schema_validation_can_fail():
    bad = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {portz: []}\n"
    with pytest.raises(RuntimeError, match="additional properties 'portz' not allowed"):
        k8s.kubeconform(bad)


def test_generated_secrets_are_random_and_not_in_notes():
    docs = rendered(None)
    secrets = [d for d in docs if d["kind"] == "Secret"]
    values = [v for s in secrets for k, v in s["data"].items() if k != "username"]
    # Jupyter token, Spark auth secret, the bundled object store's key pair, MLflow's admin password.
    assert len(values) == 6 and all(len(v) >= 32 for v in values) and len(set(values)) == 6
    notes = render_notes(["jupyter.token=" + "s" * 24])
    assert "s" * 24 not in notes and "port-forward" in notes and "jsonpath='{.data.token}'" in notes


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


def test_no_latest_tags_anywhere():
    for values in VALUE_SETS:
        text = k8s.render([values] if values else None)
        assert not re.search(r"image: \S+:latest\b", text)


def test_values_reference_is_current():
    assert k8s.VALUES_DOC.read_text() == k8s.values_doc_text(), "run `make k8s-docs`"


def test_chart_templates_hold_one_kind_each_in_a_folder_per_component():
    """Where a change goes: templates/<component>/<kind>.yaml (a release-wide file only at the top)."""
    for path in sorted((k8s.CHART / "templates").rglob("*.yaml")):
        kinds = set(re.findall(r"^kind: (\w+)", path.read_text(), re.M))
        assert len(kinds) == 1, f"{path.relative_to(k8s.CHART)} holds {sorted(kinds)}: one kind per template file"


@pytest.mark.parametrize("values", VALUE_SETS, ids=IDS)
def test_the_published_names_are_the_release_s_objects_and_submit_finds_them(values):
    from scripts import submit

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


def test_the_chart_has_no_symlinks_and_its_spark_defaults_copy_is_current():
    """helm warns on every render of a chart with symlinks and packages what they point to: the chart holds plain
    files, and its copy of the shared Spark defaults equals images/spark/conf/spark-defaults.conf."""
    links = [str(p.relative_to(k8s.CHART)) for p in k8s.CHART.rglob("*") if p.is_symlink()]
    assert not links, links
    assert k8s.CHART_SPARK_DEFAULTS.read_text() == k8s.SHARED_SPARK_DEFAULTS.read_text(), (
        "run `make k8s-kustomize-base`"
    )


def test_the_test_cluster_imports_every_image_the_chart_runs():
    from tests.k8s_cluster.cluster import project_images

    imported = set(project_images(versions.load()))
    running = {c["image"] for _, spec in pod_specs(rendered(None)) for c in spec["containers"] if "image" in c}
    assert running <= imported, running - imported
