"""Anthropic answers → OpenAI's: the non-stream message, stop reasons, usage and error bodies.

The stream translator shares the stop-reason, usage and error mappings so both paths report the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.failures.classify import MalformedAnswer, classify
from modelyard_proxy.providers.base import CallContext, JSONObject, UpstreamStreamError
from modelyard_proxy.providers.chunks import usage_object
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import JSON_TOOL
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import (
    BLOCK_FIELDS,
    client_block,
    extra_content,
)

PROVIDER = "anthropic"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: The HTTP status Anthropic uses for each error type, to classify errors reported inside a stream.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's ``finish_reason``; an absent or unknown reason reads as a normal stop."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(native: Any) -> JSONObject:
    """OpenAI usage from Anthropic's, whose ``input_tokens`` exclude cache reads and writes."""
    if not isinstance(native, Mapping):
        native = {}
    read = _count(native, "cache_read_input_tokens")
    prompt = _count(native, "input_tokens") + read + _count(native, "cache_creation_input_tokens")
    details = native.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, Mapping) else None
    return usage_object(
        prompt,
        _count(native, "output_tokens"),
        cached=read,
        reasoning=thinking if isinstance(thinking, int) else None,
    )


def _count(native: Mapping[str, Any], name: str) -> int:
    value = native.get(name)
    return value if isinstance(value, int) else 0


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    """An Anthropic ``message`` as an OpenAI ``chat.completion`` body."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        message = None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise MalformedAnswer("not an Anthropic message")
    reply, json_answer = assistant_message(message["content"])
    finish = finish_reason(message.get("stop_reason"))
    if finish == "tool_calls" and json_answer and "tool_calls" not in reply:
        finish = "stop"  # the only call was the JSON answer
    completion = {
        "id": message.get("id") or ctx.completion_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": message.get("model") or ctx.upstream_model,
        "choices": [{"index": 0, "message": reply, "logprobs": None, "finish_reason": finish}],
        "usage": openai_usage(message.get("usage")),
    }
    return orjson.dumps(completion)


def assistant_message(content: list[Any]) -> tuple[JSONObject, bool]:
    """OpenAI's assistant message for Anthropic content blocks, and whether it holds a JSON-mode answer.

    Thinking text becomes ``reasoning_content`` and the signed blocks ride in ``extra_content`` (see
    ``thinking``); a call of the JSON-mode tool becomes the content (see ``json_answer``).
    """
    texts: list[str] = []
    thoughts: list[str] = []
    signed: list[JSONObject] = []
    answers: list[str] = []
    calls: list[JSONObject] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind in BLOCK_FIELDS:
            if kind == "thinking":
                thoughts.append(block.get("thinking") or "")
            if (kept := client_block(block)) is not None:
                signed.append(kept)
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == JSON_TOOL:
                answers.append(arguments)
                continue
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    parts = answers or texts
    text = "".join(parts) if parts or not calls else None
    reply: JSONObject = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    if thoughts:
        reply["reasoning_content"] = "".join(thoughts)
    if signed:
        reply["extra_content"] = extra_content(signed)
    return reply, bool(answers)


def error_fields(data: Any) -> tuple[str | None, str | None]:
    """``(type, message)`` from ``{"type": "error", "error": {"type", "message"}}``, None where absent."""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (message if isinstance(message, str) else None)


def http_error(status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
    """The gateway's error for a non-2xx answer, whose body may be Anthropic's JSON or a proxy's text."""
    try:
        kind, message = error_fields(orjson.loads(payload))
    except orjson.JSONDecodeError:
        kind, message = None, None
    if message is None:
        message = payload.decode("utf-8", "replace")
    return classify(status, message, ctx.credential, provider=PROVIDER, upstream_type=kind, headers=headers)


def stream_error(data: Any, ctx: CallContext) -> UpstreamStreamError:
    """An in-band ``error`` event, classified as if it had come with the status Anthropic uses for it."""
    kind, message = error_fields(data)
    status = ERROR_STATUS.get(kind or "", 500)
    error = classify(status, message or kind or "stream error", ctx.credential, provider=PROVIDER, upstream_type=kind)
    return UpstreamStreamError(error.status, error.message, type=error.type, code=error.code, param=error.param)
