"""Dialect-neutral answer: what the simulated model says, before any wire format is applied.

Every dialect parses its request into a :class:`Prompt`, calls :func:`compose`, and renders
the resulting :class:`Answer`. Keeping the decision here means the three dialects cannot
disagree about echo text, stop sequences, truncation, tool calls or token counts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from modelyard_simulator.behaviour import Behaviour, ToolCall, parse_directives
from modelyard_simulator.schema_sample import sample_json
from modelyard_simulator.tokens import count_tokens, tokenize

Finish = Literal["end", "length", "stop_sequence", "tool", "refusal"]

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 24) -> str:
    """A random provider-style identifier such as ``msg_01...`` or ``chatcmpl-...``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


@dataclass(frozen=True, slots=True)
class Prompt:
    """The parts of a request that decide the answer, whatever dialect it came in."""

    model: str
    user_text: str
    prompt_tokens: int
    tools: tuple[str, ...] = ()
    after_tool_result: bool = False
    json_mode: bool = False
    json_schema: Mapping[str, Any] | None = None
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None
    thinking: bool = False


@dataclass(frozen=True, slots=True)
class ToolUse:
    """A tool call the answer makes; ``arguments`` is the JSON text sent on the wire."""

    id_suffix: str
    name: str
    input: dict[str, Any]
    arguments: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What the model says. Token counts follow :mod:`modelyard_simulator.tokens`."""

    text: str | None
    tool: ToolUse | None
    thinking: str | None
    finish: Finish
    stop_sequence: str | None
    prompt_tokens: int
    output_tokens: int
    thinking_tokens: int
    text_tokens: list[str] = field(default_factory=list)

    @property
    def thinking_signature(self) -> str:
        return sign(self.thinking or "")


def sign(thinking: str) -> str:
    """A thinking block's signature: deterministic and tied to the text, so replays can be verified."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def force_call(behaviour: Behaviour, name: str, schema: object, user_text: str) -> Behaviour:
    """A request that forces a tool (``tool_choice``) gets a call, as the real models' do.

    A scripted ``tool_call`` wins; otherwise the arguments are an instance of the tool's parameter schema.
    """
    if behaviour.tool_call is not None:
        return behaviour
    clean, _ = parse_directives(user_text)
    has_fields = isinstance(schema, Mapping) and bool(schema.get("properties"))
    arguments = sample_json(schema, clean) if isinstance(schema, Mapping) and has_fields else {"echo": clean}
    return behaviour.model_copy(update={"tool_call": ToolCall(name=name, arguments=arguments)})


def compose(prompt: Prompt, behaviour: Behaviour) -> Answer:
    """Decide the answer for ``prompt`` under ``behaviour``."""
    clean, _ = parse_directives(prompt.user_text)
    thinking = f"The user said: {clean}" if prompt.thinking else None
    thinking_tokens = count_tokens(thinking) if thinking else 0

    if behaviour.refusal:
        return Answer(
            text="",
            tool=None,
            thinking=None,
            finish="refusal",
            stop_sequence=None,
            prompt_tokens=prompt.prompt_tokens,
            output_tokens=0,
            thinking_tokens=0,
        )
    if behaviour.tool_call is not None and prompt.tools and not prompt.after_tool_result:
        call = behaviour.tool_call
        arguments = orjson.dumps(call.arguments).decode()
        text = behaviour.reply
        return Answer(
            text=text,
            tool=ToolUse(new_id(""), call.name, dict(call.arguments), arguments),
            thinking=thinking,
            finish="tool",
            stop_sequence=None,
            prompt_tokens=prompt.prompt_tokens,
            output_tokens=count_tokens(text or "") + count_tokens(arguments),
            thinking_tokens=thinking_tokens,
            text_tokens=tokenize(text or ""),
        )

    text = _reply_text(prompt, behaviour, clean)
    finish: Finish = "end"
    stop_sequence = None
    hits = [(text.find(s), s) for s in prompt.stop if s and s in text]
    if hits:
        index, stop_sequence = min(hits)
        text, finish = text[:index], "stop_sequence"
    tokens = tokenize(text)
    if prompt.max_tokens is not None and len(tokens) > prompt.max_tokens:
        tokens = tokens[: max(prompt.max_tokens, 0)]
        text, finish, stop_sequence = "".join(tokens), "length", None
    return Answer(
        text=text,
        tool=None,
        thinking=thinking,
        finish=finish,
        stop_sequence=stop_sequence,
        prompt_tokens=prompt.prompt_tokens,
        output_tokens=len(tokens),
        thinking_tokens=thinking_tokens,
        text_tokens=tokens,
    )


def _reply_text(prompt: Prompt, behaviour: Behaviour, clean: str) -> str:
    if behaviour.reply is not None:
        return behaviour.reply
    if prompt.json_mode:
        value = sample_json(prompt.json_schema, clean) if prompt.json_schema else {"echo": clean}
        return orjson.dumps(value).decode()
    return f"echo: {clean}"
