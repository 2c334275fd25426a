"""A Kubernetes cluster for the end-to-end tests: reuse the one the kubeconfig points to, else run a local one.

  python -m tests.k8s_cluster.cluster up         # print the kubeconfig to use (starting the test cluster if needed)
  python -m tests.k8s_cluster.cluster down       # stop the test cluster and delete its state (images are kept)
  python -m tests.k8s_cluster.cluster status
  python -m tests.k8s_cluster.cluster volumes    # put released hostPath volumes of the test cluster to the pool

Reuse: when $KUBECONFIG (or ~/.kube/config) names a cluster whose API answers, that cluster is used as is
(kind, k3d, minikube, a cloud cluster); its nodes must already have the mlrt images under their own names
(`make build`, then `kind load docker-image` or the like).

Local: a single node on this host, as root, built from Go modules by tests/k8s_cluster/build.py: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kubelet, kube-proxy (iptables), CoreDNS and kube-network-policies (the
network SIG's NetworkPolicy agent: nftables and nfqueue, built with go install) run as host processes;
containerd, runc and the CNI plugins (ptp, host-local, portmap, loopback, as kind uses) come from Debian; the
pause image and the project's images are imported into the node's containerd. kubeadm writes the PKI and
kubeconfigs. PersistentVolumeClaims are served from a pool of hostPath volumes (storage class `mlrt-local`).
Everything lives under /var/lib/mlrt-k8s (state, logs) and /run/mlrt-k8s (sockets, pids).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import ssl
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.k8s_cluster import build as k8s_build
from tooling import images, versions

ROOT = versions.ROOT
CONFIG = Path(__file__).resolve().parent / "config"
STATE = Path(os.environ.get("MLRT_K8S_STATE", "/var/lib/mlrt-k8s"))
RUN = Path(os.environ.get("MLRT_K8S_RUN", "/run/mlrt-k8s"))
# One JSON line per image import into the node (time, images, bytes the node keeps, seconds).
IMPORTS_LOG = STATE / "imports.log"
LOGS = STATE / "logs"
PKI = STATE / "pki"
KUBECONFIG = STATE / "admin.conf"
# The node's address: a /32 on the loopback device, the same on every machine (certificates stay valid).
NODE_IP = os.environ.get("MLRT_K8S_NODE_IP", "10.250.0.1")
NODE_NAME = "mlrt-node"
POD_CIDR = "10.244.0.0/16"
NODE_POD_CIDR = "10.244.0.0/24"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
CONTAINERD_SOCK = RUN / "containerd.sock"
# Free disk an image import must leave: the kubelet's eviction and image GC thresholds are 1% of the disk.
MIN_FREE_AFTER_IMPORT = 8 * 10**9
# ... and while it runs: its temporary copies fill the disk for minutes, and anything else writing needs room
MIN_FREE_DURING_IMPORT = 2 * 10**9
CNI_BIN = Path("/usr/lib/cni")
DEBIAN_PACKAGES = {  # binary -> Debian package
    "containerd": "containerd",
    "runc": "runc",
    "iptables": "iptables",
    "conntrack": "conntrack",
    str(CNI_BIN / "ptp"): "containernetworking-plugins",
}
STORAGE_CLASS = "mlrt-local"
VOLUME_POOL = 14  # a release claims 7 (6 without the hub), its two hub users 2; a reinstall 2 more, 4 kept
VOLUME_SIZE = "50Gi"
# Start order; `down` stops them in reverse.
COMPONENTS = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kube-network-policies",
    "coredns",
)
# NetworkPolicy enforcement (the ptp CNI has none): built by tooling/install-go-tools.sh at
# KUBE_NETWORK_POLICIES_VERSION; its metrics endpoint doubles as the readiness check. It only knows the in-cluster
# configuration (a ServiceAccount token at the fixed path below), so it runs in a mount namespace of its own where
# that path is a bind mount of NETWORK_POLICIES_SA (nothing is mounted on the host's own path).
NETWORK_POLICIES_BIN = versions.TOOLS_BIN / "kube-network-policies"
NETWORK_POLICIES_METRICS = "127.0.0.1:19080"
NETWORK_POLICIES_SA = RUN / "kube-network-policies"
# "enforced: <how>", or "unavailable: <why>" when the agent cannot program the kernel; the e2e NetworkPolicy tests
# read it and report skipped with the reason rather than pass.
NETWORK_POLICIES_STATUS = STATE / "network-policy-enforcement"
# The agent is built with a patch (tests/k8s_cluster/kube-network-policies/) that, on a kernel whose nf_tables
# lacks the queue expression, programs the same rules with iptables' NFQUEUE target (MLRT_K8S_POLICY_FALLBACK=off:
# upstream's behaviour, nothing enforced on such a kernel).
POLICY_FALLBACK = os.environ.get("MLRT_K8S_POLICY_FALLBACK", "iptables")
# Chains the agent's iptables fallback adds to the mangle table (removed at its exit, and by `down`).
POLICY_CHAINS = {"KUBE-NETWORK-POLICIES": ["POSTROUTING"], "KUBE-NETWORK-POLICIES-DNS": ["PREROUTING", "-p", "udp",
                 "-m", "udp", "--dport", "53"]}  # fmt: skip
IN_CLUSTER_SA = Path("/run/secrets/kubernetes.io/serviceaccount")


class ClusterError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"k8s_cluster: {message}", file=sys.stderr, flush=True)


def run(*cmd: str | Path, check: bool = True, capture: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], text=True, capture_output=capture, **kwargs)
    if check and proc.returncode:
        raise ClusterError(
            f"`{' '.join(map(str, cmd))}` failed (exit {proc.returncode}): {(proc.stderr or '')[-2000:]}"
        )
    return proc


# --- reuse -------------------------------------------------------------------------------------------------


def user_kubeconfig() -> Path | None:
    """The kubeconfig kubectl would use: the first file of KUBECONFIG, else ~/.kube/config."""
    path = Path((os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(":")[0])
    return path if path.is_file() else None


def reachable(kubeconfig: Path) -> bool:
    try:
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=str(kubeconfig))
        client.VersionApi(api).get_code(_request_timeout=5)
        return True
    except Exception:
        return False


# --- host preparation -------------------------------------------------------------------------------------


def ensure_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError(
            "no reachable cluster in KUBECONFIG, and the Kubernetes test cluster must run as root "
            "(it starts containerd and kubelet); re-run as root or point KUBECONFIG at a cluster"
        )


def ensure_packages() -> None:
    missing = sorted(
        {pkg for binary, pkg in DEBIAN_PACKAGES.items() if not shutil.which(binary) and not Path(binary).exists()}
    )
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise ClusterError(f"missing {', '.join(missing)}; install them (a Debian-like host installs them itself)")
    log(f"installing Debian packages: {' '.join(missing)}")
    run("apt-get", "update", "-qq")
    run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *missing,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )


def prepare_host() -> None:
    for key in ("net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet"):
        Path("/proc/sys", key).write_text("1\n")
    addresses = run("ip", "-4", "-o", "addr", "show", "dev", "lo").stdout
    if f" {NODE_IP}/" not in addresses:
        run("ip", "addr", "add", f"{NODE_IP}/32", "dev", "lo")
    # Docker sets the FORWARD policy to DROP; let pod traffic through (DOCKER-USER is consulted first).
    chain = "DOCKER-USER" if run("iptables", "-n", "-L", "DOCKER-USER", check=False).returncode == 0 else "FORWARD"
    for rule in (["-s", POD_CIDR, "-j", "ACCEPT"], ["-d", POD_CIDR, "-j", "ACCEPT"]):
        if run("iptables", "-C", chain, *rule, check=False).returncode:
            run("iptables", "-I", chain, "1", *rule)
    # The kubelet's OOM watcher reads /dev/kmsg; make sure it exists (some container hosts lack it).
    if not Path("/dev/kmsg").exists():
        os.symlink("/dev/console", "/dev/kmsg")


# --- PKI and configuration --------------------------------------------------------------------------------


def config(file: str, /, **values: object) -> str:
    """A configuration file of the test cluster (tests/k8s_cluster/config/<name>) with its ${placeholders} filled;
    a placeholder without a value is an error."""
    return string.Template((CONFIG / file).read_text()).substitute({k: str(v) for k, v in values.items()})


def kubeadm_config(pins: dict[str, str]) -> str:
    return config(
        "kubeadm.yaml",
        node_ip=NODE_IP,
        node_name=NODE_NAME,
        kubernetes_version=pins["KUBERNETES_VERSION"],
        pki=PKI,
        pod_cidr=POD_CIDR,
        service_cidr=SERVICE_CIDR,
        cluster_domain=CLUSTER_DOMAIN,
    )


def write_pki(bins: Path, pins: dict[str, str]) -> None:
    kubeadm_yaml = STATE / "kubeadm.yaml"
    kubeadm = bins / "kubeadm"
    if not (STATE / "kube-proxy.conf").is_file():
        kubeadm_yaml.write_text(kubeadm_config(pins))
        run(kubeadm, "init", "phase", "certs", "all", "--config", kubeadm_yaml)
        run(kubeadm, "init", "phase", "kubeconfig", "all", "--config", kubeadm_yaml, "--kubeconfig-dir", STATE)
    # A client certificate (and kubeconfig) per host component that is not part of kubeadm's set.
    for component in ("kube-proxy", "coredns"):
        if not (STATE / f"{component}.conf").is_file():
            user = run(kubeadm, "kubeconfig", "user", "--config", kubeadm_yaml, "--client-name", f"system:{component}")
            (STATE / f"{component}.conf").write_text(user.stdout)
    for conf in STATE.glob("*.conf"):
        conf.chmod(0o600)


def can_lower_oom_score() -> bool:
    """Whether this host lets root lower oom_score_adj (needs CAP_SYS_RESOURCE, bit 24 of CapEff)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def upstream_resolv_conf() -> Path:
    """The resolv.conf naming the host's real resolvers, for CoreDNS and the kubelet. A loopback stub
    (systemd-resolved's 127.0.0.53) would make CoreDNS forward to itself from inside pods."""
    path = Path("/etc/resolv.conf")
    servers = [line.split()[1] for line in path.read_text().splitlines() if line.startswith("nameserver ")]
    if servers and all(server.startswith("127.") for server in servers):
        resolved = Path("/run/systemd/resolve/resolv.conf")
        if resolved.is_file():
            return resolved
        raise ClusterError(f"{path} names only loopback resolvers {servers}; point it at a real resolver")
    return path


