"""What each OpenAI-compatible vendor does differently, as data, and the one generic rewrite that applies it.

Like LiteLLM's ``openai_like/providers.json``, a vendor is a row of facts (renamed, dropped and refused
parameters, accepted tool types, reasoning mapping, finish-reason spellings), never an ``if vendor == ...``
branch. Rewrites are copy-on-write: a body no quirk touches is returned as ``None`` so the adapter can send
the client's bytes untouched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from modelyard_proxy.base.errors import bad_request, unsupported_parameter
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.params import REASONING_BUDGETS, reasoning_effort, refuse_unsupported, text_content
from modelyard_routing.specs import Provider


@dataclasses.dataclass(frozen=True, slots=True)
class Quirks:
    """One vendor's deviations from OpenAI Chat Completions; the defaults describe OpenAI itself."""

    #: Vendor name for error messages.
    name: str
    #: Parameters the vendor spells differently (``max_completion_tokens`` -> ``max_tokens``); the source wins.
    rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Harmless parameters the vendor rejects or misreads: dropped (never ones that change the answer).
    drop: frozenset[str] = frozenset()
    #: Parameters it cannot honour, mapped to their one harmless value (None: must be absent); else 400.
    refuse: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Message roles it spells differently (``developer`` -> ``system``).
    roles: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Message fields it rejects, dropped from every message but ``tool`` ones (where ``name`` is meaningful).
    drop_message_fields: frozenset[str] = frozenset()
    #: Send text-only content part lists as one string (vendors whose text models want a string).
    flatten_text_content: bool = False
    #: Remove ``null`` values from the body and from each message (vendors that forbid nulls).
    strip_nulls: bool = False
    #: String ``tool_choice`` values it spells differently (``required`` -> ``any``).
    tool_choice: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: When set, a named ``tool_choice`` becomes this value and ``tools`` shrinks to the named function.
    named_tool_choice: str | None = None
    #: Tool ``type`` values it accepts; None accepts whatever the client sends.
    tool_types: frozenset[str] | None = None
    #: Whether ``response_format`` may be ``json_schema`` (else 400: ``json_object`` is the fallback).
    json_schema: bool = True
    #: Efforts translated into vendor fields, replacing ``reasoning_effort`` (``none`` -> thinking off).
    reasoning_fields: Mapping[str, JSONObject] = dataclasses.field(default_factory=dict)
    #: Whether other efforts go through as ``reasoning_effort`` (else 400 unsupported_parameter).
    reasoning_effort: bool = True
    #: Whether the vendor has an ``/embeddings`` endpoint at all.
    embeddings: bool = True
    #: Embeddings parameters it spells differently (``dimensions`` -> ``output_dimension``).
    embeddings_rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Non-OpenAI ``finish_reason`` values and their OpenAI spelling.
    finish_reasons: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: ``finish_reason`` values that mean the generation failed: reported as an upstream error.
    failure_finish_reasons: frozenset[str] = frozenset()
    #: Whether a stream reports usage only when asked (``stream_options.include_usage``); the gateway then
    #: always asks, for its accounting, and strips the usage chunk from clients that did not.
    stream_usage_on_request: bool = True
    #: Whether a stream that ends without ``data: [DONE]`` counts as truncated (every vendor here sends it).
    requires_done: bool = True
    #: Derived: whether a chat request may need more than its ``model`` replaced. OpenAI's own dialect does
    #: not, and skipping a dozen checks that would find nothing is a per-request saving.
    rewrites_requests: bool = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        differs = any(getattr(self, name) != _default(name) for name in _CHAT_REQUEST_FIELDS)
        object.__setattr__(self, "rewrites_requests", differs)


#: The fields that shape a chat request (the rest are about answers and streams).
_CHAT_REQUEST_FIELDS = (
    "rename",
    "drop",
    "refuse",
    "roles",
    "drop_message_fields",
    "flatten_text_content",
    "strip_nulls",
    "tool_choice",
    "named_tool_choice",
    "tool_types",
    "json_schema",
    "reasoning_fields",
    "reasoning_effort",
)


def _default(name: str) -> object:
    """A Quirks field's default: OpenAI's own behaviour."""
    field = Quirks.__dataclass_fields__[name]
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


#: OpenAI-only spellings most vendors need respelled: the ``developer`` role and ``max_completion_tokens``.
_DEVELOPER_AS_SYSTEM = {"developer": "system"}
_MAX_TOKENS = {"max_completion_tokens": "max_tokens"}

