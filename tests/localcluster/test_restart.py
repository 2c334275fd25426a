"""The Kubernetes test cluster comes back after `down`: up -> down -> up, each start proven by a Ready node.

Runs the real cluster script as `make test` does (root, binaries built by tests/k8s_cluster/build.py). It leaves the
cluster up, so that the e2e tests that follow reuse it; `make test` stops it at the end (the last `down`).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

SCRIPT = [sys.executable, "-m", "tests.k8s_cluster.cluster"]


def cluster(command: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    proc = subprocess.run([*SCRIPT, command], cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(f"tests.k8s_cluster.cluster {command}: exit {proc.returncode} in {time.monotonic() - started:.0f} s")
    assert proc.returncode == 0, f"`python -m tests.k8s_cluster.cluster {command}` failed:\n{proc.stderr[-3000:]}"
    return proc


def node_ready(kubeconfig: str) -> bool:
    from tests.k8s_cluster import build as k8s_build
    from tooling import versions

    kubectl = k8s_build.cache_dir(versions.load()) / "kubectl"
    out = subprocess.run(
        [
            str(kubectl),
            f"--kubeconfig={kubeconfig}",
            "get",
            "node",
            "mlrt-node",
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip() == "True"


def test_the_local_cluster_starts_again_after_down():
    from tests.k8s_cluster import cluster as k8s_cluster

    if (given := k8s_cluster.user_kubeconfig()) and given != k8s_cluster.KUBECONFIG and k8s_cluster.reachable(given):
        pytest.skip(f"KUBECONFIG names a reachable cluster ({given}); the Kubernetes test cluster is not used")
    first = cluster("up").stdout.strip().splitlines()[-1]
    assert node_ready(first)
    cluster("down")
    status = subprocess.run([*SCRIPT, "status"], capture_output=True, text=True)
    assert status.returncode == 1 and "running" not in status.stdout, status.stdout
    second = cluster("up").stdout.strip().splitlines()[-1]
    assert second == first and node_ready(second)
