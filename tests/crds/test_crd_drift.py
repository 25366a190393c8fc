"""The CRDs' spec schemas and the pydantic spec models say the same thing, keyword for keyword.

Both schemas are flattened to ``{path: constraints}`` (``.targets[].credentialRef.name``, ``.headers{}`` for a
map's values) and compared whole: a field on one side only, a different type, enum, pattern, bound, default
or ``required`` list fails. Where a structural schema has to spell a constraint differently (OpenAPI 3.0's
boolean ``exclusiveMinimum``, a CEL rule for the length of a map's keys), the CRD side is read as JSON Schema
would say it. Cross-field rules (pydantic validators ↔ CEL rules) are matched by name below.
"""

from __future__ import annotations

import re
from typing import Any, get_args

import pytest
from pydantic import BaseModel, create_model

from modelyard_routing.consumer_spec import LABEL_NAME_PATTERN, RESERVED_LABELS
from modelyard_routing.crd_schema import load_crd_schema
from modelyard_routing.specs import (
    CLOUD_REGION_PATTERN,
    HEADER_NAME_PATTERN,
    RESERVED_HEADERS,
    ModelRouteSpec,
    ProviderCredentialSpec,
)
from tests.crds.spec_models import SPEC_MODELS

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
    if defs is None:
        _as_json_schema(node, attrs)
    out[path or "spec"] = attrs
    return out


#: A CEL rule bounding a map's keys, which a structural schema cannot do with ``propertyNames``.
_KEY_LENGTH_RULE = re.compile(r"^self\.all\(k, size\(k\) <= (\d+)\)$")


def _as_json_schema(node: dict[str, Any], attrs: dict[str, Any]) -> None:
    """A CRD node's constraints as pydantic's JSON Schema states them."""
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        attrs["closed"] = True  # a structural schema keeps only the fields it lists
    if attrs.get("exclusiveMinimum") is True:
        attrs["exclusiveMinimum"] = attrs.pop("minimum")  # OpenAPI 3.0's boolean form
    for rule in node.get("x-kubernetes-validations", ()):
        if bound := _KEY_LENGTH_RULE.match(rule["rule"]):
            attrs["propertyNames"] = {"maxLength": int(bound.group(1))}


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


@pytest.mark.parametrize("kind", sorted(SPEC_MODELS))
def test_crd_spec_schema_matches_pydantic(kind: str) -> None:
    problems = _diff(flat_crd(kind), flat_pydantic(SPEC_MODELS[kind]))
    assert not problems, "CRD and the pydantic spec disagree:\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", sorted(SPEC_MODELS))
def test_flattening_sees_every_field(kind: str) -> None:
    """Guard against a vacuous comparison: both sides expose every top-level field and some constraints."""
    model = SPEC_MODELS[kind]
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


def test_drift_check_reads_openapi_spellings_as_json_schema_and_catches_their_bounds() -> None:
    crd_schema = load_crd_schema("ModelConsumer")["properties"]["spec"]
    usd = crd_schema["properties"]["budgets"]["items"]["properties"]["usd"]
    assert (usd["minimum"], usd["exclusiveMinimum"]) == (0, True)
    assert flat_crd("ModelConsumer")[".budgets[].usd"]["exclusiveMinimum"] == 0
    del usd["exclusiveMinimum"]  # a budget of zero would pass the CRD
    (rule,) = crd_schema["properties"]["keys"]["properties"]["matchLabels"]["x-kubernetes-validations"]
    rule["rule"] = rule["rule"].replace("317", "63")
    crd = _flatten(crd_schema, "", {}, defs=None)
    assert _diff(crd, flat_pydantic(SPEC_MODELS["ModelConsumer"])) == [
        ".budgets[].usd: exclusiveMinimum is '<absent>' in the CRD but 0 in pydantic",
        ".budgets[].usd: minimum is 0 in the CRD but '<absent>' in pydantic",
        ".keys.matchLabels: propertyNames is {'maxLength': 63} in the CRD but {'maxLength': 317} in pydantic",
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
        "secretRef is required (only openai-compatible may be keyless; bedrock and vertex-ai may use the pod's"
        " identity)",
    },
    ("ProviderCredentialSpec", "_cloud_rules"): {
        "providers bedrock and vertex-ai need region",
        "the region of bedrock and vertex-ai is a cloud region name (lowercase letters, digits and dashes)",
        "aws options apply only to provider bedrock",
        "aws.accessKeySecretRef (signed calls) and secretRef (a Bedrock API key) are alternatives: set one",
        "vertex options apply only to provider vertex-ai",
        "provider vertex-ai needs vertex.project",
    },
    ("ProxySpec", "_one_way"): {"egress.proxy sets exactly one of url, urlSecretRef and direct: true"},
    ("ModelRouteSpec", "_names_unique"): {"model and aliases must be distinct", "modelPatterns must be distinct"},
    ("ModelRouteSpec", "_profiles_unique"): {"profile names must be distinct"},
    ("ModelRouteSpec", "_hedge_needs_delay"): {"strategy.hedgeDelay is set exactly when strategy.type is hedge"},
    ("KeySource", "_names_some_secret"): {"keys needs secretRefs or matchLabels"},
    ("ModelConsumerSpec", "_labels_are_metric_safe"): {
        f"label names must be Prometheus label names ({LABEL_NAME_PATTERN})",
        "label names consumer, route, provider, model, code, outcome, worker, le and period are reserved for the"
        " gateway's own metric labels",
    },
    ("ModelConsumerSpec", "_one_budget_per_period"): {"budgets must name each period at most once"},
}

