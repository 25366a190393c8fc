"""Scripted behaviour: what the simulator does for one request, and how the layers combine.

A request's behaviour is the book's default, overlaid by the per-model entry, then by a
``[simulate ...]`` directive in the last user message, then by ``x-simulator-*`` headers.
The directive exists because a gateway does not forward arbitrary headers, so a user
rehearsing an outage end to end can only reach the simulator through the prompt.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

HEADER_PREFIX = "x-simulator-"

_CONFIG = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    extra="forbid",
)


class OverrideError(ValueError):
    """An ``x-simulator-*`` header or directive could not be applied; answered as a 400."""


class ToolCall(BaseModel):
    """A tool call the model makes when the request declared tools."""

    model_config = _CONFIG

    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Behaviour(BaseModel):
    """How the simulated model answers. Python names are snake_case; YAML/headers use camelCase or kebab."""

    model_config = _CONFIG

    latency_ms: int = Field(default=0, ge=0, description="Delay before the response headers.")
    ttft_ms: int = Field(default=0, ge=0, description="Delay before the first streamed content chunk.")
    token_interval_ms: int = Field(default=0, ge=0, description="Delay between streamed content chunks.")
    status: int = Field(default=200, ge=200, le=599, description="Non-2xx answers with a native error.")
    retry_after: float | None = Field(default=None, ge=0, description="Seconds, sent as Retry-After.")
    error_message: str | None = Field(default=None, description="Replaces the native error message.")
    cut_after_chunks: int | None = Field(
        default=None, ge=0, description="Close the connection after N content chunks, without terminator."
    )
    mid_stream_error: bool = Field(
        default=False, description="Send the dialect's in-stream error event instead of cutting."
    )
    malformed: bool = Field(default=False, description="The body, or one SSE event, is invalid JSON.")
    shapeless: bool = Field(
        default=False,
        description="A 2xx body that is valid JSON but not the dialect's answer, as a misrouted proxy sends.",
    )
    drop_last_events: int = Field(
        default=0,
        ge=0,
        description="End the stream cleanly without its last N events (1: an OpenAI stream without [DONE]).",
    )
    reply: str | None = Field(default=None, description="Answer text; default echoes the last user turn.")
    refusal: bool = Field(default=False, description="Refuse: no text, the dialect's content-filter finish.")
    tool_call: ToolCall | None = Field(default=None, description="Call this tool when tools are declared.")
    embedding_dimensions: int = Field(default=16, ge=1, le=8192)
    require_key: str | None = Field(default=None, description="Answer the native 401 for any other key.")

    @field_validator("tool_call", mode="before")
    @classmethod
    def _tool_call_from_text(cls, value: object) -> object:
        """Headers and directives carry strings: accept JSON, or a bare tool name."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return orjson.loads(text)
        return {"name": text} if text else None

    def overlay(self, overrides: Mapping[str, object]) -> Behaviour:
        """Return a copy with ``overrides`` (any key spelling, raw strings allowed) validated on top."""
        if not overrides:
            return self
        data = self.model_dump(by_alias=False, exclude_unset=False)
        for key, value in overrides.items():
            name = field_name(key)
            if name not in Behaviour.model_fields:
                raise OverrideError(f"simulator: unknown behaviour field {key!r}")
            data[name] = value
        try:
            return Behaviour.model_validate(data)
        except (ValidationError, orjson.JSONDecodeError) as exc:
            raise OverrideError(f"simulator: invalid override: {_first_error(exc)}") from exc


class ScenarioBook(BaseModel):
    """The simulator's script: a default behaviour plus per-model overrides (glob patterns allowed)."""

    model_config = _CONFIG

    default: Behaviour = Field(default_factory=Behaviour)
    models: dict[str, Behaviour] = Field(default_factory=dict)
    record_limit: int = Field(default=200, ge=1, description="How many requests the log keeps.")
    deployments: list[str] | None = Field(
        default=None, description="Azure deployments that exist; None accepts any name."
    )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ScenarioBook:
        """Read a YAML scenario book; an empty file is the default book."""
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
        return cls.model_validate(data or {})

    def behaviour_for(self, model: str) -> Behaviour:
        """Default overlaid with the model's entry: exact name first, then the first matching glob."""
        entry = self.models.get(model)
        if entry is None:
            entry = next(
                (b for pattern, b in self.models.items() if fnmatch.fnmatchcase(model, pattern)),
                None,
            )
        if entry is None:
            return self.default
        return self.default.overlay(entry.model_dump(by_alias=False, exclude_unset=True))

    def model_ids(self) -> list[str]:
        """Models to advertise in list endpoints: the literal (non-glob) keys of the book."""
        ids = [name for name in self.models if not any(c in name for c in "*?[")]
        return ids or ["simulator"]


_DIRECTIVE = re.compile(r"\[simulate\b([^\]]*)\]", re.IGNORECASE)
_PAIR = re.compile(r"""([A-Za-z][\w-]*)(?:=("(?:[^"\\]|\\.)*"|'[^']*'|\S+))?""")


def parse_directives(text: str) -> tuple[str, dict[str, str]]:
    """Split ``[simulate key=value ...]`` directives out of a message.

    Returns the text without directives (stripped) and the overrides; a bare key means
    ``true`` and quoted values may contain spaces. Later directives win.
    """
    overrides: dict[str, str] = {}
    for match in _DIRECTIVE.finditer(text):
        for key, raw in _PAIR.findall(match.group(1)):
            overrides[key] = _unquote(raw) if raw else "true"
    return _DIRECTIVE.sub("", text).strip(), overrides


def header_overrides(headers: Mapping[str, str]) -> dict[str, str]:
    """Collect ``x-simulator-<field>`` headers as overrides keyed by the kebab field name."""
    return {
        key.lower().removeprefix(HEADER_PREFIX): value
        for key, value in headers.items()
        if key.lower().startswith(HEADER_PREFIX)
    }


def resolve(book: ScenarioBook, model: str, user_text: str, headers: Mapping[str, str]) -> Behaviour:
    """Apply the precedence header > directive > per-model > default."""
    _, directive = parse_directives(user_text)
    return book.behaviour_for(model).overlay(directive).overlay(header_overrides(headers))


def field_name(key: str) -> str:
    """Map ``retry-after``, ``retryAfter`` or ``retry_after`` to the Python field name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).replace("-", "_").lower()


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        inner = raw[1:-1]
        return re.sub(r"\\(.)", r"\1", inner) if raw[0] == '"' else inner
    return raw


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"])
        return f"{where}: {err['msg']}"
    return str(exc)
