"""`make test`'s stage runner (tests/stages.py): the budgets it reads from docs/testing.md and the guard."""

from __future__ import annotations

import json
import re

import pytest

from tests import stages


def test_every_stage_the_runner_runs_has_a_row_in_docs_testing():
    table = stages.budgets(stages.DOC.read_text())
    source = (stages.ROOT / "tests" / "stages.py").read_text()
    named = set(re.findall(r'"([a-z0-9-]+)"', source.split("def stages(", 1)[1]))
    assert named - {"smoke"} <= set(table), named - set(table)
    assert "smoke" in table
    guarded = {name for name, budget in table.items() if budget}
    assert {"test-images", "smoke", "test-cluster", "k8s-e2e"} <= guarded
    assert table["build"] is None and table["tools"] is None, "preparation depends on the machine's caches"


def test_the_budgets_add_up_to_the_total_the_doc_promises():
    text = stages.DOC.read_text()
    promised = int(re.search(r"warm `make test` budget: (\d+) s", text, re.I).group(1))
    assert sum(b for b in stages.budgets(text).values() if b) == promised
    assert promised <= 3600, "a warm make test over 60 minutes leaves CI no room"


def test_budget_table_parsing_and_refusals():
    text = "| stage | proves | budget (s) |\n|---|---|---|\n| `lint` | x | 60 |\n| `build` | y | — |\n\nprose | no\n"
    assert stages.budgets(text) == {"lint": 60, "build": None}
    with pytest.raises(stages.BudgetError, match="lint's budget 'soon'"):
        stages.budgets("| stage | budget (s) |\n|--|--|\n| `lint` | soon |\n")
    with pytest.raises(stages.BudgetError, match="no stage table"):
        stages.budgets("# nothing here\n")


def run_with(budget: dict, done: list[tuple[str, int, int]]) -> stages.Run:
    run = stages.Run(budget)
    run.done = [stages.Stage(*row) for row in done]
    return run


def test_a_stage_over_its_budget_by_more_than_half_fails_the_run_naming_it(capsys):
    run = run_with({"smoke": 600, "build": None, "unit": 30}, [("build", 2000, 0), ("unit", 44, 0), ("smoke", 901, 0)])
    assert run.over_budget() == [m for m in run.over_budget() if "stage smoke took 901 s" in m]
    assert len(run.over_budget()) == 1 and "docs/testing.md" in run.over_budget()[0]
    assert run.report() == 1
    assert "stage smoke took 901 s, more than its budget of 600 s" in capsys.readouterr().err
    assert run_with({"smoke": 600}, [("smoke", 900, 0)]).report() == 0, "50 % over is still within the guard"


def test_a_failed_stage_fails_the_run_and_is_not_also_reported_over_budget(capsys):
    run = run_with({"smoke": 600}, [("smoke", 2000, 1)])
    assert run.over_budget() == [] and run.report() == 1
    assert "FAILED in smoke" in capsys.readouterr().err


def test_time_spent_importing_images_into_the_node_is_not_held_to_the_budget(tmp_path, monkeypatch, capsys):
    log = tmp_path / "imports.log"
    monkeypatch.setattr(stages, "IMPORTS_LOG", log)
    run = stages.Run({"k8s-restart-check": 60, "test-images": 300})
    run.done = [stages.Stage("k8s-restart-check", 200, 0, 1000.0, 1300.0), stages.Stage("test-images", 900, 0, 0, 1)]
    assert len(run.over_budget()) == 2, "no import log: every stage is held to its budget"
    earlier = {"at": 900.0, "images": ["mlrt/ml:0"], "kept": 9e9, "seconds": 280}
    log.write_text(json.dumps(earlier) + "\n")
    assert len(run.over_budget()) == 2, "an import outside the stage does not count"
    log.write_text(log.read_text() + json.dumps({**earlier, "at": 1200.0, "seconds": 183}) + "\n")
    over = run.over_budget()
    assert len(over) == 1 and "test-images" in over[0], "200 s less 183 s importing is within 1.5 x 60 s"
    assert "183 s of it importing images" in capsys.readouterr().out
    log.write_text(json.dumps({**earlier, "at": 1200.0, "seconds": 100}) + "\n")
    assert any("k8s-restart-check took 200 s (100 s of it importing images)" in m for m in run.over_budget())


def test_a_stage_missing_from_the_table_is_refused_before_it_runs():
    with pytest.raises(stages.BudgetError, match="stage smoke is not in docs/testing.md"):
        stages.Run({"lint": 1}).stage("smoke")
