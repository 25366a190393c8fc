"""A ``chat.completion`` as an Anthropic ``message``: content blocks, stop reason and usage.

Blocks come in Anthropic's order: thinking (from ``reasoning_content``), text, then tool calls. A thinking
block carries an empty ``signature``: only Anthropic signs thinking, and the gateway drops thinking blocks
sent back to any other provider (see ``request``), so nothing checks it. A tool call whose arguments are not
a JSON object (a model cut off mid-call) gets ``{}`` as its input, as Anthropic's own input must be an object.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
#: Where OpenAI-compatible servers put reasoning text (DeepSeek and vLLM ``reasoning_content``, others
#: ``reasoning``).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def message(chat: JSONObject, ctx: CallContext) -> JSONObject:
    """The Messages answer for a whole ``chat.completion``."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    reply = choice.get("message") if choice is not None else None
    if not isinstance(reply, dict):
        raise MalformedAnswer("the chat completion has no message")
    content: list[JSONObject] = []
    if thinking := reasoning_text(reply):
        content.append(thinking_block(thinking))
    text = reply.get("content") or reply.get("refusal")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    calls = reply.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            content.append(tool_use_block(call.get("id"), function.get("name"), tool_input(function.get("arguments"))))
    stop_reason, stop_sequence = stop_details(choice, bool(reply.get("refusal")))
    return {
        "id": ctx.completion_id,
        "type": "message",
        "role": "assistant",
        "model": chat.get("model") or ctx.upstream_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": messages_usage(chat.get("usage")),
    }


def reasoning_text(delta: JSONObject) -> str:
    return next((text for name in REASONING_FIELDS if isinstance(text := delta.get(name), str) and text), "")


def thinking_block(thinking: str) -> JSONObject:
    return {"type": "thinking", "thinking": thinking, "signature": ""}


def tool_use_block(call_id: Any, name: Any, arguments: JSONObject) -> JSONObject:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def tool_input(arguments: Any) -> JSONObject:
    """A call's JSON arguments as an object; ``{}`` when empty or not an object."""
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        parsed = {}
    return parsed if isinstance(parsed, dict) else {}


def stop_details(choice: Any, refused: bool = False) -> tuple[str, str | None]:
    """``(stop_reason, stop_sequence)``. Chat says which stop sequence matched only where a server adds it
    (vLLM's ``stop_reason`` string); otherwise a stop is ``end_turn``."""
    if refused:
        return "refusal", None
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    matched = choice.get("stop_reason") if isinstance(choice, dict) else None
    if finish == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn", None


def messages_usage(usage: Any) -> JSONObject:
    """Anthropic's usage, whose ``input_tokens`` exclude cache reads (OpenAI's ``prompt_tokens`` include them)."""
    if not isinstance(usage, dict):
        usage = {}
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    cached = cached if isinstance(cached, int) else 0
    prompt = usage.get("prompt_tokens")
    output = usage.get("completion_tokens")
    return {
        "input_tokens": max(0, (prompt if isinstance(prompt, int) else 0) - cached),
        "output_tokens": output if isinstance(output, int) else 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }
