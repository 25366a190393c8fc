"""Gemini ``GenerateContentResponse`` objects read as OpenAI answers, for whole and streamed replies alike.

Gemini gives function calls no id, so ids are synthesized as ``call_<responseId>_<n>``: unique per
conversation (a response id is), stable for one answer (a stream split anywhere yields the same ids), and
free of characters other providers refuse in ids. The follow-up request maps them back to the function
name through the assistant message that carries both.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.chunks import usage_object

_CONTENT_FILTER = (
    "SAFETY BLOCKLIST PROHIBITED_CONTENT SPII RECITATION LANGUAGE OTHER IMAGE_SAFETY IMAGE_PROHIBITED_CONTENT "
    "IMAGE_RECITATION IMAGE_OTHER NO_IMAGE MODEL_ARMOR JAILBREAK"
)
#: Gemini finishReason -> OpenAI finish_reason; reasons not listed (malformed or unexpected tool calls,
#: FINISH_REASON_UNSPECIFIED, ...) end the answer normally as ``stop``.
FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **dict.fromkeys(_CONTENT_FILTER.split(), "content_filter"),
}
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


class CallIds:
    """Numbers the function calls of one answer, across its candidates and stream chunks."""

    __slots__ = ("_prefix", "count")

    def __init__(self, response_id: str) -> None:
        self._prefix = f"call_{_UNSAFE_ID.sub('', response_id)}_"
        self.count = 0

    def next(self) -> str:
        call_id = f"{self._prefix}{self.count}"
        self.count += 1
        return call_id


def load_object(payload: bytes) -> JSONObject:
    """An upstream success body as a JSON object (else :class:`MalformedAnswer`)."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise MalformedAnswer("not a JSON object")
    return parsed


def read_parts(
    content: Any, ids: CallIds, max_calls: int | None = None
) -> tuple[str | None, str | None, list[JSONObject]]:
    """``(text, thoughts, tool_calls)`` of a candidate's parts; text is None when there was no text part.

    Function calls past ``max_calls`` are dropped (``parallel_tool_calls: false``); a dropped call takes
    no id, so the ids of one answer stay consecutive.
    """
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[JSONObject] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(call := part.get("functionCall"), dict):
            if max_calls is None or len(calls) < max_calls:
                calls.append(_tool_call(call, part.get("thoughtSignature"), ids))
        elif isinstance(text := part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(text)
    return ("".join(texts) if texts else None), ("".join(thoughts) if thoughts else None), calls


def _tool_call(call: JSONObject, signature: Any, ids: CallIds) -> JSONObject:
    tool_call: JSONObject = {
        "id": ids.next(),
        "type": "function",
        "function": {"name": str(call.get("name", "")), "arguments": orjson.dumps(call.get("args") or {}).decode()},
    }
    if isinstance(signature, str) and signature:
        tool_call["extra_content"] = {"google": {"thought_signature": signature}}
    return tool_call


def finish_reason(reason: Any, called_tools: bool) -> str:
    """OpenAI's finish_reason; Gemini says STOP after function calls, OpenAI says tool_calls."""
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and reason == "STOP" and called_tools else mapped


def blocked(response: JSONObject) -> bool:
    """Whether Gemini refused the prompt itself (no candidates, ``promptFeedback.blockReason`` set).

    Reported as an empty answer finished by ``content_filter`` rather than an error, so streamed and whole
    answers behave alike and a client sees the same thing as when a reply is filtered mid-way.
    """
    feedback = response.get("promptFeedback")
    return isinstance(feedback, dict) and bool(feedback.get("blockReason"))


def usage(metadata: Any) -> JSONObject | None:
    """OpenAI usage from ``usageMetadata``: thinking counts as completion tokens, as OpenAI bills reasoning."""
    if not isinstance(metadata, dict):
        return None
    thoughts = int(metadata.get("thoughtsTokenCount", 0))
    return usage_object(
        int(metadata.get("promptTokenCount", 0)),
        int(metadata.get("candidatesTokenCount", 0)) + thoughts,
        cached=int(metadata.get("cachedContentTokenCount", 0)),
        reasoning=thoughts,
    )


def chat_completion(payload: bytes, ctx: CallContext) -> bytes:
    """A whole ``generateContent`` answer as an OpenAI ``chat.completion``."""
    response = load_object(payload)
    if not isinstance(response.get("candidates"), list) and not blocked(response):
        raise MalformedAnswer("neither candidates nor a blocked prompt")
    response_id = str(response.get("responseId") or ctx.completion_id)
    ids = CallIds(response_id)
    candidates = response.get("candidates")
    max_calls = None if ctx.parallel_tool_calls else 1
    choices = [_choice(k, c, ids, max_calls) for k, c in enumerate(candidates if isinstance(candidates, list) else ())]
    if not choices:
        empty = {"role": "assistant", "content": None, "refusal": None}
        choices = [_message_choice(0, empty, None, "content_filter" if blocked(response) else "stop")]
    return orjson.dumps(
        {
            "id": response_id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": response.get("modelVersion") or ctx.upstream_model,
            "choices": choices,
            "usage": usage(response.get("usageMetadata")) or usage_object(0, 0),
        }
    )


def _choice(position: int, candidate: Any, ids: CallIds, max_calls: int | None) -> JSONObject:
    candidate = candidate if isinstance(candidate, dict) else {}
    text, thoughts, calls = read_parts(candidate.get("content"), ids, max_calls)
    message: JSONObject = {"role": "assistant", "content": text, "refusal": None}
    if thoughts is not None:
        message["reasoning_content"] = thoughts
    if calls:
        message["tool_calls"] = calls
    return _message_choice(
        int(candidate.get("index", position)),
        message,
        logprobs(candidate.get("logprobsResult")),
        finish_reason(candidate.get("finishReason"), bool(calls)),
    )


def _message_choice(index: int, message: JSONObject, probs: JSONObject | None, reason: str) -> JSONObject:
    return {"index": index, "message": message, "logprobs": probs, "finish_reason": reason}


def logprobs(result: Any) -> JSONObject | None:
    """``logprobsResult`` as OpenAI's ``choice.logprobs`` (chosen tokens, each with its top alternatives)."""
    if not isinstance(result, dict):
        return None
    chosen = _list(result.get("chosenCandidates"))
    top = _list(result.get("topCandidates"))
    content = []
    for k, token in enumerate(chosen):
        step = top[k] if k < len(top) and isinstance(top[k], dict) else {}
        alternatives = [_token(t) for t in _list(step.get("candidates"))]
        content.append({**_token(token), "top_logprobs": alternatives})
    return {"content": content, "refusal": None}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _token(candidate: Any) -> JSONObject:
    """One ``LogprobsResultCandidate``; a missing log probability reads as 0 (proto3 omits zero values)."""
    candidate = candidate if isinstance(candidate, dict) else {}
    token = str(candidate.get("token", ""))
    value = candidate.get("logProbability")
    logprob = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}