def write(path: Path, text: str) -> None:
    """Write only when the content changes: kube-proxy exits when its configuration file is touched."""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def write_configs(pins: dict[str, str]) -> None:
    lower_oom = can_lower_oom_score()
    resolv_conf = upstream_resolv_conf()
    (STATE / "cni").mkdir(parents=True, exist_ok=True)
    write(
        STATE / "cni" / "10-mlrt.conflist",
        config("10-mlrt.conflist", ipam_dir=RUN / "cni-ipam", node_pod_cidr=NODE_POD_CIDR),
    )
    write(
        STATE / "containerd.toml",
        config(
            "containerd.toml",
            root=STATE / "containerd",
            state=RUN / "containerd",
            socket=CONTAINERD_SOCK,
            pause_image=pins["PAUSE_IMAGE"],
            restrict_oom_score_adj=str(not lower_oom).lower(),
            cni_bin=CNI_BIN,
            cni_conf=STATE / "cni",
        ),
    )
    write(
        STATE / "kubelet.yaml",
        config(
            "kubelet.yaml",
            containerd_socket=CONTAINERD_SOCK,
            node_ip=NODE_IP,
            cluster_domain=CLUSTER_DOMAIN,
            resolv_conf=resolv_conf,
            client_ca=PKI / "ca.crt",
            oom_score_adj=-999 if lower_oom else 0,
        ),
    )
    write(
        STATE / "kube-proxy.yaml",
        config("kube-proxy.yaml", pod_cidr=POD_CIDR, node_name=NODE_NAME, kubeconfig=STATE / "kube-proxy.conf"),
    )
    write(
        STATE / "Corefile",
        config(
            "Corefile",
            node_ip=NODE_IP,
            cluster_domain=CLUSTER_DOMAIN,
            kubeconfig=STATE / "coredns.conf",
            resolv_conf=resolv_conf,
        ),
    )


def command_lines(bins: Path) -> dict[str, list[str]]:
    etcd = "http://127.0.0.1:2379"
    return {
        "containerd": ["containerd", "--config", str(STATE / "containerd.toml")],
        "etcd": [
            str(bins / "etcd"),
            "--name",
            NODE_NAME,
            "--data-dir",
            str(STATE / "etcd"),
            "--listen-client-urls",
            etcd,
            "--advertise-client-urls",
            etcd,
            "--listen-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
            "--initial-cluster",
            f"{NODE_NAME}=http://127.0.0.1:2380",
            "--listen-metrics-urls",
            "http://127.0.0.1:2381",
            "--quota-backend-bytes",
            str(2 * 1024**3),
            # The test cluster's state is thrown away by `down`: no fsync, so a disk busy with image layers
            # cannot stall the single member's first election.
            "--unsafe-no-fsync",
        ],
        "kube-apiserver": [
            str(bins / "kube-apiserver"),
            f"--advertise-address={NODE_IP}",
            "--secure-port=6443",
            f"--etcd-servers={etcd}",
            f"--client-ca-file={PKI / 'ca.crt'}",
            f"--tls-cert-file={PKI / 'apiserver.crt'}",
            f"--tls-private-key-file={PKI / 'apiserver.key'}",
            f"--kubelet-client-certificate={PKI / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={PKI / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--proxy-client-cert-file={PKI / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={PKI / 'front-proxy-client.key'}",
            f"--requestheader-client-ca-file={PKI / 'front-proxy-ca.crt'}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--service-account-key-file={PKI / 'sa.pub'}",
            f"--service-account-signing-key-file={PKI / 'sa.key'}",
            f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
        ],
        "kube-controller-manager": [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={STATE / 'controller-manager.conf'}",
            f"--authentication-kubeconfig={STATE / 'controller-manager.conf'}",
            f"--authorization-kubeconfig={STATE / 'controller-manager.conf'}",
            "--bind-address=127.0.0.1",
            f"--client-ca-file={PKI / 'ca.crt'}",
            f"--cluster-signing-cert-file={PKI / 'ca.crt'}",
            f"--cluster-signing-key-file={PKI / 'ca.key'}",
            f"--root-ca-file={PKI / 'ca.crt'}",
            f"--service-account-private-key-file={PKI / 'sa.key'}",
            "--use-service-account-credentials=true",
            "--controllers=*,bootstrapsigner,tokencleaner",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={POD_CIDR}",
            "--node-cidr-mask-size=24",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--leader-elect=false",
        ],
        "kube-scheduler": [
            str(bins / "kube-scheduler"),
            f"--kubeconfig={STATE / 'scheduler.conf'}",
            f"--authentication-kubeconfig={STATE / 'scheduler.conf'}",
            f"--authorization-kubeconfig={STATE / 'scheduler.conf'}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ],
        "kubelet": [
            str(bins / "kubelet"),
            f"--config={STATE / 'kubelet.yaml'}",
            f"--kubeconfig={STATE / 'kubelet.conf'}",
            f"--root-dir={STATE / 'kubelet'}",
            f"--node-ip={NODE_IP}",
            f"--hostname-override={NODE_NAME}",
        ],
        "kube-proxy": [str(bins / "kube-proxy"), f"--config={STATE / 'kube-proxy.yaml'}"],
        "coredns": [str(bins / "coredns"), "-conf", str(STATE / "Corefile")],
        # The host's network namespace, a private mount namespace (see NETWORK_POLICIES_SA). No NRI (containerd's
        # is not configured): pod addresses come from the API server's pod informer.
        "kube-network-policies": [
            "env",
            f"KUBERNETES_SERVICE_HOST={NODE_IP}",
            "KUBERNETES_SERVICE_PORT=6443",
            "unshare",
            "--mount",
            "--propagation=private",
            "sh",
            "-c",
            'mount --bind "$0" "$1" && shift && exec "$@"',
            str(NETWORK_POLICIES_SA),
            str(IN_CLUSTER_SA),
            str(NETWORK_POLICIES_BIN),
            f"--hostname-override={NODE_NAME}",
            f"--metrics-bind-address={NETWORK_POLICIES_METRICS}",
            "--disable-nri",
            *(["--iptables-fallback"] if POLICY_FALLBACK == "iptables" else []),
        ],
    }


# --- processes --------------------------------------------------------------------------------------------


def pid_of(name: str) -> int | None:
    """The pid of a running component (its pid file, checked against the program the process runs).

    /proc/<pid>/exe, not cmdline: right after exec the kernel has switched the program but not yet set up the
    new argument list, so cmdline reads empty for a moment (measured: 17 of 500 fresh kube-apiservers).
    """
    try:
        pid = int((RUN / f"{name}.pid").read_text())
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except (OSError, ValueError):
        return None
    return pid if Path(exe).name == name else None


# The components this process started: their Popen (for the exit status) and where their log stood at start.
_started: dict[str, tuple[subprocess.Popen, int]] = {}


def start(name: str, argv: list[str]) -> None:
    if pid_of(name):
        return
    log_path = LOGS / f"{name}.log"
    with open(log_path, "ab") as out:
        offset = out.tell()
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=STATE
        )
    _started[name] = (proc, offset)
    (RUN / f"{name}.pid").write_text(str(proc.pid))


