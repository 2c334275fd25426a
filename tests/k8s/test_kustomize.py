"""The kustomize base and overlays (generated from the chart, k8s/kustomize/): valid and as secure as the chart, the
same objects, the overlays' secrets written by `make k8s-secrets`."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tooling import k8s

from .chart import (
    check_network_policies_default_deny_and_allow_spark,
    check_pod_security_restricted,
    check_rbac_namespaced_and_minimal,
    rendered,
)


@pytest.mark.parametrize("overlay", [p.name for p in k8s.overlays()])
def test_kustomize_overlays_are_valid_and_secure(overlay):
    text = k8s.kustomize_build(k8s.KUSTOMIZE / "overlays" / overlay)
    assert "Invalid: 0, Errors: 0" in k8s.kubeconform(text)
    docs = k8s.documents(text)
    assert {d["metadata"]["namespace"] for d in docs} == {k8s.NAMESPACE}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    assert secrets == {"mlrt-jupyter", "mlrt-spark-auth", "mlrt-objectstore", "mlrt-mlflow-auth", "mlrt-catalog-db"}
    check_pod_security_restricted(docs)
    check_rbac_namespaced_and_minimal(docs)
    check_network_policies_default_deny_and_allow_spark(docs)


def test_kustomize_base_does_not_drift_from_the_chart():
    assert k8s.BASE.read_text() == k8s.kustomize_base_text(), "run `make k8s-kustomize-base`"


def test_kustomize_and_chart_agree_on_every_object():
    chart = {(d["kind"], d["metadata"]["name"]) for d in rendered(None) if not k8s.is_helm_test(d)}
    kustomized = {
        (d["kind"], d["metadata"]["name"])
        for d in k8s.documents(k8s.kustomize_build(k8s.KUSTOMIZE / "overlays" / "prod"))
    }
    assert chart == kustomized


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
