"""Every ModelRoute, ProviderCredential and ModelConsumer in examples/ passes the CRD and the pydantic models alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard_routing.crd_schema import CRD_FILES, load_crd_schema, prune_and_default
from tests.crds.spec_models import parse_any_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _documents() -> list[Any]:
    found = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
            if isinstance(doc, dict) and doc.get("kind") in CRD_FILES:
                name = f"{path.relative_to(EXAMPLES)}#{index}:{doc['kind']}/{doc['metadata']['name']}"
                found.append(pytest.param(doc, id=name))
    return found


DOCUMENTS = _documents()


def test_examples_are_found() -> None:
    kinds = {param.values[0]["kind"] for param in DOCUMENTS}
    assert kinds == set(CRD_FILES)
    assert len(DOCUMENTS) >= 10


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_example_passes_the_crd(doc: dict[str, Any], crd_check: Callable[[dict[str, Any]], list[str]]) -> None:
    assert crd_check(doc) == []


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_example_passes_pydantic_before_and_after_apiserver_defaulting(doc: dict[str, Any]) -> None:
    """The spec the apiserver stores (CRD defaults filled in) means what the manifest means to pydantic."""
    as_written = parse_any_spec(doc["kind"], doc["spec"])
    stored = prune_and_default(load_crd_schema(doc["kind"])["properties"]["spec"], doc["spec"])
    assert parse_any_spec(doc["kind"], stored) == as_written