QUIRKS: dict[Provider, Quirks] = {
    # The reference dialect: everything passes, including reasoning_effort and json_schema.
    Provider.OPENAI: Quirks(name="openai"),
    # vLLM, Ollama, LM Studio, llama.cpp: the server validates what its model supports, so nothing is
    # rewritten; all of them send [DONE].
    Provider.OPENAI_COMPATIBLE: Quirks(name="openai-compatible"),
    # Rejects unknown and null fields (extra_forbidden); tool_choice is auto|any|none; seed is random_seed;
    # no logprobs or logit_bias; finish_reason adds model_length (-> length) and error. Streams always end
    # with usage on the last chunk, so stream_options is dropped. reasoning_effort is native (Small 4,
    # Medium 3.5) and the upstream refuses it for models without adjustable reasoning.
    Provider.MISTRAL: Quirks(
        name="mistral",
        rename={**_MAX_TOKENS, "seed": "random_seed"},
        drop=frozenset(
            {"user", "store", "metadata", "service_tier", "stream_options", "prompt_cache_key", "safety_identifier"}
        ),
        refuse={"logprobs": False, "top_logprobs": None, "logit_bias": None},
        roles=_DEVELOPER_AS_SYSTEM,
        drop_message_fields=frozenset({"name"}),
        strip_nulls=True,
        tool_choice={"required": "any"},
        named_tool_choice="any",
        embeddings_rename={"dimensions": "output_dimension"},
        finish_reasons={"model_length": "length"},
        failure_finish_reasons=frozenset({"error"}),
        stream_usage_on_request=False,
    ),
    # Function tools only; json_schema unsupported (json_object is); no n or logit_bias; no seed, which is
    # best-effort at OpenAI too and so dropped. reasoning_effort is native (it maps minimal/medium/xhigh
    # itself) except "none", which is spelled thinking.type=disabled. No embeddings API.
    Provider.DEEPSEEK: Quirks(
        name="deepseek",
        rename=_MAX_TOKENS,
        drop=frozenset({"seed"}),
        refuse={"n": 1, "logit_bias": None},
        roles=_DEVELOPER_AS_SYSTEM,
        tool_types=frozenset({"function"}),
        json_schema=False,
        reasoning_fields={"none": {"thinking": {"type": "disabled"}}},
        embeddings=False,
    ),
    # DashScope compatible mode: text models want string content (LiteLLM flattens too); thinking is
    # enable_thinking plus a thinking_budget in tokens, not reasoning_effort.
    Provider.QWEN: Quirks(
        name="qwen",
        rename=_MAX_TOKENS,
        refuse={"logit_bias": None},
        roles=_DEVELOPER_AS_SYSTEM,
        flatten_text_content=True,
        reasoning_fields={
            "none": {"enable_thinking": False},
            **{
                effort: {"enable_thinking": True, "thinking_budget": budget}
                for effort, budget in REASONING_BUDGETS.items()
            },
        },
    ),
    # Documented 400s: logprobs, logit_bias, top_logprobs, messages[].name, n != 1. service_tier values
    # differ from OpenAI's (on_demand/flex/performance), so it is dropped. temperature 0 needs no rewrite:
    # Groq itself turns it into 1e-8. reasoning_effort is native. No embeddings API.
    Provider.GROQ: Quirks(
        name="groq",
        drop=frozenset({"service_tier"}),
        refuse={"logprobs": False, "top_logprobs": None, "logit_bias": None, "n": 1},
        roles=_DEVELOPER_AS_SYSTEM,
        drop_message_fields=frozenset({"name"}),
        embeddings=False,
    ),
    # OpenAI-compatible apart from the token limit's name; reasoning_effort is native for reasoning models.
    Provider.TOGETHER: Quirks(name="together", rename=_MAX_TOKENS, roles=_DEVELOPER_AS_SYSTEM),
}


class _Draft:
    """A JSON object edited copy-on-write, so an untouched body is never copied."""

    __slots__ = ("body", "changed")

    def __init__(self, body: JSONObject) -> None:
        self.body = body
        self.changed = False

    def set(self, key: str, value: Any) -> None:
        self._own()
        self.body[key] = value

    def pop(self, key: str) -> Any:
        if key not in self.body:
            return None
        self._own()
        return self.body.pop(key)

    def strip_nulls(self) -> None:
        for key in [key for key, value in self.body.items() if value is None]:
            self.pop(key)

    def _own(self) -> None:
        if not self.changed:
            self.body = dict(self.body)
            self.changed = True