#: kind → the ``message`` of each CEL rule that states a schema keyword of the pydantic model (not a validator):
#: a bound a structural schema cannot express, or a minimum restated with a message that says what to do.
KEYWORD_CEL: dict[str, set[str]] = {
    "ModelConsumer": {
        "matchLabels keys must be at most 317 characters",
        "requestsPerMinute must be at least 1; omit it for no limit",
        "tokensPerMinute must be at least 1; omit it for no limit",
        "concurrentRequests must be at least 1; omit it for no limit",
    },
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


def _models_within(model: type[BaseModel]) -> set[type[BaseModel]]:
    """``model`` and every model its fields hold, however deeply (inside lists, maps and optionals too)."""
    found: set[type[BaseModel]] = set()

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for arg in get_args(annotation):
            visit(arg)

    visit(model)
    return found


def _validators(model: type[BaseModel]) -> set[tuple[str, str]]:
    return {
        (inner.__name__, name)
        for inner in _models_within(model)
        for decorators in (
            inner.__pydantic_decorators__.model_validators,
            inner.__pydantic_decorators__.field_validators,
        )
        for name in decorators
    }


def test_every_pydantic_validator_has_cel_rules_and_vice_versa() -> None:
    validators = set().union(*(_validators(model) for model in SPEC_MODELS.values()))
    assert validators == VALIDATOR_TO_CEL.keys(), "a validator was added or removed: add or remove its CEL rule"
    for kind, model in SPEC_MODELS.items():
        expected = set().union(*(VALIDATOR_TO_CEL[key] for key in _validators(model)), KEYWORD_CEL.get(kind, set()))
        assert {rule["message"] for rule in _spec_rules(kind)} == expected, kind


def test_validator_scan_finds_validators_of_nested_models() -> None:
    assert ("KeySource", "_names_some_secret") in _validators(SPEC_MODELS["ModelConsumer"])


def test_minimum_rules_restate_the_minimum_of_their_field() -> None:
    """A CEL rule that repeats a bound with a clearer message says the same bound as the schema beside it."""
    limits = load_crd_schema("ModelConsumer")["properties"]["spec"]["properties"]["limits"]["properties"]
    for name, node in limits.items():
        (rule,) = node["x-kubernetes-validations"]
        assert rule["rule"] == f"self >= {node['minimum']}", name
        assert rule["message"].startswith(f"{name} must be at least {node['minimum']};"), name


def _one_rule(kind: str, containing: str) -> str:
    (rule,) = [str(r["rule"]) for r in _spec_rules(kind) if containing in r["rule"]]
    return rule


def _listed(rule: str) -> set[str]:
    """The quoted names of the one CEL list literal in ``rule``."""
    listed = re.search(r"\[([^\]]*)\]", rule)
    assert listed is not None
    return {name.strip().strip("'") for name in listed.group(1).split(",")}


def test_reserved_name_rules_list_exactly_the_reserved_names() -> None:
    assert _listed(_one_rule("ProviderCredential", "lowerAscii")) == RESERVED_HEADERS
    assert _listed(_one_rule("ModelConsumer", " in [")) == RESERVED_LABELS


def test_name_rules_use_the_name_patterns_of_the_validators() -> None:
    assert f'k.matches("{HEADER_NAME_PATTERN}")' in _one_rule("ProviderCredential", "k.matches(")
    assert f"self.region.matches('{CLOUD_REGION_PATTERN}')" in _one_rule("ProviderCredential", "region.matches(")
    assert f"k.matches('{LABEL_NAME_PATTERN}')" in _one_rule("ModelConsumer", ".matches(")


@pytest.mark.parametrize("kind", sorted(SPEC_MODELS))
def test_factory_defaults_are_empty_so_an_optional_crd_field_means_the_same(kind: str) -> None:
    """pydantic's JSON schema omits ``default_factory`` defaults; the CRD omits them too, which is only
    equivalent if absent and the factory's value mean the same: an empty list or map, or a model left unset."""
    crd = flat_crd(kind)
    for name, field in SPEC_MODELS[kind].model_fields.items():
        if field.default_factory is not None:
            path = f".{field.alias or name}"
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):  # a model of optional fields, all unset: an empty object
                assert default.model_dump(exclude_defaults=True) == {}, path
            else:
                assert default in ([], {}), path
            assert "default" not in crd[path], path
            assert (field.alias or name) not in crd["spec"]["required"], path
