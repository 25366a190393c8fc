"""OpenAI Responses wire format: ``POST /v1/responses`` (Azure serves it too, see :mod:`azure_dialect`).

Answers come from the same :func:`compose` as chat, so behaviours, tool calls and structured output agree.
A whole answer is the Response object; a stream is typed events (``event: <type>`` and a ``data`` that
repeats ``type`` with a ``sequence_number``): ``response.created``, ``response.in_progress``, per output
item ``output_item.added``, its parts and deltas, ``output_item.done``, then ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut the text). A scripted mid-stream error is sent as
``response.failed`` carrying an error object, numbered where it takes the stream's place.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from modelyard_simulator.answer import Answer, compose, new_id
from modelyard_simulator.engine import Exchange, JsonObject, serve_exchange
from modelyard_simulator.errors import error_kind
from modelyard_simulator.openai_dialect import OPENAI
from modelyard_simulator.response_store import RESPONSES
from modelyard_simulator.responses_request import ResponsesRequest, invalid, read_request, responses_target
from modelyard_simulator.streaming import FailureEvent, SseEvent
from modelyard_simulator.tokens import tokenize

REFUSAL_TEXT = "I'm sorry, but I can't help with that."
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def _carried_tokens(ex: Exchange) -> int:
    """Tokens of the stored conversation a ``previous_response_id`` continues; OpenAI's 400 when unknown."""
    previous = ex.body.get("previous_response_id")
    if not isinstance(previous, str):
        return 0
    tokens = ex.request.app[RESPONSES].conversation_tokens(previous)
    if tokens is None:
        message = f"Previous response with id '{previous}' not found."
        raise invalid("previous_response_id", message, "previous_response_not_found")
    return tokens


def _usage(answer: Answer, cached: int) -> JsonObject:
    output = answer.output_tokens + answer.thinking_tokens
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": answer.thinking_tokens},
        "total_tokens": answer.prompt_tokens + output,
    }


@dataclass(slots=True)
class _Stream:
    """Events under construction, numbered in the order they are sent."""

    events: list[SseEvent] = field(default_factory=list)

    def add(self, kind: str, payload: JsonObject, *, content: bool = False) -> None:
        data = {"type": kind, "sequence_number": len(self.events), **payload}
        self.events.append(SseEvent(orjson.dumps(data), event=kind, content=content))


@dataclass(frozen=True, slots=True)
class Rendering:
    """One answer written out as OpenAI does: the Response object, or the event stream that builds it."""

    req: ResponsesRequest
    body: JsonObject
    answer: Answer
    cached_tokens: int
    response_id: str = field(default_factory=lambda: new_id("resp_", 48))
    created_at: int = field(default_factory=lambda: int(time.time()))
    message_id: str = field(default_factory=lambda: new_id("msg_", 48))
    reasoning_id: str = field(default_factory=lambda: new_id("rs_", 48))
    call_item_id: str = field(default_factory=lambda: new_id("fc_", 48))

    @property
    def incomplete(self) -> bool:
        return self.answer.finish == "length"

    def output(self) -> list[JsonObject]:
        """The finished output items: reasoning, then the message, then the function call."""
        answer = self.answer
        items: list[JsonObject] = []
        if answer.thinking is not None:
            items.append(self._reasoning(answer.thinking))
        if answer.finish == "refusal":
            items.append(self._message([{"type": "refusal", "refusal": REFUSAL_TEXT}]))
        elif answer.text or answer.tool is None:
            items.append(self._message([_output_text(answer.text or "")]))
        if answer.tool is not None:
            items.append(
                {
                    "id": self.call_item_id,
                    "type": "function_call",
                    "status": "completed",
                    "arguments": answer.tool.arguments,
                    "call_id": f"call_{answer.tool.id_suffix}",
                    "name": answer.tool.name,
                }
            )
        return items

    def _reasoning(self, thinking: str) -> JsonObject:
        summarised = (self.body.get("reasoning") or {}).get("summary") is not None
        item: JsonObject = {
            "id": self.reasoning_id,
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": thinking}] if summarised else [],
        }
        if ENCRYPTED_REASONING in (self.body.get("include") or []):
            item["encrypted_content"] = base64.b64encode(thinking.encode()).decode()
        return item

    def _message(self, content: list[JsonObject]) -> JsonObject:
        status = "incomplete" if self.incomplete else "completed"
        return {"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    def response(self, status: str, output: list[JsonObject], *, final: bool) -> JsonObject:
        """The Response object in ``status``; usage and completion time only once the answer is final."""
        body = self.body  # already checked: ``reasoning`` and ``text`` are objects when present
        reasoning, text = body.get("reasoning") or {}, body.get("text") or {}
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": bool(body.get("background")),
            "completed_at": int(time.time()) if final and status == "completed" else None,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if final and status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": self.req.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": self.req.effort, "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": self.req.text_format, "verbosity": text.get("verbosity", "medium")},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": body.get("top_logprobs", 0),
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": _usage(self.answer, self.cached_tokens) if final else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def whole(self) -> JsonObject:
        return self.response("incomplete" if self.incomplete else "completed", self.output(), final=True)

    def events(self) -> list[SseEvent]:
        stream = _Stream()
        started = self.response("in_progress", [], final=False)
        stream.add("response.created", {"response": started})
        stream.add("response.in_progress", {"response": started})
        for index, item in enumerate(self.output()):
            _item_events(stream, index, item)
        terminal = self.whole()
        stream.add(f"response.{terminal['status']}", {"response": terminal})
        return stream.events

    def failed(self, message: str) -> FailureEvent:
        """The failure event for a stream that breaks at some position (its sequence number)."""

        def event(position: int) -> SseEvent:
            response = {
                **self.response("failed", [], final=False),
                "error": {"code": "server_error", "message": message},
            }
            data = {"type": "response.failed", "sequence_number": position, "response": response}
            return SseEvent(orjson.dumps(data), event="response.failed")

        return event


