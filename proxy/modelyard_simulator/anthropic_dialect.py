"""Anthropic Messages wire format: ``/v1/messages``, ``/v1/messages/count_tokens``, ``/v1/models``.

Streams follow the documented event order: message_start, per block start/delta/stop
(thinking, text, tool_use), a ping, message_delta with cumulative usage, message_stop.

Thinking follows the API's rules: blocks are signed (a ``signature_delta`` just before a streamed block
stops), Anthropic's documented test string turns them into ``redacted_thinking``, replayed blocks must be
unmodified, and with thinking enabled the final assistant turn that called tools must start with one.
A ``tool_choice`` of ``any`` or a named tool always gets a tool call, as the real model's does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web

from modelyard_simulator.answer import Answer, Prompt, compose, force_call, new_id, sign
from modelyard_simulator.behaviour import Behaviour
from modelyard_simulator.engine import (
    SCENARIOS,
    Dialect,
    Exchange,
    JsonObject,
    ResponseMeta,
    bearer,
    mask_key,
    no_target,
    serve_exchange,
)
from modelyard_simulator.errors import Failure, error_kind
from modelyard_simulator.streaming import SseEvent
from modelyard_simulator.tokens import count_prompt_tokens, tokenize

STOP_REASONS = {
    "end": "end_turn",
    "stop_sequence": "stop_sequence",
    "length": "max_tokens",
    "tool": "tool_use",
    "refusal": "refusal",
}
MIN_THINKING_BUDGET = 1024
#: The string Anthropic documents for testing redacted thinking: a prompt holding it gets redacted blocks.
REDACTED_TRIGGER = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253"
_REDACTED_MARK = b"sim-redacted:"
THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
FORCED_CHOICES = frozenset({"any", "tool"})
# (name, limit, remaining): token counts are rounded to the thousand, as the real API does.
_RATE_LIMITS = (
    ("requests", 4000, 3999),
    ("tokens", 2_000_000, 1_999_000),
    ("input-tokens", 1_600_000, 1_599_000),
    ("output-tokens", 400_000, 399_000),
)


class AnthropicDialect(Dialect):
    """Anthropic conventions: ``x-api-key``, ``request-id`` and ``anthropic-ratelimit-*`` headers."""

    invalid_json_message = "There was an error parsing the body"
    stream_failure_status = 529
    stream_error_event = "error"

    def new_request_id(self) -> str:
        return new_id("req_011C", 20)

    def presented_key(self, request: web.Request) -> str | None:
        return request.headers.get("x-api-key") or bearer(request)

    def auth_failure(self, presented: str | None) -> Failure:
        if not presented:
            return Failure(401, "x-api-key header is required")
        return Failure(401, f"invalid x-api-key ({mask_key(presented)})")

    def error_payload(self, failure: Failure, meta: ResponseMeta) -> JsonObject:
        kind = error_kind(failure.status)
        error = {"type": kind.anthropic_type, "message": failure.message or kind.anthropic_message}
        return {"type": "error", "error": error, "request_id": meta.request_id}

    def headers(self, meta: ResponseMeta) -> dict[str, str]:
        headers = super().headers(meta)
        headers["request-id"] = meta.request_id
        limited = meta.status == 429
        reset = datetime.now(UTC) + timedelta(seconds=meta.retry_after or 1)
        reset_text = reset.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        for name, limit, remaining in _RATE_LIMITS:
            prefix = f"anthropic-ratelimit-{name}"
            headers[f"{prefix}-limit"] = str(limit)
            headers[f"{prefix}-remaining"] = "0" if limited else str(remaining)
            headers[f"{prefix}-reset"] = reset_text
        return headers


ANTHROPIC = AnthropicDialect()


def _block_text(block: object) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict):
        if block.get("type") == "text" and isinstance(block.get("text"), str):
            return str(block["text"])
        if block.get("type") == "tool_result":
            content = block.get("content")
            return content if isinstance(content, str) else "\n".join(_block_text(b) for b in content or [])
    return ""


def _turn(message: JsonObject) -> tuple[str, bool]:
    """Text of a user turn, and whether it consists of tool results only."""
    content = message.get("content")
    if isinstance(content, str):
        return content, False
    blocks = [b for b in content or [] if isinstance(b, dict)]
    texts = [_block_text(b) for b in blocks if b.get("type") == "text"]
    if texts:
        return "\n".join(texts), False
    results = [_block_text(b) for b in blocks if b.get("type") == "tool_result"]
    return "\n".join(results), bool(results)


def _user_messages(body: JsonObject) -> list[JsonObject]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]


def messages_target(body: JsonObject, _request: web.Request) -> tuple[str, str]:
    users = _user_messages(body)
    text = _turn(users[-1])[0] if users else ""
    model = body.get("model")
    return (model if isinstance(model, str) else ""), text


def _validate(body: JsonObject) -> JsonObject:
    """The checks the real API applies to a request's body before generating, with its wording."""
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            raise Failure(400, f"{name}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        raise Failure(400, "max_tokens: Input should be a valid integer greater than or equal to 1")
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise Failure(400, "messages: at least one message is required")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            raise Failure(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= body["max_tokens"]:
            raise Failure(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in FORCED_CHOICES:
            raise Failure(400, "Thinking may not be enabled when tool_choice forces tool use.")
        _check_final_turn_thinks(body["messages"])
    _check_replayed_thinking(body["messages"])
    return body


def _assistant_blocks(messages: list[object]) -> list[tuple[int, list[JsonObject]]]:
    """``(position, content blocks)`` of each assistant turn given as a list of blocks."""
    return [
        (i, [b for b in m["content"] if isinstance(b, dict)])
        for i, m in enumerate(messages)
        if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), list)
    ]


def _check_final_turn_thinks(messages: list[object]) -> None:
    """With thinking on, the last assistant turn that called tools must start with its thinking."""
    turns = _assistant_blocks(messages)
    if not turns:
        return
    i, blocks = turns[-1]
    if not any(b.get("type") == "tool_use" for b in blocks) or blocks[0].get("type") in THINKING_BLOCKS:
        return
    raise Failure(
        400,
        f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found"
        f" `{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with"
        " a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend"
        " you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`."
        " Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking",
    )


def _check_replayed_thinking(messages: list[object]) -> None:
    """Thinking blocks sent back must be exactly as this simulator produced them."""
    for i, blocks in _assistant_blocks(messages):
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "thinking" and block.get("signature") != sign(str(block.get("thinking"))):
                raise Failure(400, f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
            if kind == "redacted_thinking" and not _redacted_valid(block.get("data")):
                raise Failure(400, f"messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block")


def _redacted_data(thinking: str) -> str:
    """Opaque data standing for redacted thinking; it carries a digest so a replay can be verified."""
    raw = thinking.encode()
    return base64.b64encode(_REDACTED_MARK + raw + hashlib.sha256(raw).digest()).decode()


def _redacted_valid(data: object) -> bool:
    if not isinstance(data, str):
        return False
    try:
        decoded = base64.b64decode(data, validate=True)
    except binascii.Error:
        return False
    raw, digest = decoded[len(_REDACTED_MARK) : -32], decoded[-32:]
    return decoded.startswith(_REDACTED_MARK) and hashlib.sha256(raw).digest() == digest


def _forced_tool(body: JsonObject, behaviour: Behaviour, user_text: str) -> Behaviour:
    """A ``tool_choice`` of ``any`` or a named tool gets a call, its input an instance of the tool's schema."""
    choice = body.get("tool_choice")
    if not isinstance(choice, dict) or choice.get("type") not in FORCED_CHOICES:
        return behaviour
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    tool = next((t for t in tools if choice["type"] == "any" or t.get("name") == choice.get("name")), None)
    if tool is None:
        return behaviour
    return force_call(behaviour, str(tool.get("name")), tool.get("input_schema"), user_text)


def messages_prompt(body: JsonObject) -> Prompt:
    users = _user_messages(body)
    text, after_tool = _turn(users[-1]) if users else ("", False)
    last = body["messages"][-1]
    if isinstance(last, dict) and last.get("role") == "assistant":
        after_tool = False
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    names = tuple(str(t["name"]) for t in tools if "name" in t)
    output_format = (body.get("output_config") or {}).get("format") or {}
    schema = output_format.get("schema") if output_format.get("type") == "json_schema" else None
    thinking = body.get("thinking")
    stops = body.get("stop_sequences") or []
    return Prompt(
        model=str(body["model"]),
        user_text=text,
        prompt_tokens=count_prompt_tokens([body.get("system"), body["messages"], tools]),
        tools=() if isinstance(choice, dict) and choice.get("type") == "none" else names,
        after_tool_result=after_tool,
        json_mode=schema is not None,
        json_schema=schema if isinstance(schema, dict) else None,
        stop=tuple(s for s in stops if isinstance(s, str)),
        max_tokens=int(body["max_tokens"]),
        thinking=isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"),
    )


def _usage(answer: Answer) -> JsonObject:
    return {
        "input_tokens": answer.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": answer.output_tokens + answer.thinking_tokens,
        "service_tier": "standard",
    }


def _blocks(answer: Answer, redacted: bool = False) -> list[JsonObject]:
    blocks: list[JsonObject] = []
    if answer.thinking is not None and redacted:
        blocks.append({"type": "redacted_thinking", "data": _redacted_data(answer.thinking)})
    elif answer.thinking is not None:
        blocks.append({"type": "thinking", "thinking": answer.thinking, "signature": answer.thinking_signature})
    if answer.text is not None and (answer.text or answer.tool is None):
        blocks.append({"type": "text", "text": answer.text})
    if answer.tool is not None:
        tool_id = f"toolu_01{answer.tool.id_suffix}"
        blocks.append({"type": "tool_use", "id": tool_id, "name": answer.tool.name, "input": answer.tool.input})
    return blocks


def message(answer: Answer, model: str, redacted: bool = False) -> JsonObject:
    return {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(answer, redacted),
        "stop_reason": STOP_REASONS[answer.finish],
        "stop_sequence": answer.stop_sequence,
        "usage": _usage(answer),
    }


def _event(name: str, payload: JsonObject, *, content: bool = False) -> SseEvent:
    return SseEvent(orjson.dumps({"type": name, **payload}), event=name, content=content)


def _block_events(index: int, block: JsonObject, answer: Answer) -> list[SseEvent]:
    kind = block["type"]
    start: JsonObject
    deltas: list[JsonObject]
    if kind == "thinking":
        start = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [{"type": "thinking_delta", "thinking": t} for t in tokenize(block["thinking"])]
    elif kind == "redacted_thinking":
        start, deltas = block, []  # redacted thinking arrives whole in its start event
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": t} for t in answer.text_tokens]
    else:
        start = {**block, "input": {}}
        arguments = answer.tool.arguments if answer.tool else "{}"
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *tokenize(arguments)]]
    events = [_event("content_block_start", {"index": index, "content_block": start})]
    if index == 0:
        events.append(_event("ping", {}))
    events.extend(_event("content_block_delta", {"index": index, "delta": d}, content=True) for d in deltas)
    if kind == "thinking":
        signature = {"type": "signature_delta", "signature": block["signature"]}
        events.append(_event("content_block_delta", {"index": index, "delta": signature}))
    events.append(_event("content_block_stop", {"index": index}))
    return events


