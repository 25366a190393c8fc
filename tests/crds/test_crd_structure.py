"""The CRD files are valid CustomResourceDefinitions the apiserver will take as they are.

kubernetes-validate checks them against the CustomResourceDefinition API; the rest checks what it cannot:
structural-schema rules, defaults, printer-column paths, CEL rules that parse and stay within the cost
budget (every value they touch is bounded), and patterns that mean the same to Go's RE2, Python and pydantic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import celpy
import jsonschema
import kubernetes_validate
import pytest
import re2  # type: ignore[import-untyped]  # google-re2, a dependency of cel-python: the engine Kubernetes uses
from pydantic import Field, TypeAdapter

from modelyard_routing.crd_schema import (
    CRD_DIR,
    CRD_FILES,
    CRD_VERSION,
    ecma_pattern,
    load_crd,
    load_crd_schema,
    to_json_schema,
)
from modelyard_routing.specs import API_GROUP, HEADER_NAME_PATTERN

KINDS = sorted(CRD_FILES)
K8S_VERSIONS = ["1.33", kubernetes_validate.utils.latest_version()]
SHORT_NAMES = {"ModelRoute": "mr", "ProviderCredential": "pcred", "ModelConsumer": "mc"}
#: Short names built-in resources already own; reusing one would make ``kubectl get <name>`` ambiguous.
BUILTIN_SHORT_NAMES = {
    "cm",
    "cs",
    "csr",
    "crd",
    "crds",
    "deploy",
    "ds",
    "ep",
    "ev",
    "hpa",
    "ing",
    "limits",
    "netpol",
    "no",
    "ns",
    "pc",
    "pdb",
    "po",
    "psp",
    "pv",
    "pvc",
    "quota",
    "rc",
    "rs",
    "sa",
    "sc",
    "sts",
    "svc",
}

Node = tuple[str, dict[str, Any]]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[Node]:
    """Every schema node, depth first, with a readable path (``.spec.targets[]``, ``.spec.headers{}``)."""
    yield path or ".", schema
    for name, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def test_crd_folder_holds_exactly_the_known_crds() -> None:
    assert sorted(path.name for path in CRD_DIR.glob("*.yaml")) == sorted(CRD_FILES.values())


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_kubernetes_validate_accepts_the_crd(kind: str, version: str) -> None:
    kubernetes_validate.validate(load_crd(kind), version, strict=True)


@pytest.mark.parametrize("kind", KINDS)
def test_names_scope_and_version(kind: str) -> None:
    crd = load_crd(kind)
    spec = crd["spec"]
    names = spec["names"]
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["singular"] == kind.lower()
    assert names["plural"] == f"{kind.lower()}s"
    assert crd["metadata"]["name"] == f"{names['plural']}.{API_GROUP}"
    assert SHORT_NAMES[kind] in names["shortNames"]
    assert not BUILTIN_SHORT_NAMES & set(names["shortNames"])
    assert names["categories"] == ["modelyard"]
    assert spec["group"] == API_GROUP
    assert spec["scope"] == "Namespaced"
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (CRD_VERSION, True, True)
    assert version["subresources"] == {"status": {}}


# -- structural schema ------------------------------------------------------------------------------------------

#: Keywords a structural schema may not use at all, or that these CRDs have no reason to use.
_NOT_STRUCTURAL = frozenset(
    {
        "$ref",
        "$schema",
        "additionalItems",
        "allOf",
        "anyOf",
        "definitions",
        "dependencies",
        "id",
        "not",
        "nullable",
        "oneOf",
        "patternProperties",
        "uniqueItems",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
    }
)


def _structural_problems(kind: str) -> list[str]:
    schema = load_crd_schema(kind)
    problems = []
    for path, node in _nodes(schema):
        if node.get("type") not in {"object", "array", "string", "integer", "number", "boolean"}:
            problems.append(f"{path}: no valid type")
        if used := _NOT_STRUCTURAL & node.keys():
            problems.append(f"{path}: uses {sorted(used)}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: both properties and additionalProperties")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
            problems.append(f"{path}: additionalProperties must be a schema")
        if node.get("type") == "array" and not isinstance(node.get("items"), dict):
            problems.append(f"{path}: an array needs one items schema")
        fieldless = not {"properties", "additionalProperties"} & node.keys()
        if node.get("type") == "object" and fieldless and path != ".metadata":
            problems.append(f"{path}: an object without properties is pruned to {{}}")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node.get("x-kubernetes-list-map-keys", ()):
                if key not in item.get("required", ()) and "default" not in item["properties"].get(key, {}):
                    problems.append(f"{path}: list-map key {key} must be required or defaulted")
        for name in node.get("required", ()):
            if name not in node.get("properties", {}):
                problems.append(f"{path}: requires unknown field {name}")
    if schema["properties"]["metadata"] != {"type": "object"}:
        problems.append(".metadata: only `type: object` is allowed")
    if schema.get("type") != "object" or "spec" not in schema.get("required", ()):
        problems.append(".: an object that requires spec")
    return problems


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    assert _structural_problems(kind) == []


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_are_valid_values_of_their_fields(kind: str) -> None:
    defaulted = [(path, node) for path, node in _nodes(load_crd_schema(kind)) if "default" in node]
    assert defaulted
    for path, node in defaulted:
        assert path.startswith(".spec."), f"{path}: defaults belong in spec"
        jsonschema.validate(node["default"], to_json_schema(node))


@pytest.mark.parametrize("kind", KINDS)
def test_status_has_standard_conditions(kind: str) -> None:
    status = load_crd_schema(kind)["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "observedGeneration",
        "lastTransitionTime",
    }
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert status["properties"]["observedGeneration"]["type"] == "integer"
    if kind == "ModelRoute":
        assert {"programmedReplicas", "tableGeneration", "tableHash"} <= status["properties"].keys()
    if kind == "ModelConsumer":
        assert {"models", "limits", "budget", "spentUSD", "usage"} <= status["properties"].keys()
        usage = status["properties"]["usage"]["properties"]
        assert usage["updatedAt"]["format"] == "date-time"
        period = usage["periods"]["items"]["properties"]
        assert {"period", "budgetUSD", "spentUSD", "remainingUSD", "resetsAt"} <= period.keys()
        assert period["period"]["enum"] == ["hour", "day", "month"]


# -- printer columns --------------------------------------------------------------------------------------------

_JSONPATH_STEP = re.compile(r"\.([A-Za-z][A-Za-z0-9]*)|\[(\d+|\?\(@\.type==\"[A-Za-z]+\"\))\]")
_COLUMN_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


def _column_field(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    """The schema node a printer column's JSONPath lands on (fails on a step the schema does not have)."""
    node, pos = schema, 0
    while pos < len(json_path):
        step = _JSONPATH_STEP.match(json_path, pos)
        assert step is not None, f"{json_path}: cannot follow from {json_path[pos:]!r}"
        if step.group(1):
            assert step.group(1) in node.get("properties", {}), f"{json_path}: no field {step.group(1)}"
            node = node["properties"][step.group(1)]
        else:
            assert node.get("type") == "array", f"{json_path}: indexes a non-list"
            if step.group(2).startswith("?"):
                assert node.get("x-kubernetes-list-map-keys") == ["type"], f"{json_path}: filters by a non-key"
            node = node["items"]
        pos = step.end()
    return node


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_point_at_fields_of_their_type(kind: str) -> None:
    (version,) = load_crd(kind)["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    schema = load_crd_schema(kind)
    for column in columns:
        if column["jsonPath"] == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        field = _column_field(schema, column["jsonPath"])
        assert _COLUMN_TYPES[field["type"]] == column["type"], column["name"]
    assert columns[-1]["name"] == "Age"
    expected = {
        "ModelRoute": ["Model", "Target", "Accepted", "Programmed", "Replicas", "Age"],
        "ProviderCredential": ["Provider", "Region", "Secret", "ResolvedRefs", "Accepted", "Age"],
        "ModelConsumer": ["Models", "Limits", "Budget", "Spent", "Programmed", "Age"],
    }[kind]
    assert [column["name"] for column in columns] == expected


# -- CEL rules: they parse, and every value they read is bounded (the apiserver's cost estimate) ------------------

_CEL_REASONS = frozenset({"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"})
_SELF_FIELD = re.compile(r"\bself((?:\.[A-Za-z_][A-Za-z0-9_]*)*)")


def _bounded(node: dict[str, Any]) -> bool:
    """Whether the estimator knows how large ``node`` can be (all the way down, for lists and maps)."""
    kind = node.get("type")
    if kind == "string":
        return "maxLength" in node or "enum" in node
    if kind == "array":
        return "maxItems" in node and _bounded(node["items"])
    if kind == "object" and "additionalProperties" in node:
        return "maxProperties" in node and _bounded(node["additionalProperties"])
    return True  # numbers, booleans, and objects with fixed properties (read field by field)


def _rules(kind: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (path, node, rule)
        for path, node in _nodes(load_crd_schema(kind))
        for rule in node.get("x-kubernetes-validations", ())
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_cel_rules_parse_and_read_only_bounded_values(kind: str, cel_compile: Callable[[str], celpy.Runner]) -> None:
    rules = _rules(kind)
    assert rules
    for path, node, rule in rules:
        cel_compile(rule["rule"])
        if "messageExpression" in rule:
            cel_compile(rule["messageExpression"])
        assert rule.get("message"), f"{path}: every rule carries a static message"
        assert "\n" not in rule["message"], f"{path}: the apiserver refuses a message with line breaks"
        assert rule.get("reason", "FieldValueInvalid") in _CEL_REASONS, f"{path}: unknown reason"
        for reference in _SELF_FIELD.finditer(rule["rule"]):
            target = node
            for name in filter(None, reference.group(1).split(".")):
                if name not in target.get("properties", {}):
                    break  # a method call such as self.all(...)
                target = target["properties"][name]
            assert _bounded(target), f"{path}: rule {rule['rule']!r} reads an unbounded value"
        if "fieldPath" in rule:
            names = rule["fieldPath"].lstrip(".").split(".")
            target = node
            for name in names:
                assert name in target.get("properties", {}), f"{path}: fieldPath {rule['fieldPath']} is not a field"
                target = target["properties"][name]


# -- patterns: RE2 syntax, and the same matches in Go's RE2, Python (as emulated) and pydantic ------------------

#: Strings that tell regex engines apart: trailing newlines, Unicode digits and spaces, non-ASCII letters.
_PROBES = [
    "",
    "a",
    "a\n",
    "gpt-4o",
    "gpt-4o\n",
    "meta-llama/Llama-3.1-8B-Instruct",
    "2024-10-21",
    "2024-10-21-preview",
    "2024-10-21\n",
    "\u0662\u0660\u0662\u0664-\u0661\u0660-\u0662\u0661",  # 2024-10-21 in Arabic-Indic digits
    "https://example.com/v1",
    "https://example.com/v1\n",
    "https://exa mple.com",
    "https://example.com/\u00a0",
    "https://例え.jp/v1",
    "openai-key",
    "OpenAI-Key",
    "my.secret-1",
    "deployment_1",
    "gpt-4o*",
    "*",
    "cost_center",
    "Accepted",
    "modelyard.io/Programmed",
    "True",
    "x" * 300,
]


def _patterns() -> list[Any]:
    found: dict[str, str] = {}
    for kind in KINDS:
        for path, node in _nodes(load_crd_schema(kind)):
            if "pattern" in node:
                found.setdefault(node["pattern"], f"{kind}{path}")
    return [pytest.param(pattern, id=where) for pattern, where in found.items()]


@pytest.mark.parametrize("pattern", _patterns())
def test_pattern_means_the_same_in_every_engine(pattern: str) -> None:
    assert re.search(r"\\[dDwWsSbB]", pattern) is None, "spell classes out: \\d, \\w, \\s differ between engines"
    go = re2.compile(pattern)
    python = re.compile(ecma_pattern(pattern))
    rust = TypeAdapter(Annotated[str, Field(pattern=pattern)])
    for probe in _PROBES:
        in_go = go.search(probe) is not None
        assert (python.search(probe) is not None) == in_go, f"Python and RE2 disagree on {probe!r}"
        assert _accepts(rust, probe) == in_go, f"pydantic and RE2 disagree on {probe!r}"


def test_header_name_pattern_means_the_same_in_cel_and_the_pydantic_validator() -> None:
    """CEL's matches() is RE2; the validator uses re.fullmatch (plain re.match would let "X-Foo\\n" through)."""
    probes = [*_PROBES, "X-Foo", "X-Foo\n", "X Foo", "x-b3-traceid", "Ünïcode", "OpenAI-Beta", "a:b"]
    for probe in probes:
        in_go = re2.search(HEADER_NAME_PATTERN, probe) is not None
        assert (re.fullmatch(HEADER_NAME_PATTERN, probe) is not None) == in_go, probe


def _accepts(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValueError:
        return False
    return True
