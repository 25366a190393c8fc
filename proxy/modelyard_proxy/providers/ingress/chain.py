"""A client protocol served by any provider: converted to Chat Completions, translated by the provider's chat
adapter, and converted back.

Chat Completions is the pivot every provider already has a translator for, so a new ingress protocol needs
one codec (its requests to Chat, Chat's answers and chunks back) instead of one translator per provider.
A provider that speaks the client's protocol natively is registered for that pair instead and never chained.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import ClassVar

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import DONE_FRAME, SSEDecoder, SSEEvent
from modelyard_proxy.providers.base import (
    CallContext,
    Inbound,
    JSONObject,
    ProviderAdapter,
    StreamTranslator,
    UpstreamCall,
)
from modelyard_proxy.providers.schemas import Schema

_DONE = DONE_FRAME.removesuffix(b"\n\n")


class ChunkConverter(abc.ABC):
    """Turns one answer's ``chat.completion.chunk`` objects into the client protocol's stream events."""

    #: The whole answer the closing frames carry, where the protocol sends one (see ``StreamTranslator``).
    answer: JSONObject | None = None

    @abc.abstractmethod
    def feed(self, chunk: JSONObject) -> bytes:
        """The protocol's frames for one chunk (``b""`` for none)."""

    @abc.abstractmethod
    def finish(self) -> bytes:
        """The closing frames once the chat stream ended cleanly (its ``[DONE]`` was seen)."""


class ChatCodec(abc.ABC):
    """One client protocol to Chat Completions and back."""

    #: The protocol converted.
    schema: ClassVar[Schema]

    @abc.abstractmethod
    def chat_request(self, body: JSONObject, ctx: CallContext) -> JSONObject:
        """The request as a Chat Completions body (``model``, ``stream`` and ``stream_options`` included);
        raises a 400 :class:`GatewayError` naming what Chat Completions cannot express."""

    @abc.abstractmethod
    def answer(self, chat: JSONObject, ctx: CallContext) -> bytes:
        """A whole ``chat.completion`` as the protocol's answer body."""

    @abc.abstractmethod
    def stream(self, ctx: CallContext) -> ChunkConverter:
        """A fresh converter for one streamed answer."""


class ChainedAdapter(ProviderAdapter):
    """``codec`` in front of a provider's chat adapter: what the provider cannot express is refused by either."""

    #: The registry files a chain under (codec schema, the inner adapter's egress) itself.
    pairs = frozenset()

    def __init__(self, codec: ChatCodec, inner: ProviderAdapter) -> None:
        self.codec = codec
        self.inner = inner
        self.name = inner.name

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        chat = self.codec.chat_request(inbound.body, ctx)
        return self.inner.chat_call(Inbound(chat, None), _with_usage(ctx))

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return self.codec.answer(orjson.loads(self.inner.chat_result(payload, ctx)), ctx)

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return ChainedStream(self.inner.chat_stream(_with_usage(ctx)), self.codec.stream(ctx))

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return self.inner.embeddings_call(inbound, ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return self.inner.embeddings_result(payload, ctx)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return self.inner.error_from(status, headers, payload, ctx)


def _with_usage(ctx: CallContext) -> CallContext:
    """Every protocol but Chat reports usage at a stream's end, so the chat stream must carry it."""
    return ctx if ctx.include_usage or not ctx.stream else dataclasses.replace(ctx, include_usage=True)


class ChainedStream(StreamTranslator):
    """The provider's chat chunks, re-read and converted to the client protocol's events."""

    def __init__(self, inner: StreamTranslator, converter: ChunkConverter) -> None:
        self.inner = inner
        self.converter = converter

    def feed(self, event: SSEEvent) -> bytes:
        return self._passed(self.inner.feed(event))

    def translate(self, decoder: SSEDecoder, chunk: bytes) -> bytes:
        """The inner translator reads the upstream's bytes itself: not every upstream streams SSE (Bedrock)."""
        return self._passed(self.inner.translate(decoder, chunk))

    def finish(self) -> bytes:
        return self._closing(self.inner.finish())

    def close(self, decoder: SSEDecoder) -> bytes:
        return self._closing(self.inner.close(decoder))

    def _passed(self, frames: bytes) -> bytes:
        out = self._convert(frames)
        self.usage = self.inner.usage
        return out

    def _closing(self, frames: bytes) -> bytes:
        out = self._passed(frames)
        closing = self.converter.finish()
        self.answer = self.converter.answer
        return out + closing

    def _convert(self, frames: bytes) -> bytes:
        if not frames:
            return b""
        out = []
        for block in frames.split(b"\n\n"):
            data = block.removeprefix(b"data: ")
            if data and block != _DONE:
                out.append(self.converter.feed(orjson.loads(data)))
        return b"".join(out)
