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

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "k8s" / "helm" / "mlrt"
VALUES = ROOT / "tests" / "e2e" / "values-local.yaml"
RELEASE = "mlrt"
NAMESPACE = "mlrt-bench"
NOTEBOOK = f"{RELEASE}-jupyter-0"
HELM = os.environ.get("MLRT_HELM") or shutil.which("helm") or str(ROOT / ".cache/tools/bin/helm")
KUBECTL = os.environ.get("MLRT_KUBECTL") or shutil.which("kubectl") or "kubectl"
SECTIONS = ("startup", "session", "overhead", "imports")


def run(*cmd: str, timeout: int = 1200, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
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
    if run(KUBECTL, "version", "-o", "json", check=False, timeout=30).returncode:
        raise SystemExit(f"bench: the cluster of KUBECONFIG={config} does not answer (`kubectl version`)")


def installed() -> bool:
    return run(HELM, "status", RELEASE, "-n", NAMESPACE, check=False, timeout=60).returncode == 0


def recycle_test_volumes() -> None:
    """On the Kubernetes test cluster (`make k8s-up`), put released hostPath volumes back into its small pool, as
    the e2e tests do before each install; a real cluster's provisioner needs nothing."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import k8s_cluster

    if Path(os.environ.get("KUBECONFIG", "").split(":")[0]) == k8s_cluster.KUBECONFIG:
        run(sys.executable, str(ROOT / "scripts" / "k8s_cluster.py"), "volumes", timeout=300)


def install() -> float:
    recycle_test_volumes()
    started = time.monotonic()
    run(
        HELM,
        "install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--create-namespace",
        "-f",
        str(VALUES),
        "--wait",
        "--timeout",
        "15m",
    )
    return time.monotonic() - started


def uninstall() -> None:
    run(HELM, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=400)
    # Executor pods of drivers that were still running go with their driver's pod (owner references).
    run(KUBECTL, "-n", NAMESPACE, "wait", "--for=delete", "pod", "--all", "--timeout=300s", timeout=400)


def ensure_installed() -> None:
    check_cluster()
    if not installed():
        print(f"bench: installing the release {RELEASE} in {NAMESPACE}", file=sys.stderr, flush=True)
        install()


def in_driver(script: str, *args: str, timeout: int = 3600) -> dict:
    """Run a bench script in the JupyterLab pod (the notebooks' driver); its last output line is JSON."""
    run(KUBECTL, "-n", NAMESPACE, "cp", "-c", "jupyter", str(ROOT / "bench" / script), f"{NOTEBOOK}:/tmp/{script}")
    proc = run(
        KUBECTL,
        "-n",
        NAMESPACE,
        "exec",
        NOTEBOOK,
        "-c",
        "jupyter",
        "--",
        "python",
        f"/tmp/{script}",
        *args,
        timeout=timeout,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(
            f"bench: {script} {' '.join(args)} failed in {NOTEBOOK} ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1])


def startup(quick: bool) -> dict:
    seconds = []
    for attempt in range(1 if quick else 3):
        if installed():
            uninstall()
        seconds.append(install())
        print(f"bench: helm install run {attempt + 1}: {seconds[-1]:.1f} s", file=sys.stderr, flush=True)
    return {"seconds": seconds}