def message_events(answer: Answer, model: str, redacted: bool = False) -> list[SseEvent]:
    """The full event sequence of a streamed message."""
    start = {**message(answer, model), "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = {**_usage(answer), "output_tokens": 1}
    events = [_event("message_start", {"message": start})]
    for index, block in enumerate(_blocks(answer, redacted)):
        events.extend(_block_events(index, block, answer))
    delta = {"stop_reason": STOP_REASONS[answer.finish], "stop_sequence": answer.stop_sequence}
    events.append(_event("message_delta", {"delta": delta, "usage": _usage(answer)}))
    events.append(_event("message_stop", {}))
    return events


async def respond_messages(ex: Exchange) -> web.StreamResponse:
    if "anthropic-version" not in ex.request.headers:
        raise Failure(400, "anthropic-version: header is required")
    return await answer_messages(ex, ex.body)


async def answer_messages(ex: Exchange, body: JsonObject) -> web.StreamResponse:
    """The message for a Messages body (``body["stream"]`` asks for its events), however the request framed it."""
    body = _validate(body)
    prompt = messages_prompt(body)
    answer = compose(prompt, _forced_tool(body, ex.behaviour, prompt.user_text))
    model = str(body["model"])
    redacted = REDACTED_TRIGGER in prompt.user_text
    if body.get("stream") is True:
        return await ex.send_events(message_events(answer, model, redacted))
    return await ex.send_json(message(answer, model, redacted))


async def respond_count_tokens(ex: Exchange) -> web.StreamResponse:
    if "anthropic-version" not in ex.request.headers:
        raise Failure(400, "anthropic-version: header is required")
    body = ex.body
    tokens = count_prompt_tokens([body.get("system"), body.get("messages"), body.get("tools")])
    return await ex.send_json({"input_tokens": tokens})


async def respond_models(ex: Exchange) -> web.StreamResponse:
    ids = ex.request.app[SCENARIOS].model_ids()
    data = [{"type": "model", "id": i, "display_name": i, "created_at": "2025-01-01T00:00:00Z"} for i in ids]
    return await ex.send_json({"data": data, "has_more": False, "first_id": ids[0], "last_id": ids[-1]})


async def messages(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, ANTHROPIC, messages_target, respond_messages)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, ANTHROPIC, messages_target, respond_count_tokens)


async def models(request: web.Request) -> web.StreamResponse:
    return await serve_exchange(request, ANTHROPIC, no_target, respond_models)
