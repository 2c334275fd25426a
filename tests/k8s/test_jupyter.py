"""The chart's JupyterLab component (templates/jupyter/): the workspace claim across uninstall, the proxied UIs."""

from __future__ import annotations

import pytest

from tooling import k8s

from .chart import render_notes


@pytest.mark.parametrize("delete", [False, True], ids=["kept", "deleted-with-release"])
def test_workspace_claim_is_kept_by_uninstall_unless_asked_and_notes_say_so(delete):
    setting = f"jupyter.workspace.deleteWithRelease={str(delete).lower()}"
    docs = k8s.documents(k8s.render(sets=[setting]))
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("-jupyter"))
    policy = statefulset["spec"].get("persistentVolumeClaimRetentionPolicy")
    assert policy == ({"whenDeleted": "Delete", "whenScaled": "Retain"} if delete else None)
    notes = " ".join(render_notes([setting]).split())
    assert "workspace-x-mlrt-jupyter-0" in notes
    if delete:
        assert "deleted with the release" in notes
    else:
        assert "`helm uninstall` keeps it, and a reinstall under the same name re-attaches it" in notes
        assert "x-mlrt-lake is kept" in notes and "x-mlrt-objectstore is kept" in notes


def test_jupyter_proxies_the_releases_history_server_and_mlflow(docs):
    """The notebook's proxied UIs point at this release's services (and only at enabled ones)."""
    jupyter = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"].endswith("-jupyter"))
    env = {e["name"]: e.get("value") for e in jupyter["spec"]["template"]["spec"]["containers"][0]["env"]}
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    for variable in ("MLRT_HISTORY_URL", "MLFLOW_TRACKING_URI"):
        if variable in env:
            host = env[variable].split("//")[1].split(":")[0]
            assert host in services, f"{variable}={env[variable]}: no such Service in the release"
    history = any(d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-history") for d in docs)
    assert ("MLRT_HISTORY_URL" in env) == history
