"""The Kubernetes test cluster's wrapper module and cluster script (no cluster needed)."""

from __future__ import annotations

import ast
import json
import re
import shutil
import time

import pytest
import tomllib
import yaml

from tests.k8s_cluster import build as k8s_build
from tests.k8s_cluster import cluster as k8s_cluster
from tooling import versions

KUBE_GOMOD = """module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
\tgithub.com/other/module => github.com/other/module v1.2.3
)
"""


def test_staging_modules_are_read_from_the_release_gomod():
    assert k8s_build.staging_modules(KUBE_GOMOD) == ["k8s.io/api", "k8s.io/client-go"]
    assert k8s_build.godebug_line(KUBE_GOMOD) == "godebug default=go1.24"


def test_render_gomod_replaces_each_staging_module_with_its_published_version():
    pins = {"KUBERNETES_VERSION": "v1.34.4", "ETCD_VERSION": "v3.6.4", "COREDNS_VERSION": "v1.12.4"}
    text = k8s_build.render_gomod(KUBE_GOMOD, pins)
    assert "\tk8s.io/api => k8s.io/api v0.34.4" in text
    assert "\tk8s.io/client-go => k8s.io/client-go v0.34.4" in text
    assert "github.com/other" not in text
    assert "godebug default=go1.24" in text and "\tk8s.io/kubernetes v1.34.4" in text


def test_bad_kubernetes_version_is_named():
    with pytest.raises(k8s_build.BuildError, match="v1.34.4"):
        k8s_build.staging_version("1.34")


def test_missing_godebug_line_is_an_error():
    with pytest.raises(k8s_build.BuildError, match="godebug"):
        k8s_build.godebug_line("module x\n")


def test_ldflags_stamp_the_version_that_the_api_server_reports():
    flags = k8s_build.ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.34.4" in flags


def test_committed_gomod_matches_versions_env():
    """gomod/go.mod requires exactly the pinned Kubernetes, etcd and CoreDNS, and 31 staging replaces."""
    pins = versions.load()
    text = (k8s_build.MODULE_DIR / "go.mod").read_text()
    assert f"\tk8s.io/kubernetes {pins['KUBERNETES_VERSION']}\n" in text
    assert f"\tgo.etcd.io/etcd/server/v3 {pins['ETCD_VERSION']}\n" in text
    assert f"\tgithub.com/coredns/coredns {pins['COREDNS_VERSION']}\n" in text
    staged = k8s_build.staging_version(pins["KUBERNETES_VERSION"])
    replaces = re.findall(r"^\t(k8s\.io/\S+) => (\S+) (\S+)$", text, re.M)
    assert len(replaces) == 31 and all(a == b and v == staged for a, b, v in replaces)


def test_cluster_needs_root_or_a_reachable_cluster(monkeypatch):
    monkeypatch.setattr(k8s_cluster.os, "geteuid", lambda: 1000)
    with pytest.raises(k8s_cluster.ClusterError, match="as root"):
        k8s_cluster.ensure_root()


def test_unreachable_kubeconfig_is_not_reused(tmp_path, monkeypatch):
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    assert k8s_cluster.user_kubeconfig() == config
    assert not k8s_cluster.reachable(config)


def test_kubeadm_config_names_the_stable_node_address():
    text = k8s_cluster.kubeadm_config(versions.load())
    assert f"advertiseAddress: {k8s_cluster.NODE_IP}" in text and "kubernetesVersion: v1.34.4" in text


