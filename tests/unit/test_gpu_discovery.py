"""The ml image's GPU discovery script (images/ml/bin/mlrt-gpu-discovery) answers Spark in its resource format from
what nvidia-smi reports, and fails with nvidia-smi's own message when nvidia-smi fails. nvidia-smi is a stand-in
here (this machine has no GPU); the image test runs the script in the image, the GPU smoke suite on GPUs."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "images" / "ml" / "bin" / "mlrt-gpu-discovery"


def discover(tmp_path, smi: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/sh\n{smi}\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_the_indexes_nvidia_smi_reports_become_sparks_gpu_addresses(tmp_path):
    done = discover(tmp_path, 'test "$*" = "--query-gpu=index --format=csv,noheader" && printf "0\\n1\\n"')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"name": "gpu", "addresses": ["0", "1"]}


def test_a_failing_nvidia_smi_fails_the_script_with_its_message(tmp_path):
    done = discover(tmp_path, "echo 'Failed to initialize NVML: Driver/library version mismatch' >&2; exit 18")
    assert done.returncode != 0
    assert "nvidia-smi failed (18): Failed to initialize NVML: Driver/library version mismatch" in done.stderr


def test_the_script_is_executable_and_runs_the_images_python():
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().splitlines()[0] == "#!/opt/mlrt/venv/bin/python"
