"""OpenAI Chat Completions as a client protocol: ``POST /v1/chat/completions``.

Every provider has a translator for it, so it is the pivot other protocols are converted through
(:mod:`~modelyard_proxy.providers.ingress.chain`).
"""

from __future__ import annotations

import re

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.base.sse import DONE_FRAME, frame
from modelyard_proxy.failures.classify import MalformedAnswer
from modelyard_proxy.providers import params
from modelyard_proxy.providers.base import JSONObject
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.providers.schemas import Schema

#: A translated chunk that ends its choice on a content filter (OpenAI's word for every provider's refusal).
FILTERED = re.compile(rb'"finish_reason":\s*"content_filter"')
_CONTENT_KEYS = ("content", "tool_calls", "function_call", "refusal", "reasoning_content")


class ChatProtocol(IngressProtocol):
    """Chat Completions: ``choices`` of messages, ``chat.completion.chunk`` frames and ``data: [DONE]``."""

    schema = Schema.OPENAI_CHAT
    path = "/v1/chat/completions"
    id_prefix = "chatcmpl-"

    def check_request(self, body: JSONObject, max_messages: int) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("'messages' is required and must be a non-empty array", param="messages")
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise bad_request("every message must be an object with a 'role'", param="messages")
        check_count(messages, "messages", max_messages, "messages")
        check_stream_flag(body)
        params.check_token_limits(body)

    def estimate_view(self, body: JSONObject) -> JSONObject:
        return body

    def commits(self, frames: bytes) -> bool:
        """Role-only and empty frames do not commit; a frame that is not JSON fails the attempt (it would
        only break the client's parser)."""
        for block in frames.split(b"\n\n"):
            if not block:
                continue
            if block + b"\n\n" == DONE_FRAME:
                return True
            try:
                chunk = orjson.loads(block.removeprefix(b"data: "))
            except orjson.JSONDecodeError:
                raise MalformedAnswer("a stream frame is not JSON") from None
            choices = chunk.get("choices") if isinstance(chunk, dict) else None
            for choice in choices if isinstance(choices, list) else ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if isinstance(delta, dict) and any(delta.get(key) for key in _CONTENT_KEYS):
                    return True
        return False

    def refused(self, frames: bytes) -> bool:
        return FILTERED.search(frames) is not None

    def read_answer(self, body: bytes) -> tuple[JSONObject | None, bool]:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedAnswer("the answer is not JSON") from None
        choices = parsed.get("choices") if isinstance(parsed, dict) else None
        if not isinstance(choices, list):
            raise MalformedAnswer("the answer has no choices")
        filtered = any(isinstance(c, dict) and c.get("finish_reason") == "content_filter" for c in choices)
        usage = parsed.get("usage")
        return (usage if isinstance(usage, dict) else None), filtered

    def error_response(self, error: GatewayError) -> tuple[int, bytes]:
        return error.status, error.body()

    def error_frame(self, error: GatewayError) -> bytes:
        """An OpenAI error event and no ``[DONE]``: the SDKs raise on a chunk that holds ``error``."""
        return frame(orjson.dumps(error.payload()))


def check_count(items: list[object], field: str, limit: int, noun: str = "items") -> None:
    """Refuse a conversation longer than the gateway's bound on ``field`` (``noun``: what it holds)."""
    if len(items) > limit:
        message = f"{field!r} holds {len(items)} {noun}, more than this gateway's limit of {limit}"
        raise bad_request(message, param=field, code="array_above_max_length")


def check_stream_flag(body: JSONObject) -> None:
    """``stream`` is a boolean when present."""
    if "stream" in body and not isinstance(body["stream"], bool | None):
        raise bad_request("'stream' must be a boolean", param="stream")


CHAT = ChatProtocol()
