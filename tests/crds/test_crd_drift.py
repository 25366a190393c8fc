"""The CRDs' spec schemas and the pydantic spec models say the same thing, keyword for keyword.

Both schemas are flattened to ``{path: constraints}`` (``.targets[].credentialRef.name``, ``.headers{}`` for a
map's values) and compared whole: a field on one side only, a different type, enum, pattern, bound, default
or ``required`` list fails. Cross-field rules (pydantic validators ↔ CEL rules) are matched by name below.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, create_model

from modelyard_routing.crd_schema import load_crd_schema
from modelyard_routing.specs import (
    HEADER_NAME_PATTERN,
    KIND_TO_SPEC,
    RESERVED_HEADERS,
    ModelRouteSpec,
    ProviderCredentialSpec,
)

Flat = dict[str, dict[str, Any]]

#: Keys that document rather than constrain.
_IGNORED = frozenset({"title", "description", "$defs", "example", "examples"})
_NULL = {"type": "null"}


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema node with ``$ref`` inlined and ``Optional[X] = None`` reduced to an optional ``X``."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rpartition("/")[2]]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _resolve({**target, **rest}, defs)
    variants = schema.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and _NULL in variants:
        (inner,) = (v for v in variants if v != _NULL)
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        if "default" in rest and rest["default"] is None:
            # `None` means "absent": a CRD field that is simply not required.
            del rest["default"]
        return _resolve({**inner, **rest}, defs)
    return schema


def _flatten(schema: dict[str, Any], path: str, out: Flat, *, defs: dict[str, Any] | None) -> Flat:
    """``schema`` as ``{path: constraints}``; ``defs`` is pydantic's ``$defs`` (``None`` for the CRD side)."""
    node = _resolve(schema, defs) if defs is not None else schema
    attrs: dict[str, Any] = {}
    for key, value in node.items():
        if key in _IGNORED or key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            for name, sub in value.items():
                _flatten(sub, f"{path}.{name}", out, defs=defs)
        elif key == "items" and isinstance(value, dict):
            _flatten(value, f"{path}[]", out, defs=defs)
        elif key == "additionalProperties" and isinstance(value, dict):
            attrs["additionalProperties"] = "schema"
            _flatten(value, f"{path}{{}}", out, defs=defs)
        elif key == "additionalProperties" and value is False:
            attrs["closed"] = True  # pydantic's extra="forbid"
        elif key == "required":
            attrs[key] = sorted(value)
        else:
            attrs[key] = value
    if defs is None and "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        attrs["closed"] = True  # a structural schema keeps only the fields it lists
    out[path or "spec"] = attrs
    return out


def flat_pydantic(model: type[BaseModel]) -> Flat:
    schema = model.model_json_schema(by_alias=True)
    return _flatten(schema, "", {}, defs=schema.get("$defs", {}))


def flat_crd(kind: str) -> Flat:
    return _flatten(load_crd_schema(kind)["properties"]["spec"], "", {}, defs=None)


def _diff(crd: Flat, pyd: Flat) -> list[str]:
    problems = [f"{path}: only in the CRD" for path in sorted(crd.keys() - pyd.keys())]
    problems += [f"{path}: only in pydantic" for path in sorted(pyd.keys() - crd.keys())]
    for path in sorted(crd.keys() & pyd.keys()):
        for key in sorted(crd[path].keys() | pyd[path].keys()):
            left, right = crd[path].get(key, "<absent>"), pyd[path].get(key, "<absent>")
            if left != right:
                problems.append(f"{path}: {key} is {left!r} in the CRD but {right!r} in pydantic")
    return problems


@pytest.mark.parametrize("kind", sorted(KIND_TO_SPEC))
def test_crd_spec_schema_matches_pydantic(kind: str) -> None:
    problems = _diff(flat_crd(kind), flat_pydantic(KIND_TO_SPEC[kind]))
    assert not problems, "CRD and specs.py disagree:\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", sorted(KIND_TO_SPEC))
def test_flattening_sees_every_field(kind: str) -> None:
    """Guard against a vacuous comparison: both sides expose every top-level field and some constraints."""
    model = KIND_TO_SPEC[kind]
    aliases = {field.alias or name for name, field in model.model_fields.items()}
    crd = flat_crd(kind)
    assert {path.split(".")[1].rstrip("[]{}") for path in crd if path != "spec"} == aliases
    assert any("pattern" in attrs for attrs in crd.values())
    assert crd["spec"]["required"]