def _output_text(text: str) -> JsonObject:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _item_events(stream: _Stream, index: int, item: JsonObject) -> None:
    """``output_item.added``, the item's own parts and deltas, then ``output_item.done``."""
    where = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    opening = {**item, "status": "in_progress"}
    if kind == "message":
        opening["content"] = []
    elif kind == "reasoning":
        opening = {**item, "summary": []}
    elif kind == "function_call":
        opening["arguments"] = ""
    stream.add("response.output_item.added", {"output_index": index, "item": opening})
    if kind == "message":
        for position, part in enumerate(item["content"]):
            _part_events(stream, {**where, "content_index": position}, part)
    elif kind == "reasoning":
        for position, summary in enumerate(item["summary"]):
            _summary_events(stream, {**where, "summary_index": position}, summary)
    elif kind == "function_call":
        for piece in tokenize(item["arguments"]):
            stream.add("response.function_call_arguments.delta", {**where, "delta": piece}, content=True)
        stream.add(
            "response.function_call_arguments.done", {**where, "name": item["name"], "arguments": item["arguments"]}
        )
    stream.add("response.output_item.done", {"output_index": index, "item": item})


def _part_events(stream: _Stream, where: JsonObject, part: JsonObject) -> None:
    if part["type"] == "refusal":
        kind, key, empty = "response.refusal", "refusal", {"type": "refusal", "refusal": ""}
    else:
        kind, key, empty = "response.output_text", "text", _output_text("")
    extra: JsonObject = {} if part["type"] == "refusal" else {"logprobs": []}
    stream.add("response.content_part.added", {**where, "part": empty})
    for piece in tokenize(part[key]):
        stream.add(f"{kind}.delta", {**where, "delta": piece, **extra}, content=True)
    stream.add(f"{kind}.done", {**where, key: part[key], **extra})
    stream.add("response.content_part.done", {**where, "part": part})


def _summary_events(stream: _Stream, where: JsonObject, summary: JsonObject) -> None:
    stream.add("response.reasoning_summary_part.added", {**where, "part": {"type": "summary_text", "text": ""}})
    for piece in tokenize(summary["text"]):
        stream.add("response.reasoning_summary_text.delta", {**where, "delta": piece}, content=True)
    stream.add("response.reasoning_summary_text.done", {**where, "text": summary["text"]})
    stream.add("response.reasoning_summary_part.done", {**where, "part": summary})


async def respond_responses(ex: Exchange) -> web.StreamResponse:
    carried = _carried_tokens(ex)
    req = read_request(ex.body, ex.request, ex.behaviour, carried)
    answer = compose(req.prompt, req.behaviour)
    rendering = Rendering(req, ex.body, answer, carried)
    if ex.body.get("store", True) is not False:
        ex.request.app[RESPONSES].remember(rendering.response_id, answer.prompt_tokens + answer.output_tokens)
    if ex.body.get("stream") is True:
        message = error_kind(ex.dialect.stream_failure_status).openai_message
        return await ex.send_events(rendering.events(), failure_event=rendering.failed(message))
    return await ex.send_json(rendering.whole())


async def responses(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``."""
    return await serve_exchange(request, OPENAI, responses_target, respond_responses)
