"""The CustomResourceDefinitions in ``crds/``, and what the apiserver would do with a manifest before CEL runs.

The CRDs are the cluster's half of the contract whose other half is :mod:`modelyard_routing.specs`. This module
reads them and emulates the apiserver's structural steps (null pruning, defaulting, OpenAPI validation with
``kubectl``'s strict field validation) so tests and tools can check a manifest without a cluster. CEL rules
(``x-kubernetes-validations``) are not evaluated here: :func:`iter_validation_rules` lists them for a CEL
engine to run.

Only :func:`validate_manifest` needs ``jsonschema`` (a test/dev dependency), and imports it when called, so
the proxy can import this module with its runtime dependencies alone.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from modelyard_routing.specs import API_GROUP, API_VERSION

#: Where the CRD manifests live in a source checkout.
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
CRD_VERSION = API_VERSION.rpartition("/")[2]
#: kind → file name in :data:`CRD_DIR`.
CRD_FILES: dict[str, str] = {
    "ModelRoute": f"{API_GROUP}_modelroutes.yaml",
    "ProviderCredential": f"{API_GROUP}_providercredentials.yaml",
    "ModelConsumer": f"{API_GROUP}_modelconsumers.yaml",
}

#: Schema keys that describe rather than constrain, and the Kubernetes extensions JSON Schema does not know.
_ANNOTATIONS = frozenset({"description", "example", "externalDocs", "title"})


@functools.cache
def _read_crd(kind: str) -> dict[str, Any]:
    try:
        name = CRD_FILES[kind]
    except KeyError:
        msg = f"no CRD for kind {kind!r}; known: {', '.join(sorted(CRD_FILES))}"
        raise KeyError(msg) from None
    path = CRD_DIR / name
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
        msg = f"{path}: not a CustomResourceDefinition"
        raise ValueError(msg)
    return doc


def load_crd(kind: str) -> dict[str, Any]:
    """The whole CustomResourceDefinition for ``kind`` (a fresh copy: callers may mutate it)."""
    return copy.deepcopy(_read_crd(kind))


def load_crd_schema(kind: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of the ``v1alpha1`` version of ``kind``'s CRD (a fresh copy)."""
    crd = _read_crd(kind)
    for version in crd["spec"]["versions"]:
        if version["name"] == CRD_VERSION:
            return copy.deepcopy(version["schema"]["openAPIV3Schema"])
    msg = f"CRD for {kind} has no version {CRD_VERSION}"
    raise ValueError(msg)


def ecma_pattern(pattern: str) -> str:
    """``pattern`` rewritten so Python's ``re.search`` matches what Go's RE2 (and ECMA-262) match.

    Python's ``$`` also matches before a trailing newline; in Go and ECMA-262 (without the multiline flag) it
    is the end of the text only, which Python spells ``\\Z``. Keep patterns to explicit ASCII classes: ``\\d``,
    ``\\w`` and ``\\s`` are Unicode-aware in Python and pydantic's Rust engine but not in Go.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        i += 1
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            # `[^` negates, and a `]` first in a class is a member, not its end (as in Go and Python).
            lead = pattern[i : i + 1]
            if lead == "^":
                char += lead
                i += 1
            if pattern[i : i + 1] == "]":
                char += "]"
                i += 1
        elif char == "$":
            char = r"\Z"
        out.append(char)
    return "".join(out)


def to_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's OpenAPI v3 structural schema as JSON Schema, for ``jsonschema``.

    Drops descriptions and ``x-kubernetes-*`` extensions, turns ``nullable`` into a ``null`` type and OpenAPI
    3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` into JSON Schema's numeric ones, and closes every
    object that lists its ``properties`` (``kubectl`` validates fields strictly, and pydantic forbids extras).
    Patterns are kept as written: check them with :func:`ecma_pattern`, as :func:`validate_manifest`
    does.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS or key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in {"items", "additionalProperties"} and isinstance(value, dict):
            out[key] = to_json_schema(value)
        else:
            out[key] = copy.deepcopy(value)
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(exclusive) is True and bound in out:
            out[exclusive] = out.pop(bound)
        elif isinstance(out.get(exclusive), bool):
            del out[exclusive]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    closed = not schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and closed:
        out["additionalProperties"] = False
    return out


def prune_and_default(schema: dict[str, Any], value: Any) -> Any:
    """``value`` as the apiserver stores it: nulls of non-nullable fields dropped, then defaults applied.

    Unknown fields are kept (the apiserver would prune them; ``kubectl`` in strict mode refuses them first).
    """
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        result: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if item is None and sub is not None and not sub.get("nullable"):
                continue
            result[key] = prune_and_default(sub, item) if sub is not None else copy.deepcopy(item)
        for key, sub in properties.items():
            if key not in result and "default" in sub:
                result[key] = prune_and_default(sub, copy.deepcopy(sub["default"]))
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_and_default(schema["items"], item) for item in value]
    return copy.deepcopy(value)


def iter_validation_rules(
    schema: dict[str, Any], value: Any, path: str = ""
) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Every CEL rule that applies to ``value``, as (path, rule, the value ``self`` is bound to).

    Rules on an array's items or a map's values apply once per element; rules on absent fields do not run.
    """
    for rule in schema.get("x-kubernetes-validations", ()):
        yield path, rule, value
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                yield from iter_validation_rules(sub, item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from iter_validation_rules(schema["items"], item, f"{path}[{index}]")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(ecma_pattern(pattern))


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema  # noqa: PLC0415  (a test/dev dependency: keep it out of the proxy's import path)

    def pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")

    base = jsonschema.Draft202012Validator
    schema = to_json_schema(load_crd_schema(kind))
    base.check_schema(schema)
    return jsonschema.validators.extend(base, {"pattern": pattern})(schema)


def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def validate_manifest(doc: dict[str, Any]) -> list[str]:
    """What the CRD's OpenAPI schema rejects in a manifest of a kind in :data:`CRD_FILES`, as ``path: message`` lines.

    The document is pruned and defaulted first, as the apiserver does. An empty list means the schema accepts
    it; CEL rules still apply (see :func:`iter_validation_rules`). Needs ``jsonschema``.
    """
    kind = doc.get("kind")
    if kind not in CRD_FILES:
        return [f"kind: {kind!r} is not one of {sorted(CRD_FILES)}"]
    errors = []
    if doc.get("apiVersion") != API_VERSION:
        errors.append(f"apiVersion: {doc.get('apiVersion')!r} is not {API_VERSION!r}")
    stored = prune_and_default(load_crd_schema(kind), doc)
    found = sorted(_validator(kind).iter_errors(stored), key=lambda e: (_path(e.absolute_path), e.message))
    errors.extend(f"{_path(error.absolute_path)}: {error.message}" for error in found)
    return errors
