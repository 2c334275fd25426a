"""templates/tests/: what `helm test` runs, and the uninstall's first step that deletes what it left."""

from __future__ import annotations

from tests.conftest import ROOT

from .chart import QUICK_SMOKE_FILES as QUICK
from .chart import by, render, render_notes


def smoke_test_pods(docs):
    return [
        d
        for d in docs
        if d["kind"] == "Pod" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "smoke-tests"
    ]


def command(pod: dict) -> str:
    return pod["spec"]["containers"][0]["args"][-1]


def test_helm_test_runs_the_quick_suite_by_default_and_everything_else_after_it_when_full():
    (quick,) = smoke_test_pods(render())
    assert command(quick).endswith(" ".join(f"/tmp/{name}" for name in QUICK)), command(quick)
    assert all((ROOT / "smoke_tests" / name).is_file() for name in QUICK)
    # full: the same pod and pytest process (one Spark session): every file, the quick suite's first
    (full,) = smoke_test_pods(render("tests.suite=full"))
    assert command(full).endswith("--durations=20 /tmp"), command(full)
    env = {e["name"]: e.get("value") for e in full["spec"]["containers"][0]["env"]}
    assert env["MLRT_SMOKE_FIRST"] == " ".join(QUICK) and "MLRT_SMOKE_FIRST" not in str(quick)


def test_notes_give_the_timeout_the_full_suite_needs():
    assert "helm test x -n ns\n" in render_notes([])
    assert "helm test x -n ns --timeout 20m" in render_notes(["tests.suite=full"])


def test_uninstall_first_deletes_the_pods_helm_test_left():
    """They mount the event-log claim: `helm uninstall --wait` would wait on it for ever."""
    docs = render("tests.suite=full")
    job = by(docs, "Job", "mlrt-test-cleanup")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    selector = dict(pair.split("=") for pair in env["SELECTOR"].split(","))
    pods = smoke_test_pods(docs)
    assert len(pods) == 1 and all(selector.items() <= p["metadata"]["labels"].items() for p in pods)
    assert not [d for d in docs if selector.items() <= d["metadata"].get("labels", {}).items() and d["kind"] != "Pod"]
