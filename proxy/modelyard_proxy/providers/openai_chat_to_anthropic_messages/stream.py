"""Anthropic Messages stream events → OpenAI ``chat.completion.chunk`` frames.

Anthropic numbers content blocks across text, thinking and tool calls, while OpenAI numbers tool calls
alone, so tool calls get their own counter. Usage in ``message_delta`` is cumulative: fields are set,
never added. The stream is complete only at ``message_stop``; a body that ends before it is a failure.
Signed thinking blocks reach the client whole as they stop (see ``thinking``), and the
arguments of a JSON-mode answer stream as content (see ``json_answer``).
"""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.base.sse import SSEEvent
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.chunks import ChunkWriter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.json_answer import JSON_TOOL
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import (
    finish_reason,
    openai_usage,
    stream_error,
)
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.thinking import BLOCK_FIELDS, StreamedThinking

USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens_details",
)


def read_event(event: SSEEvent) -> tuple[Any, JSONObject]:
    """An Anthropic stream event's type (its ``event:`` name, else its ``type``) and payload; ``MalformedAnswer``
    when the payload is not a JSON object."""
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise MalformedAnswer("not an Anthropic stream event")
    return event.event or data.get("type"), data


class AnthropicStreamTranslator(StreamTranslator):
    """One streamed Anthropic message, translated event by event."""

    def __init__(self, ctx: CallContext) -> None:
        self._writer = ChunkWriter(ctx)
        self._ctx = ctx
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self._no_arguments: set[int] = set()  # tool blocks that have not streamed any arguments yet
        self._json_answers: set[int] = set()  # blocks calling the JSON-mode tool: their arguments are content
        self._thinking = StreamedThinking()
        self._native_usage: JSONObject = {}
        self._stop_reason: str | None = None
        self._stopped = False
        self._error: UpstreamStreamError | None = None

    def feed(self, event: SSEEvent) -> bytes:
        if self._stopped or event.event == "ping":
            return b""
        kind, data = read_event(event)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._start(data)
        if kind == "content_block_stop":
            return self._stop_block(data.get("index"))
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            self._take_usage(data.get("usage"))
            return b""
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                self._writer.rename(message.get("id"), message.get("model"))
                self._take_usage(message.get("usage"))
            return b""
        if kind == "message_stop":
            self._stopped = True
            self.usage = openai_usage(self._native_usage)
            finish = finish_reason(self._stop_reason)
            if finish == "tool_calls" and self._json_answers and not self._tools:
                finish = "stop"  # the only call was the JSON answer
            return self._writer.finish(finish, self.usage)
        if kind == "error":
            raise self._fail(stream_error(data, self._ctx))
        return b""  # unknown events are allowed by Anthropic's versioning policy

    def finish(self) -> bytes:
        if self._error is not None:
            raise self._error
        if not self._stopped:
            raise UpstreamStreamError(
                502, "upstream anthropic stream ended before message_stop", type="upstream_error", code="upstream_error"
            )
        return b""

    def _fail(self, error: UpstreamStreamError) -> UpstreamStreamError:
        """Remember an in-band failure so ``finish`` reports it too, if the relay still calls it."""
        self._error = error
        return error

    def _start(self, data: JSONObject) -> bytes:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return b""
        kind = block.get("type")
        at = data.get("index", -1)
        if kind == "text":
            return self._writer.delta({"content": block["text"]}) if block.get("text") else b""
        if kind in BLOCK_FIELDS:
            self._thinking.start(at, block)
            return self._writer.delta({"reasoning_content": block["thinking"]}) if block.get("thinking") else b""
        if kind != "tool_use":
            return b""  # server-side tool blocks have no OpenAI form
        arguments = orjson.dumps(block["input"]).decode() if block.get("input") else ""
        if not arguments:
            self._no_arguments.add(at)
        if block.get("name") == JSON_TOOL:
            self._json_answers.add(at)
            return self._writer.delta({"content": arguments}) if arguments else b""
        index = self._tools[at] = len(self._tools)
        function = {"name": block.get("name"), "arguments": arguments}
        return self._writer.delta(
            {"tool_calls": [{"index": index, "id": block.get("id"), "type": "function", "function": function}]}
        )

    def _delta(self, data: JSONObject) -> bytes:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return b""
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return self._writer.delta({"content": text}) if text else b""
        at = data.get("index", -1)
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            if not partial or (at not in self._tools and at not in self._json_answers):
                return b""
            self._no_arguments.discard(at)
            return self._arguments(at, partial)
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            if not thinking:
                return b""
            self._thinking.thinking(at, thinking)
            return self._writer.delta({"reasoning_content": thinking})
        if kind == "signature_delta" and isinstance(delta.get("signature"), str):
            self._thinking.signature(at, delta["signature"])
        return b""  # citations_delta: nothing OpenAI clients can use

    def _stop_block(self, block: Any) -> bytes:
        if block in self._no_arguments:
            self._no_arguments.discard(block)
            return self._arguments(block, "{}")  # OpenAI clients parse arguments; "" is not JSON
        signed = self._thinking.stop(block)
        return self._writer.delta(signed) if signed is not None else b""

    def _arguments(self, block: int, fragment: str) -> bytes:
        if block in self._json_answers:
            return self._writer.delta({"content": fragment})
        return self._writer.delta({"tool_calls": [{"index": self._tools[block], "function": {"arguments": fragment}}]})

    def _take_usage(self, native: Any) -> None:
        if not isinstance(native, dict):
            return
        for name in USAGE_FIELDS:
            value = native.get(name)
            if value is not None:
                self._native_usage[name] = value
