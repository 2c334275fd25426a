"""The kustomize manifests (dev overlay) on a real cluster: install, JupyterLab up, one Spark job from the
notebook with executor pods, and a clean delete."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import kubectl, notebook_job_runs_on_executor_pods, only_kept_claims_are_left
from tooling import k8s

NAMESPACE = "mlrt"  # the base is the chart rendered for namespace mlrt (Spark's driver host names it)


@pytest.fixture(scope="module")
def installed(cluster):
    if kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0:
        pytest.fail(
            f"namespace {NAMESPACE} already exists on this cluster; the kustomize e2e installs the dev "
            "overlay there as a user would: delete it or run against another cluster"
        )
    # A scratch copy of the overlay with fresh random secrets, as `make k8s-secrets OVERLAY=dev` writes for a user.
    manifests = k8s.kustomize_build(k8s.KUSTOMIZE / "overlays" / "dev")
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
