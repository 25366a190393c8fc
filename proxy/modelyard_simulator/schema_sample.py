"""Small instances of JSON Schemas, so structured answers validate against the schema the client sent.

Clients generate schemas with references: pydantic puts nested models under ``$defs`` and points at them
with ``$ref``, and OpenAI's strict mode keeps them. Local references (``#``, ``#/$defs/...``,
``#/definitions/...``) are followed; a recursive schema stops at a fixed depth with an empty array or null.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 16
_SIMPLE: dict[str, Any] = {"integer": 1, "number": 1.0, "boolean": True}


def sample_json(schema: Mapping[str, Any], echo: str) -> Any:
    """An instance of ``schema``: strings echo the user text, other types get simple values."""
    return _Sampler(schema, echo).sample(schema, 0)


class _Sampler:
    """Walks one schema document; ``root`` is what ``#`` references resolve against."""

    def __init__(self, root: Mapping[str, Any], echo: str) -> None:
        self._root = root
        self._echo = echo

    def sample(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH:
            return None
        if isinstance(ref := schema.get("$ref"), str):
            return self.sample(self._resolve(ref), depth + 1)
        if "const" in schema:
            return schema["const"]
        if isinstance(enum := schema.get("enum"), list) and enum:
            return enum[0]
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            options = [o for o in options if isinstance(o, Mapping)] if isinstance(options, list) else []
            if options:
                return self._combine(key, options, depth)
        return self._typed(schema, depth)

    def _combine(self, key: str, options: list[Mapping[str, Any]], depth: int) -> Any:
        """``allOf``: the parts merged (pydantic wraps a described ``$ref`` in one); else the first non-null."""
        if key == "allOf":
            parts = [self.sample(option, depth + 1) for option in options]
            if all(isinstance(part, dict) for part in parts):
                return {name: value for part in parts for name, value in part.items()}
            return parts[0]
        chosen = next((o for o in options if o.get("type") != "null"), options[0])
        return self.sample(chosen, depth + 1)

    def _typed(self, schema: Mapping[str, Any], depth: int) -> Any:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        kind = kind.lower() if isinstance(kind, str) else None
        if kind == "object" or (kind is None and "properties" in schema):
            properties = schema.get("properties")
            fields = properties.items() if isinstance(properties, Mapping) else ()
            return {name: self.sample(sub, depth + 1) for name, sub in fields}
        if kind == "array":
            items = schema.get("items")
            return [self.sample(items, depth + 1)] if isinstance(items, Mapping) and depth < MAX_DEPTH else []
        if kind == "string":
            return self._echo
        return _SIMPLE.get(kind or "")

    def _resolve(self, ref: str) -> Any:
        """A local JSON Pointer reference; None for remote or dangling ones."""
        if ref == "#":
            return self._root
        if not ref.startswith("#/"):
            return None
        node: Any = self._root
        for token in ref[2:].split("/"):
            key = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping):
                node = node.get(key)
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return None
        return node
