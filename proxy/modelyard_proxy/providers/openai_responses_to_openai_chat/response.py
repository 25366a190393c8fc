"""A ``chat.completion`` as a Responses ``response`` object, and the pieces its stream shares.

One choice becomes the output items in the order a Responses model writes them: reasoning, the message (its
text, or its refusal), then one ``function_call`` item per tool call. A chat answer cut by ``length`` or a
content filter is an ``incomplete`` response with the matching ``incomplete_details.reason``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.openai_responses_to_openai_chat.carry import Carried

#: Chat finish reasons that leave a response incomplete, and the reason Responses gives.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


class ItemIds:
    """Output item ids from the response's own: ``resp_<id>`` gives ``msg_<id>``, then ``msg_<id>_2``, ...

    The SDKs tell items apart by id, so a second item of a kind (thinking between tool calls) needs its own.
    """

    def __init__(self, ctx: CallContext) -> None:
        self.suffix = ctx.completion_id.removeprefix("resp_")
        self._counts: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        number = self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}_{self.suffix}" if number == 1 else f"{prefix}_{self.suffix}_{number}"


def envelope(ctx: CallContext, model: str | None, status: str) -> JSONObject:
    """The response object without output and usage: what ``response.created`` carries."""
    return {
        "id": ctx.completion_id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": model or ctx.upstream_model,
        "output": [],
        "parallel_tool_calls": ctx.parallel_tool_calls,
        "tool_choice": "auto",
        "tools": [],
        "store": False,
        "usage": None,
    }


def finished(response: JSONObject, finish_reason: Any, output: list[JSONObject], usage: Any) -> JSONObject:
    """``response`` completed (or incomplete) with its ``output`` and Chat ``usage`` converted."""
    reason = INCOMPLETE.get(finish_reason) if isinstance(finish_reason, str) else None
    return {
        **response,
        "status": "completed" if reason is None else "incomplete",
        "incomplete_details": None if reason is None else {"reason": reason},
        "output": output,
        "usage": responses_usage(usage),
    }


def responses_usage(usage: Any) -> JSONObject | None:
    """A Chat ``usage`` object in the Responses shape (details default to zero, as OpenAI sends them)."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    written = _detail(usage, "prompt_tokens_details", "cache_write_tokens")
    reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _detail(usage: JSONObject, block: str, key: str) -> int:
    details = usage.get(block)
    value = details.get(key) if isinstance(details, dict) else None
    return value if isinstance(value, int) else 0


def reasoning_item(item_id: str, text: str, carried: str | None = None) -> JSONObject:
    """The model's reasoning text (Anthropic thinking, Gemini thoughts) as a reasoning item, with the provider
    state for the next turn when there is some (see :mod:`.carry`)."""
    content = [{"type": "reasoning_text", "text": text}] if text else []
    item: JSONObject = {"type": "reasoning", "id": item_id, "summary": [], "content": content}
    if carried is not None:
        item["encrypted_content"] = carried
    return item


def message_item(item_id: str, parts: list[JSONObject], status: str = "completed") -> JSONObject:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": parts}


def text_part(text: str) -> JSONObject:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(text: str) -> JSONObject:
    return {"type": "refusal", "refusal": text}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> JSONObject:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def answer(chat: JSONObject, ctx: CallContext) -> bytes:
    """A ``chat.completion`` body as the Responses answer."""
    choices = chat.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        msg = "a chat completion without choices"
        raise MalformedAnswer(msg)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        msg = "a chat completion choice without a message"
        raise MalformedAnswer(msg)
    ids = ItemIds(ctx)
    calls = message.get("tool_calls")
    calls = calls if isinstance(calls, list) else []
    carried = Carried(extra if isinstance(extra := message.get("extra_content"), dict) else {})
    for call in calls:
        carried.add_call(call["id"], call.get("extra_content"))
    output: list[JSONObject] = []
    thoughts = message.get("reasoning_content")
    thoughts = thoughts if isinstance(thoughts, str) else ""
    if thoughts or carried:
        output.append(reasoning_item(ids.next("rs"), thoughts, carried.encode() if carried else None))
    parts = []
    if isinstance(content := message.get("content"), str) and content:
        parts.append(text_part(content))
    if isinstance(refusal := message.get("refusal"), str) and refusal:
        parts.append(refusal_part(refusal))
    if parts:
        output.append(message_item(ids.next("msg"), parts))
    for call in calls:
        function = call["function"]
        output.append(call_item(ids.next("fc"), call["id"], function["name"], function.get("arguments") or ""))
    response = envelope(ctx, chat.get("model"), "completed")
    return orjson.dumps(finished(response, choice.get("finish_reason"), output, chat.get("usage")))