def own_output(name: str, lines: int = 25) -> str:
    """The last lines a component wrote since this process started it (never an older run's)."""
    offset = _started[name][1] if name in _started else 0
    with open(LOGS / f"{name}.log", "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return "\n  ".join(text.splitlines()[-lines:]) or "(no output)"


def wait_for(what: str, check, timeout: float, component: str | None = None) -> None:
    """Poll `check` until it holds; fail at once, naming the exit status, when the component exits meanwhile."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return
        except Exception:
            pass
        if component in _started and (code := _started[component][0].poll()) is not None:
            raise ClusterError(
                f"{component} exited with status {code} after {time.monotonic() - started:.0f} s while waiting for "
                f"{what} (log: {LOGS / component}.log); its last output:\n  {own_output(component)}"
            )
        if component and component not in _started and not pid_of(component):
            raise ClusterError(f"{component} is not running (waiting for {what}; log: {LOGS / component}.log)")
        time.sleep(1)
    detail = ""
    if component and (pid := pid_of(component)):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text(errors="replace")
        detail = f"; {component} (pid {pid}) still runs: state {state}, waiting in {wchan or '-'}"
    if component:
        detail += f"; its last output:\n  {own_output(component)}"
    raise ClusterError(f"{what} not ready within {timeout:.0f} s (log: {LOGS / (component or '')}){detail}")


def https_ok(url: str) -> bool:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    context.load_cert_chain(str(PKI / "apiserver-kubelet-client.crt"), str(PKI / "apiserver-kubelet-client.key"))
    with urllib.request.urlopen(url, context=context, timeout=3) as response:
        return response.status == 200


def kubectl(bins: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return run(bins / "kubectl", f"--kubeconfig={KUBECONFIG}", *args, input=stdin, check=check)


# --- images -----------------------------------------------------------------------------------------------


def is_test_cluster(kubeconfig: str) -> bool:
    """Whether a KUBECONFIG value (its first file) is this test cluster's: its small volume pool then needs
    `volumes` before an install; a real cluster's provisioner needs nothing."""
    return Path(kubeconfig.split(":", maxsplit=1)[0]) == KUBECONFIG


def ctr(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run("ctr", "--address", CONTAINERD_SOCK, "--namespace", "k8s.io", *args, **kwargs)


def docker_image_id(ref: str) -> str | None:
    return images.inspect(ref, "{{.Id}}")


@dataclass(frozen=True)
class ImportSpace:
    """Disk an import takes, in bytes: `kept` stays in the node's containerd; `export` is Docker's temporary copy
    of the images (`docker save` writes them whole to its own temporary folder before streaming them) and
    `ingest` containerd's copy of the layer it is receiving (written in full before containerd sees it already
    holds that layer); both are gone when the import ends."""

    kept: int
    export: int
    ingest: int


def import_space(wanted: dict[str, tuple[int, list[str]]], stored: dict[str, int]) -> ImportSpace:
    """Estimate an import of images (ref -> Docker's size and layer diff IDs) into a containerd holding `stored`.

    containerd keeps a new layer twice (the blob and its unpacked snapshot); a layer it already holds costs
    nothing, so a notebook image rebuilt for one changed file keeps kilobytes, not twice its 10 GB. Docker gives an
    image's size, not its layers', so an image's new bytes are its size less its layers the node holds, the largest
    layer is bounded by its image, and an image whose layers begin another's in the batch (spark under ml under
    notebook) is counted in that one."""
    heads: list[tuple[int, list[str]]] = []
    for size, layers in sorted(wanted.values(), key=lambda item: -len(item[1])):
        if not any(longer[: len(layers)] == layers for _, longer in heads):
            heads.append((size, layers))
    return ImportSpace(
        kept=2 * sum(max(0, size - sum(stored.get(layer, 0) for layer in layers)) for size, layers in heads),
        export=sum(size for size, _ in heads),
        ingest=max((size for size, _ in heads), default=0),
    )


def check_space(space: ImportSpace, free: int, where: Path, docker_free: int | None = None) -> None:
    """Refuse an import that would fill the disk, naming the fix: a disk filled mid-import leaves half-unpacked
    snapshots behind, and one filled by what the import keeps makes the kubelet evict and garbage-collect every
    image it is not running, and imported images cannot be pulled back (seen: the node lost its pause image).
    `docker_free` is the free space of Docker's filesystem where it is not the node's (None: the same one)."""
    fix = (
        "Free space (e.g. `docker builder prune --filter until=24h`, `docker image prune`) and run `make k8s-up` again"
    )
    if free - space.kept < MIN_FREE_AFTER_IMPORT:
        raise ClusterError(
            f"importing the images adds ~{space.kept / 1e9:.0f} GB to {where} and must leave "
            f"{MIN_FREE_AFTER_IMPORT / 1e9:.0f} GB free after it; {free / 1e9:.0f} GB are free. {fix}"
        )
    if docker_free is None:  # Docker's export lands on the node's filesystem too
        during = [(free, space.kept + space.ingest + space.export, where)]
    else:
        during = [(free, space.kept + space.ingest, where), (docker_free, space.export, Path("Docker's data root"))]
    for available, peak, place in during:
        if available - peak < MIN_FREE_DURING_IMPORT:
            raise ClusterError(
                f"importing the images needs ~{peak / 1e9:.0f} GB free in {place} while it runs (Docker's export "
                f"and containerd's copy of each layer, gone after it); {available / 1e9:.0f} GB are free. {fix}"
            )


def size_and_layers(ref: str) -> tuple[int, list[str]]:
    """Docker's size of an image and its layers' diff IDs, in one inspect."""
    size, *layers = (images.inspect(ref, "{{.Size}}{{range .RootFS.Layers}} {{.}}{{end}}") or "0").split()
    return int(size), layers


def stored_layers() -> dict[str, int]:
    """The layers the node's containerd holds, by diff ID, with their sizes: `docker save` streams each layer
    as a tar named by its diff ID, and containerd keeps that blob under the same digest."""
    blobs = STATE / "containerd" / "io.containerd.content.v1.content" / "blobs" / "sha256"
    return {f"sha256:{blob.name}": blob.stat().st_size for blob in blobs.glob("*")} if blobs.is_dir() else {}


def docker_free_elsewhere() -> int | None:
    """Free space where `docker save` writes its temporary copy (the daemon's data root), when that is not the
    node's filesystem; None when it is (or when Docker does not say)."""
    root = run("docker", "info", "--format", "{{.DockerRootDir}}", check=False).stdout.strip()
    if not root or not Path(root).is_dir() or Path(root).stat().st_dev == STATE.stat().st_dev:
        return None
    return shutil.disk_usage(root).free


def remove_interrupted_unpacks() -> None:
    """An import cut short (a full disk, a kill) leaves its unpack's working snapshot ("extract-<n> <chain>",
    Active) behind, as large as the layer it was unpacking and referenced by nothing: seen holding 6 GB."""
    for line in ctr("snapshots", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0].startswith("extract-") and fields[-1] == "Active":
            ctr("snapshots", "rm", f"{fields[0]} {fields[1]}")


def import_images(refs: list[str]) -> None:
    """Import Docker images into the node's containerd, skipping those already there with the same ID."""
    stamp_file = STATE / "imported.json"
    stamps = json.loads(stamp_file.read_text()) if stamp_file.is_file() else {}
    present = set(ctr("images", "ls", "-q").stdout.split())
    todo = []
    for ref in refs:
        image_id = docker_image_id(ref)
        if image_id is None:
            raise ClusterError(f"image {ref} is not in Docker here; run `make build` first")
        full = ref if "/" in ref.split(":")[0] and "." in ref.split("/")[0] else f"docker.io/{ref}"
        if stamps.get(full) != image_id or full not in present:
            todo.append((ref, full, image_id))
    if not todo:
        return
    names = [ref for ref, _, _ in todo]
    # A rebuilt image's old version goes first: its layers no other image shares are garbage-collected now,
    # instead of piling up with every rebuild (an ML image is ~9 GB), and the space check below counts them free.
    stale = [full for _, full, _ in todo if full in present]
    # The kubelet also names every image it has seen by its ID (sha256:...): that name holds the old layers too.
    stale += [stamps[full] for _, full, _ in todo if stamps.get(full) in present]
    if stale:
        ctr("images", "rm", "--sync", *stale)
    remove_interrupted_unpacks()
    wanted = {ref: size_and_layers(ref) for ref in names}
    space = import_space(wanted, stored_layers())
    check_space(space, shutil.disk_usage(STATE).free, STATE, docker_free_elsewhere())
    log(f"importing {', '.join(names)} into the node's containerd (one stream: shared layers once)")
    started = time.monotonic()
    save = subprocess.Popen(["docker", "save", *names], stdout=subprocess.PIPE)
    ctr("images", "import", "-", stdin=save.stdout)
    if save.wait():
        raise ClusterError(f"docker save {' '.join(names)} failed")
    for _, full, image_id in todo:
        stamps[full] = image_id
    stamp_file.write_text(json.dumps(stamps, indent=2))
    seconds = time.monotonic() - started
    with IMPORTS_LOG.open("a") as imports:  # read by `make test` (tests/stages.py): an import is not test time
        imports.write(json.dumps({"at": time.time(), "images": names, "kept": space.kept, "seconds": seconds}) + "\n")
    log(f"imported in {seconds:.0f} s")


def build_pause_image(bins: Path, ref: str) -> None:
    binary = bins / "pause"
    context = STATE / "pause-image"
    context.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, context / "pause")
    (context / "Dockerfile").write_text('FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n')
    run("docker", "build", "--quiet", "--tag", ref, context)  # one cached layer: about a second


def project_images(pins: dict[str, str]) -> list[str]:
    """Every image the chart runs (each built image but the base, which nothing runs)."""
    return [f"mlrt/{name}:{pins['MLRT_VERSION']}" for name in images.runtime_images()]


# --- storage ----------------------------------------------------------------------------------------------


def ensure_volumes(bins: Path) -> None:
    """A storage class and a pool of hostPath volumes; released volumes are wiped and put back."""
    kubectl(
        bins,
        "apply",
        "-f",
        "-",
        stdin=config("storage-class.yaml", storage_class=STORAGE_CLASS),
    )
    pvs = json.loads(kubectl(bins, "get", "pv", "-o", "json").stdout)["items"]
    for pv in pvs:
        if pv["spec"].get("storageClassName") == STORAGE_CLASS and pv["status"].get("phase") == "Released":
            name = pv["metadata"]["name"]
            kubectl(bins, "delete", "pv", name, "--wait=false")
            shutil.rmtree(pv["spec"]["hostPath"]["path"], ignore_errors=True)
    kept = sum(
        1 for pv in pvs if pv["metadata"]["name"].startswith("mlrt-local-") and pv["status"].get("phase") != "Released"
    )
    documents = []
    for index in range(VOLUME_POOL - kept):
        name = f"mlrt-local-{int(time.time())}-{index}"
        path = STATE / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # pods run as non-root users with their own uids
        documents.append(config("volume.yaml", name=name, storage_class=STORAGE_CLASS, size=VOLUME_SIZE, path=path))
    if documents:
        kubectl(bins, "apply", "-f", "-", stdin="---\n".join(documents))


def write_network_policies_credentials(bins: Path) -> None:
    """The agent's in-cluster files: its ServiceAccount token (once the controller manager has issued it), the
    cluster CA and the namespace; mode 600/700, root only."""
    token = ""

    def issued() -> bool:
        nonlocal token
        out = kubectl(bins, "-n", "kube-system", "get", "secret", "kube-network-policies-token", "-o",
                      "jsonpath={.data.token}", check=False).stdout  # fmt: skip
        token = out.strip()
        return bool(token)

    wait_for("the NetworkPolicy agent's token", issued, 60, "kube-controller-manager")
    NETWORK_POLICIES_SA.mkdir(mode=0o700, parents=True, exist_ok=True)
    (NETWORK_POLICIES_SA / "token").write_bytes(base64.b64decode(token))
    (NETWORK_POLICIES_SA / "ca.crt").write_bytes((PKI / "ca.crt").read_bytes())
    (NETWORK_POLICIES_SA / "namespace").write_text("kube-system")
    for path in NETWORK_POLICIES_SA.iterdir():
        path.chmod(0o600)
    IN_CLUSTER_SA.mkdir(parents=True, exist_ok=True)  # the mount point (empty on the host)


def check_network_policy_enforcement(timeout: float = 30) -> str:
    """Whether and how the agent programmed the kernel: its first sync either logs an error (e.g. a kernel whose
    nf_tables lacks an expression it uses answers ENOENT), or falls back to iptables' NFQUEUE target (the patch,
    when enabled), or neither. Written to NETWORK_POLICIES_STATUS."""
    started = time.monotonic()
    status = f"unavailable: the agent did not sync its nftables rules within {timeout:.0f} s"
    while time.monotonic() - started < timeout:
        text = (LOGS / "kube-network-policies.log").read_text(errors="replace")
        last_run = text[text.rfind('"called"') :]
        if '"Synced iptables rules (NFQUEUE)"' in last_run:
            status = (f"enforced: iptables NFQUEUE (the agent's fallback: nf_tables on kernel {os.uname().release} "
                      "has no queue expression)")  # fmt: skip
            break
        if '"syncing nftables rules" error=' in last_run and POLICY_FALLBACK != "iptables":
            error = last_run.split('"syncing nftables rules" error=', 1)[1].strip().splitlines()
            detail = next((line.strip() for line in error if line.strip() not in ("", "<", ">")), "")
            kernel = os.uname().release
            status = f"unavailable: kube-network-policies cannot program nftables on kernel {kernel} ({detail})"
            break
        # No error 10 s after its first sync: the rules are in.
        if ("Syncing nftables rules" in last_run and "error=" not in last_run
                and time.monotonic() - started > 10):  # fmt: skip
            status = "enforced: nftables queue"
            break
        time.sleep(1)
    NETWORK_POLICIES_STATUS.write_text(status + "\n")
    log(f"NetworkPolicy enforcement: {status}")
    return status


# --- commands ---------------------------------------------------------------------------------------------


def local_up() -> Path:
    ensure_root()
    ensure_packages()
    pins = versions.load()
    started = time.monotonic()
    bins = k8s_build.build()
    run("bash", ROOT / "tooling" / "install-go-tools.sh", "kube-network-policies", capture=False, stdout=sys.stderr)
    log(f"binaries in {bins} and {NETWORK_POLICIES_BIN.parent} ({time.monotonic() - started:.0f} s)")
    if (STATE / "etcd").exists() and not any(pid_of(name) for name in COMPONENTS):
        # Left by a cluster whose processes were killed (a reboot, an ended session): start afresh, as after
        # `down`, so that no half-finished test state comes back.
        log("state of a cluster that no longer runs found; deleting it")
        down()
    for path in (STATE, LOGS, PKI, RUN):
        path.mkdir(parents=True, exist_ok=True)
    prepare_host()
    write_pki(bins, pins)
    write_configs(pins)
    commands = command_lines(bins)
    start("containerd", commands["containerd"])
    wait_for("containerd", lambda: ctr("version").returncode == 0, 60, "containerd")
    build_pause_image(bins, pins["PAUSE_IMAGE"])
    import_images([pins["PAUSE_IMAGE"], *project_images(pins)])
    start("etcd", commands["etcd"])
    wait_for(
        "etcd", lambda: urllib.request.urlopen("http://127.0.0.1:2381/health", timeout=3).status == 200, 180, "etcd"
    )
    start("kube-apiserver", commands["kube-apiserver"])
    wait_for("kube-apiserver", lambda: https_ok(f"https://{NODE_IP}:6443/readyz"), 180, "kube-apiserver")
    for name in ("kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"):
        start(name, commands[name])
    rbac = (CONFIG / "rbac.yaml").read_text()
    run(bins / "kubectl", f"--kubeconfig={STATE / 'super-admin.conf'}", "apply", "-f", "-", input=rbac)
    start("coredns", commands["coredns"])
    write_network_policies_credentials(bins)
    start("kube-network-policies", commands["kube-network-policies"])
    wait_for(
        "node Ready",
        lambda: (
            "True"
            in kubectl(
                bins, "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
            ).stdout
        ),
        120,
        "kubelet",
    )
    wait_for(
        "CoreDNS",
        lambda: urllib.request.urlopen("http://127.0.0.1:18182/ready", timeout=3).status == 200,
        60,
        "coredns",
    )
    wait_for(
        "default service account",
        lambda: kubectl(bins, "get", "serviceaccount", "default", check=False).returncode == 0,
        60,
        "kube-controller-manager",
    )
    wait_for(
        "NetworkPolicy agent",
        lambda: urllib.request.urlopen(f"http://{NETWORK_POLICIES_METRICS}/metrics", timeout=3).status == 200,
        60,
        "kube-network-policies",
    )
    check_network_policy_enforcement()
    ensure_volumes(bins)
    log(f"Kubernetes test cluster up in {time.monotonic() - started:.0f} s; KUBECONFIG={KUBECONFIG}")
    return KUBECONFIG


def up() -> Path:
    given = user_kubeconfig()
    if given and given != KUBECONFIG and reachable(given):
        log(f"using the cluster of {given}")
        return given
    return local_up()


def stop(name: str, timeout: float = 20) -> None:
    pid = pid_of(name)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_of(name) and time.monotonic() < deadline:
            time.sleep(0.5)
        if pid_of(name):
            os.kill(pid, signal.SIGKILL)
    (RUN / f"{name}.pid").unlink(missing_ok=True)


def remove_policy_chains() -> None:
    for iptables in ("iptables", "ip6tables"):
        for chain, jump in POLICY_CHAINS.items():
            run(iptables, "-w", "-t", "mangle", "-D", *jump, "-j", chain, check=False)
            run(iptables, "-w", "-t", "mangle", "-F", chain, check=False)
            run(iptables, "-w", "-t", "mangle", "-X", chain, check=False)


def down() -> None:
    ensure_root()
    for name in reversed(COMPONENTS):
        if name == "containerd" and pid_of(name):
            # Containers outlive the kubelet under their shims: kill them, then remove sandboxes.
            for task in ctr("tasks", "ls", "-q", check=False).stdout.split():
                ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
            time.sleep(2)
            for task in ctr("tasks", "ls", "-q", check=False).stdout.split():
                ctr("tasks", "delete", "--force", task, check=False)
            for container in ctr("containers", "ls", "-q", check=False).stdout.split():
                ctr("containers", "delete", container, check=False)
        if name == "kube-network-policies":
            stop(name)
            remove_policy_chains()  # the agent removes them as it exits; not when it was killed
            continue
        if name == "kube-proxy" and (bins := _bins_if_built()):
            stop(name)
            run(bins / "kube-proxy", "--cleanup", check=False)
            continue
        stop(name)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith((str(STATE / "kubelet"), str(RUN)))), reverse=True):
        run("umount", "-l", mount, check=False)
    for netns in Path("/var/run/netns").glob("cni-*") if Path("/var/run/netns").is_dir() else []:
        run("ip", "netns", "delete", netns.name, check=False)
    for path in ("etcd", "kubelet", "volumes", "pki", "cni"):
        shutil.rmtree(STATE / path, ignore_errors=True)
    NETWORK_POLICIES_STATUS.unlink(missing_ok=True)
    for conf in [*STATE.glob("*.conf"), *STATE.glob("*.yaml")]:
        conf.unlink()
    shutil.rmtree(RUN, ignore_errors=True)
    for mount_point in (IN_CLUSTER_SA, IN_CLUSTER_SA.parent, IN_CLUSTER_SA.parent.parent):  # if left empty
        try:
            mount_point.rmdir()
        except OSError:
            pass
    log("Kubernetes test cluster stopped and its state deleted (images in its containerd are kept)")


def _bins_if_built() -> Path | None:
    try:
        out = k8s_build.cache_dir(versions.load())
    except k8s_build.BuildError:
        return None
    return out if (out / "kube-proxy").is_file() else None


def status() -> int:
    pids = {name: pid_of(name) for name in COMPONENTS}
    for name, pid in pids.items():
        print(f"{name:24} {f'running (pid {pid})' if pid else 'stopped'}")
    return 0 if all(pids.values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "volumes"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print(up())
        elif args.command == "down":
            down()
        elif args.command == "volumes":  # recycle released volumes of the running Kubernetes test cluster
            ensure_root()
            ensure_volumes(k8s_build.build())
        else:
            return status()
        return 0
    except (ClusterError, k8s_build.BuildError) as err:
        print(f"k8s_cluster: ERROR: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
