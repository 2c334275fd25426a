"""End-to-end tests on a real Kubernetes cluster: the one `make k8s-up` gives (KUBECONFIG), never a mock.

Without a reachable cluster every test here fails, naming the fix, rather than skipping.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.k8s_cluster import cluster as k8s_cluster
from tooling import k8s, versions

HELM, KUBECTL = k8s.HELM, k8s.KUBECTL
CHART = ROOT / "k8s" / "helm" / "mlrt"
VALUES = Path(__file__).with_name("values-local.yaml")


def run(*cmd: str, check: bool = True, timeout: int = 600, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and proc.returncode:
        pytest.fail(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def kubectl(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(KUBECTL, *args, **kwargs)


def kjson(*args: str) -> dict:
    return json.loads(kubectl(*args, "-o", "json").stdout)


@pytest.fixture(scope="session")
def cluster() -> str:
    """The kubeconfig of a reachable cluster; fails (does not skip) without one."""
    config = os.environ.get("KUBECONFIG", "")
    if not config or not Path(config.split(":")[0]).is_file():
        pytest.fail("no cluster: KUBECONFIG is not set to a kubeconfig file; run `make k8s-up` (or `make k8s-e2e`)")
    version = run(KUBECTL, "version", "-o", "json", check=False, timeout=30)
    if version.returncode or "serverVersion" not in version.stdout:
        pytest.fail(f"the cluster of KUBECONFIG={config} does not answer: {version.stderr.strip()[-500:]}")
    return config


@pytest.fixture(autouse=True, scope="module")
def fresh_volumes(cluster):
    """On the Kubernetes test cluster, put released hostPath volumes back into the pool before each install."""
    if k8s_cluster.is_test_cluster(cluster):
        run(sys.executable, "-m", "tests.k8s_cluster.cluster", "volumes")


@contextmanager
def scratch_namespace(prefix: str, wait_on_delete: bool = True):
    """A fresh namespace under Pod Security "restricted", deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    try:
        yield name
    finally:
        wait = ["--wait=true", "--timeout=180s"] if wait_on_delete else ["--wait=false"]
        kubectl("delete", "namespace", name, *wait, check=False, timeout=240)


@pytest.fixture(scope="module")
def namespace(cluster):
    with scratch_namespace("mlrt-e2e") as name:
        yield name


def enforcement(cluster: str) -> str:
    """Whether the cluster enforces NetworkPolicies: the Kubernetes test cluster records whether its agent could
    program the kernel ("enforced: ..." or "unavailable: <why>"); another cluster is taken to enforce them."""
    if not k8s_cluster.is_test_cluster(cluster):
        return "enforced: assumed (not the Kubernetes test cluster)"
    status = k8s_cluster.NETWORK_POLICIES_STATUS
    return status.read_text().strip() if status.is_file() else "unavailable: no enforcement status recorded"


@pytest.fixture(scope="session")
def enforced(cluster):
    """NetworkPolicy tests need a cluster that enforces policies; without enforcement they report skipped with
    the reason, never passed."""
    state = enforcement(cluster)
    if not state.startswith("enforced"):
        pytest.skip(f"NetworkPolicy is not enforced on the Kubernetes test cluster: {state}")
    print(f"NetworkPolicy on the Kubernetes test cluster: {state}", file=sys.stderr)


