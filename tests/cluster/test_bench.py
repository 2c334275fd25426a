"""`make bench` still runs: its quick mode (one small run of each section but the start-up, which would restart
the cluster under the other tests) against the running compose cluster, into a scratch directory. Speed is not
checked here (docs/benchmarks.md has the figures); that every section measured something and was written is."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_quick_runs_every_section_and_writes_the_report(tmp_path):
    sections = ["session", "overhead", "imports", "scaling", "shuffle", "images"]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", *sections, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "benchmarks" / "results.json").read_text())
    assert results["session"]["executors"][0] >= results["session"]["getOrCreate"][0] > 0
    assert results["session"]["catalog"][0] > 0 and results["session"]["implementation"] == "hive"
    for name, row in results["overhead"].items():
        assert not row.get("error"), f"{name}: {row['error']}"
        assert row["local"] and row["cluster"] and all(t > 0 for t in row["local"] + row["cluster"]), row
    cut = results["imports"]
    assert len(cut["image"]) == len(cut["shipped"]) == 2 and all(t > 0 for t in cut["image"] + cut["shipped"]), cut
    scaling = results["scaling"]
    assert scaling["calibration"]["steps_per_second"] > 0, scaling
    for setup, row in scaling["setups"].items():
        assert len(row["executors"]) == 2 and all(t > 0 for t in row["seconds"]), (setup, row)
        assert row["steps_per_task"] > 0, (setup, row)
    assert results["shuffle"]["encrypted"][0] > 0 and results["shuffle"]["plain"][0] > 0
    sizes = results["images"]
    assert sizes["ml"]["cuda_bytes"] > 1e9, "the ml image carries PyPI torch's CUDA libraries"
    assert all(row["other_bytes"] > 0 for row in sizes.values()), sizes
    report = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## A new session", "## Launch overhead", "## A cut", "## Scaling", "## Shuffle", "## Image sizes"):
        assert heading in report
    for section in sections:
        png = tmp_path / "benchmarks" / f"{section}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
        assert f"(benchmarks/{section}.png)" in report
