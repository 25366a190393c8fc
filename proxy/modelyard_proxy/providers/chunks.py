"""Builds OpenAI stream chunks for translated dialects, so every translator emits one exact shape."""

from __future__ import annotations

from typing import Any

import orjson

from modelyard_proxy.base.sse import DONE_FRAME, frame
from modelyard_proxy.providers.base import CallContext, JSONObject


class ChunkWriter:
    """Frames ``chat.completion.chunk`` events with a fixed id, created time and model.

    The first delta carries ``role: assistant``; the usage chunk (``choices: []``) is written only when the
    client asked for ``stream_options.include_usage``, and then every other chunk carries ``usage: null``.
    """

    __slots__ = ("_head", "_include_usage", "_role_sent")

    def __init__(self, ctx: CallContext, completion_id: str | None = None, model: str | None = None) -> None:
        self._include_usage = ctx.include_usage
        self._role_sent = False
        self._head: JSONObject = {
            "id": completion_id or ctx.completion_id,
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": model or ctx.upstream_model,
        }

    def rename(self, completion_id: str | None = None, model: str | None = None) -> None:
        """Adopt the upstream's own id and model once known (before the first chunk is written)."""
        if completion_id:
            self._head["id"] = completion_id
        if model:
            self._head["model"] = model

    def delta(self, delta: JSONObject, finish_reason: str | None = None) -> bytes:
        """One chunk with ``delta`` for choice 0."""
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])

    def finish(self, finish_reason: str, usage: JSONObject | None) -> bytes:
        """The closing frames: the finish chunk, the usage chunk if asked for, and ``[DONE]``."""
        out = self.delta({}, finish_reason)
        if self._include_usage and usage is not None:
            out += self._chunk([], usage)
        return out + DONE_FRAME

    def _chunk(self, choices: list[Any], usage: JSONObject | None = None) -> bytes:
        chunk = {**self._head, "choices": choices}
        if self._include_usage:
            chunk["usage"] = usage
        return frame(orjson.dumps(chunk))


def usage_object(
    prompt: int, completion: int, *, cached: int | None = None, reasoning: int | None = None
) -> JSONObject:
    """OpenAI's ``usage`` object with the optional details blocks filled only when known."""
    usage: JSONObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage
