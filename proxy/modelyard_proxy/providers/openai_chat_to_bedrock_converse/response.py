"""Converse answers → OpenAI's: the whole message, stop reasons and usage (shared with the stream translator)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.chunks import usage_object
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import extra_content
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.reasoning import NAMESPACE, client_reasoning

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's ``finish_reason``; an absent or unknown reason reads as a normal stop."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def openai_usage(native: Any) -> JSONObject:
    """OpenAI usage from Converse's, whose ``inputTokens`` exclude cache reads and writes (as Anthropic's do)."""
    if not isinstance(native, Mapping):
        native = {}
    read = _count(native, "cacheReadInputTokens")
    prompt = _count(native, "inputTokens") + read + _count(native, "cacheWriteInputTokens")
    return usage_object(prompt, _count(native, "outputTokens"), cached=read)


def _count(native: Mapping[str, Any], name: str) -> int:
    value = native.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    """A Converse answer as an OpenAI ``chat.completion`` body."""
    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        answer = None
    output = answer.get("output") if isinstance(answer, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(answer, dict) or not isinstance(content, list):
        raise MalformedAnswer("not a Converse answer")
    reply = assistant_message(content, max_calls=None if ctx.parallel_tool_calls else 1)
    completion = {
        "id": ctx.completion_id,
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.upstream_model,
        "choices": [
            {"index": 0, "message": reply, "logprobs": None, "finish_reason": finish_reason(answer.get("stopReason"))}
        ],
        "usage": openai_usage(answer.get("usage")),
    }
    return orjson.dumps(completion)


def tool_call(tool_use: JSONObject) -> JSONObject:
    """A ``toolUse`` block as an OpenAI tool call (arguments are JSON text)."""
    arguments = orjson.dumps(tool_use.get("input") or {}).decode()
    function = {"name": tool_use.get("name"), "arguments": arguments}
    return {"id": tool_use.get("toolUseId"), "type": "function", "function": function}


def assistant_message(content: list[Any], max_calls: int | None) -> JSONObject:
    """OpenAI's assistant message for Converse content blocks; calls past ``max_calls`` are dropped.

    Reasoning text becomes ``reasoning_content`` and signed blocks ride in ``extra_content`` (see ``reasoning``).
    """
    texts: list[str] = []
    thoughts: list[str] = []
    signed: list[JSONObject] = []
    calls: list[JSONObject] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(text := block.get("text"), str):
            texts.append(text)
        elif "reasoningContent" in block:
            thought, kept = client_reasoning(block["reasoningContent"])
            if thought:
                thoughts.append(thought)
            if kept is not None:
                signed.append(kept)
        elif isinstance(use := block.get("toolUse"), dict) and (max_calls is None or len(calls) < max_calls):
            calls.append(tool_call(use))
    reply: JSONObject = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    reply["refusal"] = None
    if calls:
        reply["tool_calls"] = calls
    if thoughts:
        reply["reasoning_content"] = "".join(thoughts)
    if signed:
        reply["extra_content"] = extra_content(signed, NAMESPACE)
    return reply
