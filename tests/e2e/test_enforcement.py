"""The cluster enforces NetworkPolicy (on the Kubernetes test cluster: kube-network-policies), shown before the
chart's own policies are relied on: a server reachable from another namespace stops being reachable once a
deny-all policy selects it, and is reachable again when the policy goes."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import kubectl, probe_pods, reach_until, scratch_namespace

DENY_ALL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-all"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}


@pytest.fixture(scope="module")
def namespaces(cluster, enforced):
    with scratch_namespace("mlrt-np-server", False) as server, scratch_namespace("mlrt-np-client", False) as client:
        yield server, client


def test_a_deny_all_policy_blocks_a_pod_from_another_namespace_and_lifting_it_restores_access(namespaces):
    server_ns, client_ns = namespaces
    with probe_pods((server_ns, "server", {"app": "server"}), serve=8080):
        with probe_pods((client_ns, "client", {"app": "client"})):
            target = f"server-{uuid.uuid4().hex[:4]}"
            kubectl("-n", server_ns, "expose", "pod", "server", "--port=8080", f"--name={target}")
            address = f"{target}.{server_ns}.svc:8080"
            # kube-proxy programs the new Service a moment after it exists (refused until then)
            opened = reach_until(client_ns, "client", [address], lambda seen: seen[address] == "open")
            assert opened == {address: "open"}, f"no policy: the server must answer, got {opened}"
            kubectl("-n", server_ns, "apply", "-f", "-", stdin=json.dumps(DENY_ALL))
            outcome = reach_until(client_ns, "client", [address], lambda seen: seen[address] == "timeout")[address]
            assert outcome == "timeout", f"a deny-all policy selects the server, yet the client got {outcome!r}"
            kubectl("-n", server_ns, "delete", "networkpolicy", "deny-all")
            outcome = reach_until(client_ns, "client", [address], lambda seen: seen[address] == "open")[address]
            assert outcome == "open", f"the policy is gone: access comes back, yet the client got {outcome!r}"
