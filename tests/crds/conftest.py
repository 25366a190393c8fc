"""Tooling for the CRD tests: the CRDs' CEL rules run by cel-python, plus the OpenAPI check, as fixtures.

Kubernetes evaluates ``x-kubernetes-validations`` with cel-go and its own libraries; cel-python implements
standard CEL, so the few Kubernetes library functions the CRDs use are supplied here. A rule calling any
other non-standard function fails to evaluate, and the test that runs it fails: add the function here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import celpy
import pytest
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from modelyard_routing.crd_schema import iter_validation_rules, load_crd_schema, prune_and_default, validate_manifest

Check = Callable[[dict[str, Any]], list[str]]


def _lower_ascii(text: celtypes.Value) -> celtypes.Value:
    """Kubernetes' ``string.lowerAscii()`` (cel-go's strings extension): only A-Z change."""
    assert isinstance(text, celtypes.StringType), f"lowerAscii() on {type(text).__name__}"
    return celtypes.StringType("".join(c.lower() if "A" <= c <= "Z" else c for c in text))


#: Kubernetes CEL library functions the CRDs use that cel-python lacks.
K8S_CEL_FUNCTIONS: dict[str, Any] = {"lowerAscii": _lower_ascii}


@functools.cache
def cel_program(expression: str) -> celpy.Runner:
    """``expression`` compiled for cel-python with the Kubernetes functions above."""
    env = celpy.Environment()
    return env.program(env.compile(expression), functions=K8S_CEL_FUNCTIONS)


def _evaluate(expression: str, value: Any) -> Any:
    result = cel_program(expression).evaluate({"self": json_to_cel(value)})
    if isinstance(result, CELEvalError):
        raise result
    return result


def cel_violations(doc: dict[str, Any]) -> list[str]:
    """The messages of the CRD's CEL rules that ``doc`` breaks, as ``path: message`` (after defaulting)."""
    schema = load_crd_schema(doc["kind"])
    stored = prune_and_default(schema, doc)
    found = []
    for path, rule, value in iter_validation_rules(schema, stored):
        verdict = _evaluate(rule["rule"], value)
        assert isinstance(verdict, celtypes.BoolType), f"{path}: rule {rule['rule']!r} gave {verdict!r}, not a bool"
        if verdict:
            continue
        if "messageExpression" in rule:
            message = str(_evaluate(rule["messageExpression"], value))
        else:
            message = rule.get("message") or f"failed rule: {rule['rule']}"
        found.append(f"{path}{rule.get('fieldPath', '')}: {message}")
    return found


def crd_rejections(doc: dict[str, Any]) -> list[str]:
    """Everything the apiserver would refuse in ``doc``: OpenAPI schema errors, then broken CEL rules."""
    return validate_manifest(doc) + cel_violations(doc)


@pytest.fixture
def crd_check() -> Check:
    """``crd_check(doc)`` lists what the CRD (OpenAPI schema and CEL rules) rejects in a manifest."""
    return crd_rejections


@pytest.fixture
def cel_check() -> Check:
    """``cel_check(doc)`` lists the CEL rules a manifest breaks (after pruning and defaulting)."""
    return cel_violations


@pytest.fixture
def cel_compile() -> Callable[[str], celpy.Runner]:
    """``cel_compile(expression)`` parses a CEL expression with the Kubernetes functions available."""
    return cel_program
