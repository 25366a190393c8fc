"""Anthropic's stream relayed event for event, watched for usage, in-band errors and a cut before its end.

Unknown event types pass through too: Anthropic's versioning policy lets it add events, and the SDKs skip the
ones they do not know.
"""

from __future__ import annotations

from typing import Any

from modelyard_proxy.base.sse import SSEEvent
from modelyard_proxy.providers.base import CallContext, JSONObject, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.response import openai_usage, stream_error
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.stream import USAGE_FIELDS, read_event


class PassthroughStream(StreamTranslator):
    """One streamed message, its events re-framed unchanged; complete only at ``message_stop``."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._native_usage: JSONObject = {}
        self._stopped = False

    def feed(self, event: SSEEvent) -> bytes:
        if event.event != "ping":
            self._watch(event)
        out = b"event: " + event.event.encode() + b"\n" if event.event else b""
        return out + b"".join(b"data: " + line + b"\n" for line in event.data.split(b"\n")) + b"\n"

    def finish(self) -> bytes:
        if not self._stopped:
            where = f"upstream anthropic ({self._ctx.credential.id})"
            raise UpstreamStreamError(
                502, f"{where} ended the stream before message_stop", type="upstream_error", code="upstream_truncated"
            )
        return b""

    def _watch(self, event: SSEEvent) -> None:
        kind, data = read_event(event)
        if kind == "error":
            raise stream_error(data, self._ctx)
        if kind == "message_start":
            message = data.get("message")
            self._take_usage(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._take_usage(data.get("usage"))
        elif kind == "message_stop":
            self._stopped = True

    def _take_usage(self, native: Any) -> None:
        """Counts are cumulative: a later event's value replaces the earlier one."""
        if isinstance(native, dict):
            self._native_usage.update({name: native[name] for name in USAGE_FIELDS if native.get(name) is not None})
            self.usage = openai_usage(self._native_usage)
