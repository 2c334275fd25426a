"""GraphFrames and MLeap where this workplace's Maven mirror serves neither: through stand-in jars built from the
projects' public sources (../shared/jvm-standins, a Maven repository layout; its README says what they are).

The project's own tooling resolves them for a session (`python -m tooling.jars session`: the packages the images'
jar lock records unresolved, with their dependencies from the configured repositories, minus what Spark and the
images already carry). The driver container or pod gets the jars and its sessions get them with --jars
(PYSPARK_SUBMIT_ARGS, which the notebooks' kernels inherit): Spark ships them to the executors itself. The GraphFrames
and MLeap smoke tests and example notebooks 11 and 12 then run there, on executors of two hosts. Nothing enters an
image or the jar lock (whose jars must be the official releases').
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tooling import jars

STANDINS = Path(os.environ.get("MLRT_JVM_STANDINS") or ROOT.parent / "shared" / "jvm-standins")
# Where the driver's container or pod gets bundle(): a bash script reading the tar on its stdin.
WHERE = "/tmp/mlrt-standins"
UNPACK = f"rm -rf {WHERE} && mkdir -p {WHERE} && tar -xf - -C {WHERE}"
# In smoke_tests/: the GraphFrames and MLeap smoke tests (compose runs them), and notebooks 11 and 12 with the
# notebooks' executor spread check (Kubernetes runs them): each backend runs the two libraries once.
SMOKE_FILES = ("conftest.py", "test_jvm_packages.py", "test_notebooks.py")
SMOKE_RUN = ("test_jvm_packages.py", "graphframes or mleap", 2)
NOTEBOOKS_RUN = ("test_notebooks.py", "graphframes or mleap or several_executors", 3)


def session_jars(dest: Path) -> list[Path]:
    """The jars a session needs for GraphFrames and MLeap, resolved from the stand-ins and the configured repositories
    into dest; skips (with the reason) where there are no stand-ins or the images carry the packages themselves."""
    if not (STANDINS / "m2").is_dir():
        pytest.skip(
            f"no stand-in jars at {STANDINS}/m2 (MLRT_JVM_STANDINS names another place): GraphFrames and MLeap are "
            f"proven where their jars are served, by the smoke tests of images that carry them"
        )
    repos = [(STANDINS / "m2").resolve().as_uri(), *jars.repositories()]
    env = dict(os.environ, MLRT_MAVEN_REPOSITORIES=" ".join(repos))
    done = subprocess.run(
        [sys.executable, "-m", "tooling.jars", "session", str(dest)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    print(done.stderr.strip(), file=sys.stderr)
    found = sorted(dest.glob("*.jar"))
    if not found:
        pytest.skip("the images carry GraphFrames and MLeap (their jar lock resolved them): the smoke run proves it")
    return found


def bundle(found: list[Path]) -> bytes:
    """A tar of jars/ (the session jars) and tests/ (the smoke test files), for the driver's container or pod."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for jar in found:
            tar.add(jar, arcname=f"jars/{jar.name}")
        for name in SMOKE_FILES:
            tar.add(ROOT / "smoke_tests" / name, arcname=f"tests/{name}")
    return out.getvalue()


def pytest_command(found: list[Path], run: tuple[str, str, int]) -> tuple[list[str], int]:
    """A run (SMOKE_RUN, NOTEBOOKS_RUN) in the driver, its sessions given the jars UNPACK put in WHERE: (command,
    tests to pass)."""
    name, select, passed = run
    submit = "--jars " + ",".join(f"{WHERE}/jars/{jar.name}" for jar in found) + " pyspark-shell"
    command = ["env", f"PYSPARK_SUBMIT_ARGS={submit}", "python", "-X", "faulthandler", "-m", "pytest", "-p",
               "no:cacheprovider", "-v", "-rs", "--durations=0", "-k", select, f"{WHERE}/tests/{name}"]  # fmt: skip
    return command, passed


def check(done: subprocess.CompletedProcess, passed: int) -> None:
    """Every selected test passed: none skipped, none failed."""
    print(done.stdout[-6000:], file=sys.stderr)
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.match(r"=+ .* in [\d.]+s", line)), "")
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    assert f" {passed} passed" in summary and "skipped" not in summary, summary