def test_drift_check_catches_a_field_added_to_pydantic_only() -> None:
    widened = create_model("WidenedRoute", __base__=ModelRouteSpec, timeoutSeconds=(int, 30))
    problems = _diff(flat_crd("ModelRoute"), flat_pydantic(widened))
    assert problems == [".timeoutSeconds: only in pydantic"]


def test_drift_check_catches_a_field_added_to_the_crd_only_or_a_changed_bound() -> None:
    crd_schema = load_crd_schema("ProviderCredential")["properties"]["spec"]
    crd_schema["properties"]["apiKey"] = {"type": "string"}
    crd_schema["properties"]["headers"]["maxProperties"] = 64
    crd = _flatten(crd_schema, "", {}, defs=None)
    assert _diff(crd, flat_pydantic(ProviderCredentialSpec)) == [
        ".apiKey: only in the CRD",
        ".headers: maxProperties is 64 in the CRD but 32 in pydantic",
    ]


# -- cross-field rules: every pydantic validator has CEL rules, every CEL rule has a validator ------------------

#: (model, validator) → the ``message`` of each CEL rule that enforces the same thing in the CRD.
VALIDATOR_TO_CEL: dict[tuple[str, str], set[str]] = {
    ("ProviderCredentialSpec", "_headers_are_safe"): {
        "header names must be valid HTTP tokens",
        "headers authorization, x-api-key, api-key, x-goog-api-key, host, content-length, content-type,"
        " transfer-encoding and connection are reserved: the gateway sets them",
    },
    ("ProviderCredentialSpec", "_provider_rules"): {
        "providers azure-openai and openai-compatible need baseURL",
        "azure options apply only to provider azure-openai",
        "secretRef is required (only openai-compatible may be keyless)",
    },
    ("ModelRouteSpec", "_names_unique"): {"model and aliases must be distinct", "modelPatterns must be distinct"},
    ("ModelRouteSpec", "_profiles_unique"): {"profile names must be distinct"},
    ("ModelRouteSpec", "_hedge_needs_delay"): {"strategy.hedgeDelay is set exactly when strategy.type is hedge"},
}


def _cel_rules(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rules = list(schema.get("x-kubernetes-validations", ()))
    for sub in schema.get("properties", {}).values():
        rules += _cel_rules(sub)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            rules += _cel_rules(schema[key])
    return rules


def _spec_rules(kind: str) -> list[dict[str, Any]]:
    return _cel_rules(load_crd_schema(kind)["properties"]["spec"])


def test_every_pydantic_validator_has_cel_rules_and_vice_versa() -> None:
    validators = {
        (model.__name__, name)
        for model in KIND_TO_SPEC.values()
        for decorators in (
            model.__pydantic_decorators__.model_validators,
            model.__pydantic_decorators__.field_validators,
        )
        for name in decorators
    }
    assert validators == VALIDATOR_TO_CEL.keys(), "a validator was added or removed: add or remove its CEL rule"
    for kind, model in KIND_TO_SPEC.items():
        expected = set().union(*(msgs for (owner, _), msgs in VALIDATOR_TO_CEL.items() if owner == model.__name__))
        assert {rule["message"] for rule in _spec_rules(kind)} == expected, kind


def test_reserved_header_rule_lists_exactly_the_reserved_headers() -> None:
    (rule,) = [r for r in _spec_rules("ProviderCredential") if "lowerAscii" in r["rule"]]
    listed = re.search(r"\[([^\]]*)\]", rule["rule"])
    assert listed is not None
    assert {name.strip().strip("'") for name in listed.group(1).split(",")} == RESERVED_HEADERS


def test_header_token_rule_uses_the_header_name_pattern() -> None:
    (rule,) = [r for r in _spec_rules("ProviderCredential") if ".matches(" in r["rule"]]
    assert f'k.matches("{HEADER_NAME_PATTERN}")' in rule["rule"]


@pytest.mark.parametrize("kind", sorted(KIND_TO_SPEC))
def test_factory_defaults_are_empty_so_an_optional_crd_field_means_the_same(kind: str) -> None:
    """pydantic's JSON schema omits ``default_factory`` defaults; the CRD omits them too, which is only
    equivalent if absent and the factory's value mean the same: an empty list or map."""
    crd = flat_crd(kind)
    for name, field in KIND_TO_SPEC[kind].model_fields.items():
        if field.default_factory is not None:
            path = f".{field.alias or name}"
            assert field.get_default(call_default_factory=True) in ([], {}), path
            assert "default" not in crd[path], path
            assert (field.alias or name) not in crd["spec"]["required"], path
