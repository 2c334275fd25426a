"""`make test`: every stage in order, each one timed, against the budgets in docs/testing.md.

Each stage is a make target. The times are printed as each stage ends and again, all together, at the end (CI
shows the end of the output). A stage that passed but took more than its budget by more than half fails the run
with a message naming it: a regression guard on the suite's own cost, not a timing test of the product (speed is
measured by `make bench`). Preparation stages (Go tools, images) have no budget: their cost depends on what the
machine already has (a cold machine builds for half an hour, a warm one checks caches). Likewise the time the
Kubernetes stages spend importing images into the test cluster's node is not held to their budgets: an import
streams the whole image (~10 GB) even when one small layer changed, minutes whatever the tests do
(tests/k8s_cluster/cluster.py logs each import with its seconds).

    python -m tests.stages [--smoke-args ARGS] [--only STAGE ...]

The compose cluster is deployed with a cluster library (CLUSTER_LIBRARIES as MLRT_LIBRARIES, unless the
environment sets it), which smoke_tests/test_libraries.py finds on the driver and the executors of new sessions;
every stage gets the same value, so the stages that restart containers do not recreate them with another one.

Standard library only: it runs before the tools' virtual environment exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
OVER = 1.5  # a stage fails the run above budget x OVER
VPY = ROOT / ".venv" / "bin" / "python"
# One JSON line per image import into the Kubernetes test cluster's node (tests/k8s_cluster/cluster.py).
CLUSTER_LIBRARIES = "tabulate==0.9.0"
IMPORTS_LOG = Path(os.environ.get("MLRT_K8S_STATE", "/var/lib/mlrt-k8s")) / "imports.log"


class BudgetError(Exception):
    pass


def budgets(text: str) -> dict[str, int | None]:
    """Stage -> budget in seconds (None: no budget) from the table of docs/testing.md whose header has a
    'budget' column and whose rows name the stage in backticks in their first cell."""
    table: dict[str, int | None] = {}
    column = None
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if not cells:
            column = None
            continue
        header = [i for i, cell in enumerate(cells) if cell.lower().startswith("budget")]
        if header:
            column = header[0]
            continue
        name = re.fullmatch(r"`([a-z0-9-]+)`", cells[0])
        if column is None or not name or column >= len(cells):
            continue
        value = cells[column]
        if re.fullmatch(r"\d+", value):
            table[name.group(1)] = int(value)
        elif value in ("", "-", "—"):
            table[name.group(1)] = None
        else:
            raise BudgetError(f"docs/testing.md: stage {name.group(1)}'s budget {value!r} is not a number of seconds")
    if not table:
        raise BudgetError("docs/testing.md has no stage table with a 'budget' column")
    return table


@dataclass
class Stage:
    name: str
    seconds: int
    status: int
    began: float = 0.0  # wall clock (epoch), to find the image imports made while it ran
    ended: float = 0.0


@dataclass
class Run:
    budget: dict[str, int | None]
    done: list[Stage] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def stage(self, name: str, *targets_and_vars: str) -> int:
        """Run `make <name>` (or the targets and variables given) and record its time and exit status."""
        if name not in self.budget:
            raise BudgetError(f"stage {name} is not in docs/testing.md's table: add its row (budget or '—')")
        begin, began = time.monotonic(), time.time()
        status = subprocess.run(
            [os.environ.get("MAKE", "make"), "--no-print-directory", *(targets_and_vars or (name,))], cwd=ROOT
        ).returncode
        self.done.append(Stage(name, round(time.monotonic() - begin), status, began, time.time()))
        print(f"make test: {name} {self.done[-1].seconds} s (exit {status}), {self.total()} s in all", flush=True)
        return status

    def total(self) -> int:
        return round(time.monotonic() - self.started)

    def over_budget(self) -> list[str]:
        over = []
        for stage in self.done:
            budget = self.budget.get(stage.name)
            if budget is None or stage.status or stage.seconds <= budget * OVER:
                continue
            importing = import_seconds(stage.began, stage.ended)
            if stage.seconds - importing <= budget * OVER:
                print(
                    f"make test: {stage.name} took {stage.seconds} s, {importing:.0f} s of it importing images into "
                    f"the Kubernetes test cluster's node: {stage.seconds - importing:.0f} s against its budget",
                    flush=True,
                )
                continue
            imports = f" ({importing:.0f} s of it importing images)" if importing else ""
            over.append(
                f"stage {stage.name} took {stage.seconds} s{imports}, more than its budget of {budget} s "
                f"(docs/testing.md) by over {round((OVER - 1) * 100)} %: find what slowed it (its --durations "
                "above), or, where the cost is deliberate (new tests), raise its budget in docs/testing.md and say why"
            )
        return over

    def report(self) -> int:
        rows = "; ".join(
            f"{s.name} {s.seconds} s" + (f"/{self.budget[s.name]}" if self.budget.get(s.name) else "")
            + (f" (exit {s.status})" if s.status else "")
            for s in self.done
        )  # fmt: skip
        print(f"make test: stages (seconds/budget): {rows}; total {self.total()} s", flush=True)
        failed = [s.name for s in self.done if s.status]
        over = self.over_budget()
        for message in over:
            print(f"make test: ERROR: {message}", file=sys.stderr, flush=True)
        if failed:
            print(f"make test: FAILED in {', '.join(failed)}", file=sys.stderr, flush=True)
        return 1 if failed or over else 0


def import_seconds(began: float, ended: float) -> float:
    """Seconds the Kubernetes test cluster's node spent importing images that finished between began and ended."""
    try:
        lines = IMPORTS_LOG.read_text().splitlines()
    except OSError:
        return 0.0
    entries = [json.loads(line) for line in lines if line.strip()]
    return sum(entry["seconds"] for entry in entries if began <= entry["at"] <= ended)


def k8s_cluster_running() -> bool:
    if not VPY.exists():
        return False
    return (
        subprocess.run(
            [str(VPY), "-m", "tests.k8s_cluster.cluster", "status"], cwd=ROOT, capture_output=True
        ).returncode
        == 0
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke-args", default="", help="SMOKE_ARGS for the compose smoke stage")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLRT_LIBRARIES", CLUSTER_LIBRARIES)
    try:
        run = Run(budgets(DOC.read_text()))
        return stages(run, args.smoke_args)
    except BudgetError as err:
        print(f"make test: ERROR: {err}", file=sys.stderr)
        return 2


def stages(run: Run, smoke_args: str) -> int:
    for name in ("lint", "unit", "tools", "k8s-validate", "build", "test-images", "runtime-manifest-check", "up"):
        if run.stage(name):
            return run.report()
    if not run.stage("smoke", "smoke", f"SMOKE_ARGS={smoke_args}"):
        run.stage("test-cluster")
    run.stage("down")
    if any(s.status for s in run.done):
        return run.report()
    running = k8s_cluster_running()
    if running or not run.stage("k8s-restart-check"):
        run.stage("k8s-e2e")
    if not running:
        run.stage("k8s-down")
    return run.report()


if __name__ == "__main__":
    sys.exit(main())
