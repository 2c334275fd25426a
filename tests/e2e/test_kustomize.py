"""The kustomize manifests (dev overlay) on a real cluster: install, JupyterLab up, one Spark job from the
notebook with executor pods, and a clean delete."""

from __future__ import annotations

import shutil
import time

import pytest

import k8s
from tests.conftest import ROOT
from tests.e2e.conftest import kubectl, notebook_job_runs_on_executor_pods, only_kept_claims_are_left, run

KUSTOMIZE = shutil.which("kustomize") or str(ROOT / ".cache/tools/bin/kustomize")


NAMESPACE = "mlrt"  # the base is the chart rendered for namespace mlrt (Spark's driver host names it)


@pytest.fixture(scope="module")
def installed(cluster, tmp_path_factory):
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0:
        pytest.fail(
            f"namespace {NAMESPACE} already exists on this cluster; the kustomize e2e installs the dev "
            "overlay there as a user would: delete it or run against another cluster"
        )
    tree = tmp_path_factory.mktemp("kustomize") / "kustomize"
    shutil.copytree(ROOT / "k8s" / "kustomize", tree, ignore=shutil.ignore_patterns("*-secret.env"))
    k8s.write_secrets(tree / "overlays" / "dev")  # as `make k8s-secrets OVERLAY=dev` does for a user
    manifests = run(KUSTOMIZE, "build", str(tree / "overlays" / "dev")).stdout
    kubectl("create", "namespace", NAMESPACE)
    try:
        kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
        started = time.monotonic()
        kubectl("apply", "-f", "-", stdin=manifests)
        for workload in ("statefulset/mlrt-jupyter", "deployment/mlrt-mlflow", "deployment/mlrt-history"):
            kubectl("-n", NAMESPACE, "rollout", "status", workload, "--timeout=600s", timeout=660)
        print(f"kustomize install to ready: {time.monotonic() - started:.0f} s")
        yield NAMESPACE, manifests
    finally:
        kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=true", stdin=manifests, check=False, timeout=400)
        kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=180s", check=False, timeout=240)


def test_notebook_job_runs_on_executor_pods(installed):
    namespace, _ = installed
    notebook_job_runs_on_executor_pods(namespace, "mlrt-jupyter-0", "mlrt-exec")


def test_delete_leaves_nothing_behind(installed):
    namespace, manifests = installed
    kubectl("delete", "-f", "-", "--wait=true", stdin=manifests, timeout=400)
    only_kept_claims_are_left(namespace, ["workspace-mlrt-jupyter-0"])
