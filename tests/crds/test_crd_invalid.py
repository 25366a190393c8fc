"""Each manifest in invalid/ is refused by the CRD (OpenAPI schema or CEL rule) and by pydantic alike.

A file documents itself in three comment lines: ``# Invalid: <what is wrong>``, ``# crd-rejects: <text>`` (in
one of the apiserver's ``path: message`` errors, as emulated here) and ``# pydantic-rejects: <text>`` (in the
ValidationError).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from celpy.adapter import json_to_cel
from pydantic import ValidationError

from modelyard_routing.crd_schema import CRD_FILES, iter_validation_rules, load_crd_schema, prune_and_default
from tests.crds.spec_models import parse_any_spec

INVALID = Path(__file__).resolve().parent / "invalid"
_HEADER = re.compile(r"^# (Invalid|crd-rejects|pydantic-rejects): (.+)$", re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    doc: dict[str, Any]
    why: str
    crd_rejects: str
    pydantic_rejects: str


def _load(path: Path) -> Case:
    text = path.read_text(encoding="utf-8")
    notes = dict(_HEADER.findall(text))
    docs = list(yaml.safe_load_all(text))
    assert len(docs) == 1, f"{path.name}: one manifest per file"
    assert set(notes) == {"Invalid", "crd-rejects", "pydantic-rejects"}, f"{path.name}: header comments"
    return Case(path.name, docs[0], notes["Invalid"], notes["crd-rejects"], notes["pydantic-rejects"])


CASES = [_load(path) for path in sorted(INVALID.glob("*.yaml"))]


def test_there_are_cases_for_every_kind() -> None:
    assert {case.doc["kind"] for case in CASES} == set(CRD_FILES)
    assert len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_crd_rejects(case: Case, crd_check: Callable[[dict[str, Any]], list[str]]) -> None:
    errors = crd_check(case.doc)
    assert any(case.crd_rejects in error for error in errors), f"{case.why}\nexpected {case.crd_rejects!r} in {errors}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_pydantic_rejects(case: Case) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_any_spec(case.doc["kind"], case.doc.get("spec", {}))
    assert case.pydantic_rejects in str(caught.value), case.why


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_every_cel_rule_is_broken_by_some_case(kind: str, cel_compile: Callable[[str], celpy.Runner]) -> None:
    """So each CEL rule is known to fire (and a rule that can never fail shows up here)."""
    schema = load_crd_schema(kind)
    broken = set()
    for case in CASES:
        if case.doc["kind"] == kind:
            stored = prune_and_default(schema, case.doc)
            for _, rule, value in iter_validation_rules(schema, stored):
                if not cel_compile(rule["rule"]).evaluate({"self": json_to_cel(value)}):
                    broken.add(rule["rule"])
    everywhere = {rule["rule"] for rule in _all_rules(schema)}
    assert everywhere, f"{kind} has no CEL rules"
    assert broken == everywhere


def _all_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rules = list(schema.get("x-kubernetes-validations", ()))
    for sub in schema.get("properties", {}).values():
        rules += _all_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            rules += _all_rules(schema[key])
    return rules
