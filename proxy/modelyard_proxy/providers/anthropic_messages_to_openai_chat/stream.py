"""``chat.completion.chunk`` objects as Anthropic's stream events, in the documented order.

``message_start`` (input tokens 0: Chat reports usage only at the end), ``ping``, then per block
``content_block_start``, its deltas and ``content_block_stop`` (thinking with ``thinking_delta``, text with
``text_delta``, each tool call with ``input_json_delta``), then ``message_delta`` with the stop reason and the
final usage (input tokens included, as Anthropic's own ``message_delta`` may carry them) and ``message_stop``.
One block is open at a time; indices count every block, where Chat counts tool calls alone.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.providers.anthropic_messages_to_openai_chat.response import (
    messages_usage,
    reasoning_text,
    stop_details,
    thinking_block,
    tool_use_block,
)
from modelyard_proxy.providers.base import CallContext, JSONObject
from modelyard_proxy.providers.ingress.anthropic_messages import event_frame
from modelyard_proxy.providers.ingress.chain import ChunkConverter


class MessagesStream(ChunkConverter):
    """One answer's chunks, converted as they come."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._started = False
        self._open: str | None = None  # "thinking", "text" or "tool:<chat index>"
        self._blocks = 0
        self._choice: JSONObject = {}
        self._refused = False
        self._usage: Any = None

    def feed(self, chunk: JSONObject) -> bytes:
        out = self._start(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
        if choice is None:
            return out
        delta = choice.get("delta")
        if isinstance(delta, dict):
            out += self._delta(delta)
        if choice.get("finish_reason"):
            self._choice = choice
        return out

    def finish(self) -> bytes:
        out = self._start(None) + self._close()
        stop_reason, stop_sequence = stop_details(self._choice, self._refused)
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        out += event_frame({"type": "message_delta", "delta": delta, "usage": messages_usage(self._usage)})
        return out + event_frame({"type": "message_stop"})

    def _start(self, model: Any) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: JSONObject = {
            "id": self._ctx.completion_id,
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) and model else self._ctx.upstream_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event_frame({"type": "message_start", "message": message}) + event_frame({"type": "ping"})

    def _delta(self, delta: JSONObject) -> bytes:
        out = b""
        if thinking := reasoning_text(delta):
            out += self._open_block("thinking", thinking_block(""))
            out += self._block_delta({"type": "thinking_delta", "thinking": thinking})
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
        text = delta.get("content") or refusal
        if isinstance(text, str) and text:
            out += self._open_block("text", {"type": "text", "text": ""})
            out += self._block_delta({"type": "text_delta", "text": text})
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out += self._tool_call(call)
        return out

    def _tool_call(self, call: JSONObject) -> bytes:
        key = f"tool:{call.get('index', 0)}"
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        out = b""
        if key != self._open:
            out += self._open_block(key, tool_use_block(call.get("id"), function.get("name"), {}))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._block_delta({"type": "input_json_delta", "partial_json": arguments})
        return out

    def _open_block(self, kind: str, block: JSONObject) -> bytes:
        """Start ``block`` unless a block of ``kind`` is the open one (closing any other)."""
        if self._open == kind:
            return b""
        out = self._close()
        self._open = kind
        return out + event_frame({"type": "content_block_start", "index": self._blocks, "content_block": block})

    def _block_delta(self, delta: JSONObject) -> bytes:
        return event_frame({"type": "content_block_delta", "index": self._blocks, "delta": delta})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        self._blocks += 1
        return event_frame({"type": "content_block_stop", "index": self._blocks - 1})
