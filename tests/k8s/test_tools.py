"""The project's own Kubernetes tools (`make k8s-tools`) behave as the released binaries users install."""

from __future__ import annotations

from tooling import k8s, versions


def test_helm_reports_its_release_version():
    version = k8s.run([k8s.tool("helm"), "version", "--template", "{{.Version}}"]).strip()
    assert version == versions.load()["HELM_VERSION"], f"helm says {version}: rebuild it with `make k8s-tools`"


def test_helm_template_works_without_kube_version():
    """A released helm assumes the Kubernetes version of the client-go it was built with (v1.34 for helm v3.19),
    not v1.20: the chart's kubeVersion constraint (>= 1.28) holds for `helm template` and `helm lint` as
    documented, with no --kube-version."""
    docs = k8s.documents(k8s.run([k8s.tool("helm"), "template", "x", str(k8s.CHART)]))
    assert any(doc["kind"] == "StatefulSet" for doc in docs)
    lint = k8s.run([k8s.tool("helm"), "lint", str(k8s.CHART)])
    assert "0 chart(s) failed" in lint, lint
