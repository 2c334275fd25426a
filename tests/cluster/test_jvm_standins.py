"""GraphFrames and MLeap on the compose cluster with their jars given to the session (tests/standins.py): their smoke
tests run in the driver (jupyter) container, their tasks on both workers. Example notebooks 11 and 12 (a kernel and a
Spark application each, ~60 s apiece) run in CI in the Kubernetes notebook pod instead (tests/e2e/test_helm.py),
which leaves these smoke tests to compose: each backend runs the two libraries once."""

from __future__ import annotations

import subprocess

from tests import standins
from tests.conftest import ROOT


def test_graphframes_and_mleap_run_with_jars_given_to_the_session(tmp_path):
    found = standins.session_jars(tmp_path / "jars")
    unpack = ["docker", "compose", "exec", "-T", "jupyter", "bash", "-c", standins.UNPACK]
    subprocess.run(unpack, cwd=ROOT, input=standins.bundle(found), capture_output=True, check=True, timeout=120)
    command, passed = standins.pytest_command(found, standins.SMOKE_RUN)
    done = subprocess.run(
        ["docker", "compose", "exec", "-T", "-w", f"{standins.WHERE}/tests", "jupyter", *command],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    standins.check(done, passed)
