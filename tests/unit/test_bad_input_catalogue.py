"""docs/bad-input.md is the catalogue of bad input and its messages: every row names a test that exists and that
asserts the row's quoted words, so the table cannot drift from what mlrt answers."""

from __future__ import annotations

import ast
import re

from tests.conftest import ROOT

CATALOGUE = ROOT / "docs" / "bad-input.md"
ROW = re.compile(r"^\| (\d+) \| (.+?) \| (.+?) \| (.+?) \| `([^`]+)::([A-Za-z0-9_]+)` \|$")


def rows() -> list[tuple[str, str, str, str, str, str]]:
    return [m.groups() for line in CATALOGUE.read_text().splitlines() if (m := ROW.match(line))]


def function_source(path, name: str) -> str | None:
    text = path.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return ast.get_source_segment(text, node)
    return None


def test_the_catalogue_covers_every_kind_of_input_with_at_least_twenty_cases():
    found = rows()
    assert len(found) >= 20, len(found)
    assert [int(r[0]) for r in found] == list(range(1, len(found) + 1)), "rows are numbered 1, 2, ... in order"
    places = " ".join(r[1] for r in found)
    for where in ("versions.env", ".env", "make variable", "make submit", "chart values", "compose override"):
        assert where in places, f"no case for {where}"


def test_every_row_names_a_test_that_asserts_its_message():
    for number, _, _, told, path, name in rows():
        source = function_source(ROOT / path, name)
        assert source is not None, f"row {number}: {path}::{name} does not exist"
        quoted = re.findall(r"`([^`]+)`", told)[0]
        # the test asserts the words, or (parametrized) its parameters hold them
        module = (ROOT / path).read_text()
        assert quoted.replace("\\", "") in module.replace("\\", ""), f"row {number}: {path} never mentions {quoted!r}"