@pytest.fixture(scope="module")
def namespace_outside(cluster):
    """A second namespace: pods in it are not the release's neighbours."""
    with scratch_namespace("mlrt-e2e-outside", wait_on_delete=False) as name:
        yield name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def port_forward(namespace: str, target: str, remote: int):
    """`kubectl port-forward` to a Service; yields the local URL once it accepts connections."""
    local = free_port()
    proc = subprocess.Popen(
        [KUBECTL, "-n", namespace, "port-forward", target, f"{local}:{remote}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", local), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"port-forward {target} exited: {proc.stdout.read()}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{local}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def secret_value(namespace: str, name: str, key: str) -> str:
    return base64.b64decode(kjson("-n", namespace, "get", "secret", name)["data"][key]).decode()


def executor_pods(namespace: str, selector: str = "") -> list[dict]:
    """The namespace's executor pods (Spark's spark-role label), narrowed by a further label selector."""
    labels = ",".join(filter(None, ["spark-role=executor", selector]))
    return kjson("-n", namespace, "get", "pods", "-l", labels)["items"]


def run_in_notebook(namespace: str, pod: str, code: str, timeout: int = 900) -> str:
    """Run Python in the notebook (driver) container, as a notebook cell would, with its Spark defaults."""
    return kubectl("-n", namespace, "exec", "-i", pod, "--", "python", "-", stdin=code, timeout=timeout).stdout


def notebook_job_runs_on_executor_pods(namespace: str, notebook_pod: str, executor_prefix: str) -> None:
    """SPARK_JOB in the notebook pod: a Kubernetes driver whose tasks ran on >= 2 of its executor pods."""
    out = run_in_notebook(namespace, notebook_pod, SPARK_JOB)
    lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith(("MASTER", "SUM", "HOSTS")))
    assert lines["MASTER"].startswith("k8s://")
    assert int(lines["SUM"]) == sum(i * i for i in range(16))
    hosts = lines["HOSTS"].split(",")
    assert len(hosts) >= 2 and all(h.startswith(executor_prefix) for h in hosts), hosts


def failure_lines(log: str, limit: int = 80) -> str:
    """What a pytest run's log says went wrong, short enough to read at the end of CI's output: its failure lines
    (`E ...`, the exceptions' own words) and its short summary; the whole log is printed before."""
    lines = log.splitlines()
    errors = [line for line in lines if line.startswith("E ")]
    start = next((i for i, line in enumerate(lines) if "short test summary info" in line), len(lines))
    return "\n".join(errors[:limit] + lines[start:])


def namespace_health(namespace: str) -> str:
    """The namespace's pods (status, restarts: a server restarted by a failed probe shows here) and its warning
    events, for a failure message."""
    pods = kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False, timeout=60).stdout
    events = kubectl(
        "-n", namespace, "get", "events", "--field-selector", "type=Warning", "--sort-by=.lastTimestamp",
        check=False, timeout=60,
    ).stdout  # fmt: skip
    return f"pods:\n{pods}\nwarning events (newest last):\n{chr(10).join(events.splitlines()[-25:])}"


def only_kept_claims_are_left(
    namespace: str, kept: list[str], delete: bool = True, users_own: tuple[str, ...] = ()
) -> None:
    """After an uninstall: nothing but the claims kept on purpose (the notebook workspace, which StatefulSets
    keep, and under Helm the lake, which the chart marks `keep`: notebooks and tables are never deleted by an
    uninstall) and what the user made before installing (USERS_OWN, e.g. a ConfigMap the values name, which the
    release must leave alone); then (delete) the test deletes the claims explicitly."""
    keep = tuple(f"persistentvolumeclaim/{claim}" for claim in kept) + users_own
    deadline = time.monotonic() + 180
    while (left := leftovers(namespace, keep=keep)) and time.monotonic() < deadline:
        time.sleep(3)
    assert left == [], f"left behind after the uninstall: {left}"
    claims = kubectl("-n", namespace, "get", "pvc", "-o", "name").stdout.split()
    assert sorted(claims) == sorted(k for k in keep if k.startswith("persistentvolumeclaim/")), claims
    if delete:
        kubectl("-n", namespace, "delete", "pvc", "--all", "--wait=true")