def test_config_files_render_to_documents_their_components_can_read(component_dirs):
    """The files in tests/k8s_cluster/config/, filled as `up` fills them: every placeholder replaced, each file
    parses in its own format, and the values land where the components read them."""
    k8s_cluster.write_configs(versions.load())
    state = k8s_cluster.STATE
    texts = {path.name: path.read_text() for path in [*state.glob("*.*"), state / "Corefile", *state.glob("cni/*")]}
    assert set(texts) == {"containerd.toml", "kubelet.yaml", "kube-proxy.yaml", "Corefile", "10-mlrt.conflist"}
    assert not [name for name, text in texts.items() if "${" in text]
    containerd = tomllib.loads(texts["containerd.toml"])
    assert containerd["grpc"]["address"] == str(k8s_cluster.CONTAINERD_SOCK)
    assert containerd["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == versions.load()["PAUSE_IMAGE"]
    kubelet = yaml.safe_load(texts["kubelet.yaml"])
    assert kubelet["clusterDNS"] == [k8s_cluster.NODE_IP] and isinstance(kubelet["oomScoreAdj"], int)
    assert yaml.safe_load(texts["kube-proxy.yaml"])["hostnameOverride"] == k8s_cluster.NODE_NAME
    cni = json.loads(texts["10-mlrt.conflist"])
    assert cni["plugins"][0]["ipam"]["ranges"] == [[{"subnet": k8s_cluster.NODE_POD_CIDR}]]
    assert f"bind {k8s_cluster.NODE_IP}" in texts["Corefile"]
    for name, values in {
        "storage-class.yaml": {"storage_class": "sc"},
        "volume.yaml": {"name": "v", "storage_class": "sc", "size": "1Gi", "path": "/tmp/v"},
    }.items():
        assert yaml.safe_load(k8s_cluster.config(name, **values))["kind"] in ("StorageClass", "PersistentVolume")
    kinds = [doc["kind"] for doc in yaml.safe_load_all((k8s_cluster.CONFIG / "rbac.yaml").read_text())]
    assert kinds.count("ClusterRoleBinding") == 3 and "ServiceAccount" in kinds


def test_a_config_placeholder_without_a_value_is_an_error():
    with pytest.raises(KeyError, match="storage_class"):
        k8s_cluster.config("volume.yaml", name="v", size="1Gi", path="/tmp/v")


def test_the_tooling_and_the_test_cluster_do_not_import_the_user_scripts():
    """What users run (scripts/) may use the tooling; the tooling and the test harness never use the scripts."""
    root = versions.ROOT
    for path in [*root.glob("tooling/*.py"), *root.glob("tests/k8s_cluster/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            imported = [n for n in names if n == "scripts" or n.startswith("scripts.")]
            assert not imported, f"{path} imports the user scripts"


@pytest.fixture
def component_dirs(tmp_path, monkeypatch):
    """A scratch state/run tree for starting real processes as the Kubernetes test cluster starts its parts."""
    for name in ("STATE", "LOGS", "RUN"):
        path = tmp_path / name.lower()
        path.mkdir()
        monkeypatch.setattr(k8s_cluster, name, path)
    monkeypatch.setattr(k8s_cluster, "_started", {})
    return tmp_path


def _program(tmp_path, name: str, source: str) -> str:
    """A copy of a real program under a component's name (pid_of checks the program a pid runs)."""
    target = tmp_path / name
    shutil.copy(shutil.which(source), target)
    return str(target)


def test_a_component_is_found_running_the_moment_it_is_started(component_dirs):
    # Right after exec, /proc/<pid>/cmdline can read empty; the first `up` after `down` failed on that race.
    program = _program(component_dirs, "kube-component", "sleep")
    for _ in range(200):
        k8s_cluster.start("kube-component", [program, "30"])
        assert k8s_cluster.pid_of("kube-component"), "a component just started was taken for dead"
        proc, _ = k8s_cluster._started.pop("kube-component")
        proc.kill()
        proc.wait()
    assert k8s_cluster.pid_of("kube-component") is None


def test_a_component_that_exits_during_start_up_is_named_with_its_status_and_own_output(component_dirs):
    (k8s_cluster.LOGS / "kube-component.log").write_text("an older run's last words\n")
    program = _program(component_dirs, "kube-component", "sh")
    k8s_cluster.start("kube-component", [program, "-c", "echo 'unknown flag: --bogus'; exit 3"])
    started = time.monotonic()
    with pytest.raises(k8s_cluster.ClusterError) as error:
        k8s_cluster.wait_for("kube-component", lambda: False, 60, "kube-component")
    assert time.monotonic() - started < 10, "waited for the timeout instead of noticing the exit"
    message = str(error.value)
    assert "kube-component exited with status 3" in message
    assert "unknown flag: --bogus" in message
    assert "older run" not in message


GB = 10**9


def test_an_import_that_would_fill_the_disk_is_refused_naming_the_fix(tmp_path):
    space = k8s_cluster.ImportSpace(kept=10 * GB, export=10 * GB, ingest=8 * GB)
    k8s_cluster.check_space(space, 31 * GB, tmp_path)  # 3 GB left at the peak, 21 GB after: fine
    with pytest.raises(
        k8s_cluster.ClusterError, match=r"adds ~10 GB .* 8 GB free after it; 17 GB are free\. Free space"
    ):
        k8s_cluster.check_space(space, 17 * GB, tmp_path)
    # what it keeps fits, its temporary copies do not: refused before it fills the disk halfway through
    small = k8s_cluster.ImportSpace(kept=GB // 10, export=10 * GB, ingest=8 * GB)
    with pytest.raises(k8s_cluster.ClusterError, match=r"needs ~18 GB free in .* while it runs .*; 19 GB are free\."):
        k8s_cluster.check_space(small, 19 * GB, tmp_path)
    # Docker on its own filesystem: its export is checked there, the node's disk only needs containerd's copy
    k8s_cluster.check_space(small, 19 * GB, tmp_path, docker_free=40 * GB)
    with pytest.raises(k8s_cluster.ClusterError, match=r"needs ~10 GB free in Docker's data root"):
        k8s_cluster.check_space(small, 19 * GB, tmp_path, docker_free=11 * GB)


def test_an_import_counts_only_the_layers_the_node_lacks():
    base, ml_layer, nb_layer, store_layer = "sha256:b", "sha256:m", "sha256:n", "sha256:o"
    spark, ml = (1 * GB, [base]), (9 * GB, [base, ml_layer])
    notebook, objectstore = (9 * GB + 71_000, [base, ml_layer, nb_layer]), (GB // 4, [base, store_layer])
    # a first import: the chain spark < ml < notebook once (the notebook), the object store beside it
    first = k8s_cluster.import_space({"spark": spark, "ml": ml, "notebook": notebook, "objectstore": objectstore}, {})
    assert first.kept == 2 * (notebook[0] + objectstore[0])
    assert (first.export, first.ingest) == (notebook[0] + objectstore[0], notebook[0])
    # the notebook rebuilt for one file: the node holds the base and ML layers, only the new layer is kept,
    # though Docker still exports the whole image
    held = {base: 1 * GB, ml_layer: 8 * GB}
    rebuilt = k8s_cluster.import_space({"notebook": notebook}, held)
    assert (rebuilt.kept, rebuilt.export) == (2 * 71_000, notebook[0])
    # blobs a little larger than Docker's count (tar headers) never make a negative size
    assert k8s_cluster.import_space({"ml": ml}, {base: GB + 5, ml_layer: 8 * GB + 5}).kept == 0


AGENT_LOG = """I1207 main.go:84] "called" args=[]
I1207 controller.go:723] "Syncing nftables rules"
I1207 controller.go:937] "syncing nftables rules" error=<
\tconn.Receive: netlink receive: no such file or directory
 >
"""


def test_the_enforcement_status_names_the_agents_fallback_or_its_error(tmp_path, monkeypatch):
    """The e2e's NetworkPolicy tests run only on "enforced: ..."; otherwise they skip with the agent's error."""
    monkeypatch.setattr(k8s_cluster, "LOGS", tmp_path)
    monkeypatch.setattr(k8s_cluster, "NETWORK_POLICIES_STATUS", tmp_path / "status")
    log = tmp_path / "kube-network-policies.log"
    log.write_text(AGENT_LOG)
    monkeypatch.setattr(k8s_cluster, "POLICY_FALLBACK", "off")
    status = k8s_cluster.check_network_policy_enforcement(timeout=5)
    assert status.startswith("unavailable: kube-network-policies cannot program nftables"), status
    assert "netlink receive: no such file or directory" in status
    monkeypatch.setattr(k8s_cluster, "POLICY_FALLBACK", "iptables")
    log.write_text(AGENT_LOG + 'I1207 iptables.go:99] "Synced iptables rules (NFQUEUE)" podsV4=0 podsV6=0\n')
    status = k8s_cluster.check_network_policy_enforcement(timeout=5)
    assert status.startswith("enforced: iptables NFQUEUE"), status
    assert (tmp_path / "status").read_text().strip() == status
