"""Gemini's ``streamGenerateContent?alt=sse`` as OpenAI chunks.

Every event is a whole ``GenerateContentResponse`` carrying the next parts; function calls arrive whole, so
each becomes one complete tool-call delta (only the first, when the client asked for no parallel calls).
Gemini sends no terminator: the answer is complete only if a finishReason (or a prompt block) was seen
before the body ended, and the finish chunk is written then, with the last usage reported.
"""

from __future__ import annotations

import orjson

from modelyard_proxy.base.sse import SSEEvent
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers.base import CallContext, JSONObject, StreamTranslator, UpstreamStreamError
from modelyard_proxy.providers.chunks import ChunkWriter
from modelyard_proxy.providers.openai_chat_to_gemini.errors import in_band_error
from modelyard_proxy.providers.openai_chat_to_gemini.response import CallIds, blocked, finish_reason, read_parts, usage


class GeminiStream(StreamTranslator):
    """Translates one streamed Gemini answer (a single candidate: the request refuses ``n > 1``)."""

    def __init__(self, ctx: CallContext) -> None:
        self._ctx = ctx
        self._writer = ChunkWriter(ctx)
        self._ids: CallIds | None = None
        self._finish: str | None = None  # Gemini's finishReason, or "BLOCKED" for a refused prompt
        self.usage: JSONObject | None = None

    def feed(self, event: SSEEvent) -> bytes:
        data = event.data.strip()
        if not data or data == b"[DONE]":
            return b""
        chunk = self._parse(data)
        if "error" in chunk:
            raise in_band_error(chunk["error"], self._ctx.credential)
        if self._ids is None:
            response_id = chunk.get("responseId")
            self._writer.rename(response_id, chunk.get("modelVersion"))
            self._ids = CallIds(str(response_id or self._ctx.completion_id))
        if (metadata := usage(chunk.get("usageMetadata"))) is not None:
            self.usage = metadata
        candidates = chunk.get("candidates")
        if not candidates and blocked(chunk):
            self._finish = "BLOCKED"
        out = b""
        for candidate in candidates if isinstance(candidates, list) else ():
            if isinstance(candidate, dict):
                out += self._candidate(candidate, self._ids)
        return out

    def finish(self) -> bytes:
        if self._finish is None:
            raise self._broken("stream ended before a finish reason")
        called_tools = self._ids is not None and self._ids.count > 0
        reason = "content_filter" if self._finish == "BLOCKED" else finish_reason(self._finish, called_tools)
        return self._writer.finish(reason, self.usage)

    def _candidate(self, candidate: JSONObject, ids: CallIds) -> bytes:
        first_call = ids.count
        max_calls = None if self._ctx.parallel_tool_calls else max(0, 1 - first_call)
        text, thoughts, calls = read_parts(candidate.get("content"), ids, max_calls)
        if isinstance(reason := candidate.get("finishReason"), str) and reason:
            self._finish = reason
        delta: JSONObject = {}
        if thoughts:
            delta["reasoning_content"] = thoughts
        if text:
            delta["content"] = text
        if calls:
            delta["tool_calls"] = [{"index": first_call + k, **call} for k, call in enumerate(calls)]
        return self._writer.delta(delta) if delta else b""

    def _parse(self, data: bytes) -> JSONObject:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if isinstance(chunk, list) and len(chunk) == 1:
            chunk = chunk[0]  # an error may come wrapped in an array, as in Gemini's HTTP errors
        if not isinstance(chunk, dict):
            raise MalformedAnswer("not a Gemini stream chunk")
        return chunk

    def _broken(self, what: str) -> UpstreamStreamError:
        where = f"upstream gemini ({self._ctx.credential.id})"
        return UpstreamStreamError(502, f"{where} {what}", type="upstream_error", code="upstream_error")