def leftovers(namespace: str, keep: tuple[str, ...] = ()) -> list[str]:
    """Everything namespaced that is still in the namespace, less what Kubernetes itself puts there."""
    kinds = (
        "pods,services,configmaps,secrets,persistentvolumeclaims,serviceaccounts,statefulsets,deployments,"
        "replicasets,jobs,roles,rolebindings,networkpolicies,ingresses,poddisruptionbudgets"
    )
    names = kubectl("-n", namespace, "get", kinds, "-o", "name").stdout.split()
    ignored = re.compile(r"^(configmap/kube-root-ca\.crt|serviceaccount/default)$")
    return [n for n in names if not ignored.match(n) and not any(n.startswith(k) for k in keep)]


SPARK_JOB = """
import socket
from pyspark.sql import SparkSession
# A small test node: executors ask for a tenth of a CPU (each still runs one task at a time).
spark = (SparkSession.builder.appName("mlrt-e2e-notebook")
         .config("spark.kubernetes.executor.request.cores", "100m").getOrCreate())
hosts = spark.sparkContext.parallelize(range(16), 16).map(lambda i: (socket.gethostname(), i * i)).collect()
print("MASTER", spark.sparkContext.master)
print("SUM", sum(v for _, v in hosts))
print("HOSTS", ",".join(sorted({h for h, _ in hosts})))
spark.stop()
"""


# --- network probes: a pod that tries TCP connections, for the NetworkPolicy tests ------------------------------

PROBE_TIMEOUT = 3  # seconds a refused (dropped) connection costs
PROBE = f"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def attempt(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout={PROBE_TIMEOUT}).close()
        return "open"
    except socket.timeout:
        return "timeout"
    except OSError as err:
        return type(err).__name__
with ThreadPoolExecutor(16) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(attempt, sys.argv[1:])))))
"""


def probe_pod_manifest(namespace: str, name: str, labels: dict[str, str], serve: int | None = None) -> str:
    """A pod of the spark image (Python, non-root, Pod Security "restricted") that sleeps, or serves HTTP on
    `serve`; the NetworkPolicies see it by its labels alone."""
    image = f"mlrt/spark:{versions.load()['MLRT_VERSION']}"
    command = ["python", "-m", "http.server", str(serve)] if serve else ["sleep", "infinity"]
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 185, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe", "image": image, "imagePullPolicy": "IfNotPresent", "command": command,
                "workingDir": "/tmp",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}},
            }],
        },
    })  # fmt: skip


@contextmanager
def probe_pods(*pods: tuple[str, str, dict[str, str]], serve: int | None = None):
    """Start pods (namespace, name, labels), wait until they run, delete them afterwards; yields their IPs."""
    try:
        for namespace, name, labels in pods:
            kubectl("apply", "-f", "-", stdin=probe_pod_manifest(namespace, name, labels, serve))
        ips = []
        for namespace, name, _ in pods:
            kubectl("-n", namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=180s", timeout=200)
            ips.append(kjson("-n", namespace, "get", "pod", name)["status"]["podIP"])
        yield ips
    finally:
        for namespace, name, _ in pods:
            kubectl("-n", namespace, "delete", "pod", name, "--wait=false", "--ignore-not-found", check=False)


def reach(namespace: str, pod: str, *targets: str) -> dict[str, str]:
    """Try a TCP connection from the pod to each host:port at once: "open", "timeout" (dropped, as a
    NetworkPolicy drops), or the error's name (e.g. ConnectionRefusedError: reached, nothing listening)."""
    out = kubectl("-n", namespace, "exec", pod, "--", "python", "-c", PROBE, *targets, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def reach_until(namespace: str, pod: str, targets: list[str], done, wait: float = 30) -> dict[str, str]:
    """`reach` again until `done(outcomes)` holds or `wait` seconds pass (the policy agent applies a change a few
    seconds after the API server has it); returns the last outcomes, for the caller to assert."""
    deadline = time.monotonic() + wait
    while not done(outcomes := reach(namespace, pod, *targets)) and time.monotonic() < deadline:
        time.sleep(1)
    return outcomes
