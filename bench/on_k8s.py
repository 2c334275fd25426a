"""`make bench TARGET=k8s`: the release on the Kubernetes cluster KUBECONFIG points to (`make bench` starts the
test cluster, `make k8s-up`, when none is given), installed with the e2e tests' small-node values.

  startup   `helm install --wait` of a fresh release until every pod is ready (JupyterLab's readiness probe
            answers), after `helm uninstall` (the kept claims stay, as for a user's reinstall)
  session   a new driver in the JupyterLab pod until its two executor pods are registered
  overhead  each distributed API against its local counterpart, in the JupyterLab pod (bench/driver.py)
  imports   the pyspark-bytecode cut on executor pods, before and after in one run

The release is left installed in its own namespace (mlrt-bench); `helm uninstall mlrt -n mlrt-bench` removes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.k8s_cluster import cluster as k8s_cluster
from tooling import k8s

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "tests" / "e2e" / "values-local.yaml"
RELEASE = "mlrt"
NAMESPACE = "mlrt-bench"
NOTEBOOK = f"{RELEASE}-jupyter-0"
# The notebooks' driver (bench/run.py's in_driver): how to copy a file into the JupyterLab pod, run a command there.
COPY_TO_DRIVER = [k8s.KUBECTL, "-n", NAMESPACE, "cp", "-c", "jupyter"]
EXEC_IN_DRIVER = [k8s.KUBECTL, "-n", NAMESPACE, "exec", NOTEBOOK, "-c", "jupyter", "--"]


def run(*cmd: str, timeout: int = 1200, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise SystemExit(f"bench: `{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def check_cluster() -> None:
    config = os.environ.get("KUBECONFIG", "")
    if not config or not Path(config.split(":")[0]).is_file():
        raise SystemExit(
            "bench: KUBECONFIG is not set to a kubeconfig file: run `make bench TARGET=k8s` (it starts "
            "the test cluster) or point KUBECONFIG at your cluster"
        )
    if run(k8s.KUBECTL, "version", "-o", "json", check=False, timeout=30).returncode:
        raise SystemExit(f"bench: the cluster of KUBECONFIG={config} does not answer (`kubectl version`)")


def installed() -> bool:
    return run(k8s.HELM, "status", RELEASE, "-n", NAMESPACE, check=False, timeout=60).returncode == 0


def install() -> float:
    if k8s_cluster.is_test_cluster(os.environ.get("KUBECONFIG", "")):  # its small volume pool, as the e2e tests do
        run(sys.executable, "-m", "tests.k8s_cluster.cluster", "volumes", timeout=300)
    started = time.monotonic()
    run(
        k8s.HELM,
        "install",
        RELEASE,
        str(k8s.CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(VALUES),
        # A release as installed by default, without the e2e tests' cluster library: its pods would install it from
        # PyPI at every start (and need the host's CA, which the e2e tests hand over).
        "--set-json",
        "libraries.packages=[]",
        "--wait",
        "--timeout",
        "15m",
    )
    return time.monotonic() - started


def uninstall() -> None:
    run(k8s.HELM, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=400)
    # Executor pods of drivers that were still running go with their driver's pod (owner references).
    run(k8s.KUBECTL, "-n", NAMESPACE, "wait", "--for=delete", "pod", "--all", "--timeout=300s", timeout=400)


def ensure_installed() -> None:
    check_cluster()
    if not installed():
        print(f"bench: installing the release {RELEASE} in {NAMESPACE}", file=sys.stderr, flush=True)
        install()


def startup(quick: bool) -> dict:
    seconds = []
    for attempt in range(1 if quick else 3):
        if installed():
            uninstall()
        seconds.append(install())
        print(f"bench: helm install run {attempt + 1}: {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    return {"seconds": seconds}