def rewrite_chat(body: JSONObject, quirks: Quirks, model: str | None) -> JSONObject | None:
    """The chat body the vendor needs, or None when the client's body can go as it came.

    ``model`` replaces the body's model when given (None: the upstream ignores it). Raises a 400 for a
    parameter the vendor cannot honour.
    """
    draft = _Draft(body)
    if model is not None and body.get("model") != model:
        draft.set("model", model)
    if not quirks.rewrites_requests:
        return draft.body if draft.changed else None
    refuse_unsupported(body, quirks.name, quirks.refuse)
    _check_tools(body, quirks)
    _check_response_format(body, quirks)
    _apply_reasoning(draft, quirks)
    _apply_renames(draft, quirks.rename)
    for name in quirks.drop:
        draft.pop(name)
    _apply_tool_choice(draft, quirks)
    _apply_messages(draft, quirks)
    if quirks.strip_nulls:
        draft.strip_nulls()
    return draft.body if draft.changed else None


def rewrite_embeddings(body: JSONObject, quirks: Quirks, model: str | None) -> JSONObject | None:
    """The embeddings body the vendor needs, or None when the client's body can go as it came."""
    if not quirks.embeddings:
        raise bad_request(f"the {quirks.name} provider has no embeddings endpoint", param="model")
    draft = _Draft(body)
    if model is not None and body.get("model") != model:
        draft.set("model", model)
    _apply_renames(draft, quirks.embeddings_rename)
    for name in quirks.drop:
        draft.pop(name)
    if quirks.strip_nulls:
        draft.strip_nulls()
    return draft.body if draft.changed else None


def _check_tools(body: JSONObject, quirks: Quirks) -> None:
    tools = body.get("tools")
    if quirks.tool_types is None or not isinstance(tools, list):
        return
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str) or kind not in quirks.tool_types:
            kinds = ", ".join(sorted(quirks.tool_types))
            raise unsupported_parameter("tools", quirks.name, f"only {kinds} tools are supported")


def _check_response_format(body: JSONObject, quirks: Quirks) -> None:
    fmt = body.get("response_format")
    if not quirks.json_schema and isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        raise unsupported_parameter(
            "response_format", quirks.name, "json_schema is not available; use json_object and describe the schema"
        )


def _apply_reasoning(draft: _Draft, quirks: Quirks) -> None:
    if draft.body.get("reasoning_effort") is None:
        return
    if quirks.reasoning_fields:
        fields = quirks.reasoning_fields.get(reasoning_effort(draft.body) or "")
        if fields is not None:
            draft.pop("reasoning_effort")
            for key, value in fields.items():
                draft.set(key, value)
            return
    if not quirks.reasoning_effort:
        raise unsupported_parameter("reasoning_effort", quirks.name)


def _apply_renames(draft: _Draft, renames: Mapping[str, str]) -> None:
    for source, target in renames.items():
        if source in draft.body:
            value = draft.pop(source)
            if value is not None:  # a null source must not erase a target the client did set
                draft.set(target, value)


def _apply_tool_choice(draft: _Draft, quirks: Quirks) -> None:
    choice = draft.body.get("tool_choice")
    if isinstance(choice, str):
        if choice in quirks.tool_choice:
            draft.set("tool_choice", quirks.tool_choice[choice])
        return
    if not isinstance(choice, dict) or quirks.named_tool_choice is None:
        return
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if choice.get("type") != "function" or not isinstance(name, str):
        raise unsupported_parameter("tool_choice", quirks.name, "use none, auto, required or a named function")
    tools = draft.body.get("tools")
    named = [
        tool
        for tool in (tools if isinstance(tools, list) else ())
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and tool["function"].get("name") == name
    ]
    if not named:
        raise bad_request(f"tool_choice names the function {name!r}, which is not in tools", param="tool_choice")
    draft.set("tool_choice", quirks.named_tool_choice)
    draft.set("tools", named)


def _apply_messages(draft: _Draft, quirks: Quirks) -> None:
    messages = draft.body.get("messages")
    if not isinstance(messages, list) or not (
        quirks.roles or quirks.drop_message_fields or quirks.flatten_text_content or quirks.strip_nulls
    ):
        return
    fixed: list[Any] | None = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue  # malformed: the upstream's own validation names it
        new = _fix_message(message, index, quirks)
        if new is not None:
            if fixed is None:
                fixed = list(messages)
            fixed[index] = new
    if fixed is not None:
        draft.set("messages", fixed)


def _fix_message(message: JSONObject, index: int, quirks: Quirks) -> JSONObject | None:
    draft = _Draft(message)
    role = message.get("role")
    if isinstance(role, str) and role in quirks.roles:
        draft.set("role", quirks.roles[role])
    if role != "tool":
        for name in quirks.drop_message_fields:
            draft.pop(name)
    content = message.get("content")
    if quirks.flatten_text_content and isinstance(content, list) and _text_only(content):
        draft.set("content", text_content(content, f"messages[{index}]"))
    if quirks.strip_nulls:
        draft.strip_nulls()
    return draft.body if draft.changed else None


def _text_only(parts: list[Any]) -> bool:
    return all(isinstance(part, dict) and part.get("type") == "text" for part in parts)
