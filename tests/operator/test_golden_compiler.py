"""Golden files for the operator's compile step: cluster states in, tables and conditions out.

Each ``golden/inputs/<case>.yaml`` lists successive cluster states (full object lists, as the indexes hold
them); ``golden/outputs/<case>.yaml`` is what each state compiles to, given the table before it: the
generation, the table (keys masked), what is kept as last good, and every object's conditions.
Regenerate after an intended change with ``MODELYARD_UPDATE_GOLDEN=1 pytest tests/operator`` and review the diff.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard_operator.tables import TableStep, next_table
from modelyard_routing import Inventory, RoutingTable

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path.stem for path in (GOLDEN / "inputs").glob("*.yaml"))
UPDATE = os.environ.get("MODELYARD_UPDATE_GOLDEN") == "1"


def inventory_of(docs: list[Mapping[str, Any]]) -> Inventory:
    inventory = Inventory()
    for doc in docs:
        inventory.add_document(doc, "golden")
    return inventory


def render(step: TableStep) -> dict[str, Any]:
    return {
        "generation": step.table.generation,
        "sha256": step.table.sha256,
        "table": step.table.model_dump(mode="json", exclude={"generation", "sha256", "schema_version"}),
        "servedSince": dict(sorted(step.since.items())),
        "lastGood": {str(ref): generation for ref, generation in sorted(step.retained.items(), key=str)},
        "conditions": {
            str(ref): [f"{c.type}={c.status} {c.reason}: {c.message}" for c in conditions]
            for ref, conditions in sorted(step.conditions.items(), key=lambda item: str(item[0]))
        },
    }


@pytest.mark.parametrize("case", CASES)
def test_compile_matches_golden(case: str) -> None:
    steps = yaml.safe_load((GOLDEN / "inputs" / f"{case}.yaml").read_text())["steps"]
    previous: RoutingTable | None = None
    since: Mapping[str, int] = {}
    rendered = []
    for docs in steps:
        step = next_table(inventory_of(docs), previous, since)
        previous, since = step.table, step.since
        rendered.append(render(step))
    text = yaml.safe_dump(rendered, sort_keys=False, width=120, allow_unicode=True)
    expected_path = GOLDEN / "outputs" / f"{case}.yaml"
    if UPDATE or not expected_path.exists():
        expected_path.write_text(text)
        if not UPDATE:
            pytest.fail(f"wrote the missing golden file {expected_path}; review and commit it")
    assert text == expected_path.read_text(), f"{case}: output differs; MODELYARD_UPDATE_GOLDEN=1 regenerates it"


def test_no_secret_value_reaches_a_golden_file() -> None:
    for path in (GOLDEN / "outputs").glob("*.yaml"):
        assert "sk-openai" not in path.read_text(), path
