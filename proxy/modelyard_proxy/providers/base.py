"""The adapter contract: how the relay asks a provider module to build calls and translate answers.

Bodies travel as plain dicts parsed once by orjson (no pydantic objects on the hot path); adapters that
need no translation return the client's bytes untouched.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.base.sse import SSEDecoder, SSEEvent
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Credential

JSONObject = dict[str, Any]


@dataclasses.dataclass(slots=True)
class Inbound:
    """The client's request: the parsed body and the bytes it came as (for cheap passthrough)."""

    body: JSONObject
    #: The client's bytes; None for a body the gateway built (a conversion, a resolved conversation), which is
    #: serialised only if an adapter sends it as it is (:meth:`wire`).
    raw: bytes | None
    #: The protocol the client spoke (see :mod:`~modelyard_proxy.providers.ingress`).
    schema: Schema = Schema.OPENAI_CHAT

    def wire(self) -> bytes:
        """The body as the upstream receives it unchanged: the client's bytes, or the built body serialised once."""
        if self.raw is None:
            self.raw = orjson.dumps(self.body)
        return self.raw


@dataclasses.dataclass(frozen=True, slots=True)
class CallContext:
    """What translators need beyond the body: names, stream options, and ids for synthesized chunks."""

    public_model: str
    upstream_model: str
    credential: Credential
    stream: bool = False
    include_usage: bool = False
    created: int = 0
    #: The answer's id: the ingress protocol's prefix and the request id.
    completion_id: str = "chatcmpl-modelyard"
    #: Embeddings only: ``float`` or ``base64``, for adapters that must encode vectors themselves.
    encoding_format: str = "float"
    #: W3C trace context for the upstream (``traceparent``), added to the call's headers by the relay.
    trace_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: False when the client sent ``parallel_tool_calls: false``: adapters whose upstream cannot be told so
    #: keep only the first tool call of each answer.
    parallel_tool_calls: bool = True
    #: Client headers an upstream speaking the client's own protocol receives as sent (``anthropic-beta``).
    forwarded_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class UpstreamCall:
    """A fully built upstream HTTP request."""

    url: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


class StreamTranslator(abc.ABC):
    """Turns one upstream event stream into OpenAI ``chat.completion.chunk`` frames.

    ``feed`` returns the frames to write now (``b""`` for none). ``finish`` is called when the upstream
    body ends and returns the closing frames, ending with ``data: [DONE]``. Both raise
    :class:`UpstreamStreamError` when the upstream reports a failure in-band or stops before its
    terminator, so the relay can end the client's stream with an error event instead of a clean close.
    """

    usage: JSONObject | None = None
    #: The whole answer the stream ended with, where the protocol sends one (Responses' final ``response``):
    #: what the gateway keeps of a conversation.
    answer: JSONObject | None = None

    @abc.abstractmethod
    def feed(self, event: SSEEvent) -> bytes:
        """Translate one upstream event."""

    def translate(self, decoder: SSEDecoder, chunk: bytes) -> bytes:
        """The frames one upstream read completes (``decoder`` keeps partial lines across reads)."""
        return b"".join([self.feed(event) for event in decoder.feed(chunk)])

    def close(self, decoder: SSEDecoder) -> bytes:
        """The closing frames once the upstream body ended: the decoder's last event, then :meth:`finish`."""
        return b"".join([self.feed(event) for event in decoder.close()]) + self.finish()

    @abc.abstractmethod
    def finish(self) -> bytes:
        """Close the stream, or raise if the upstream never finished it."""


class UpstreamStreamError(GatewayError):
    """A failure after the first byte reached the client: reported in-band, never retried."""


class ProviderAdapter(abc.ABC):
    """Builds upstream calls for one wire dialect and translates its answers back to OpenAI's."""

    #: Human-readable dialect name used in error messages.
    name: str = "provider"
    #: The (ingress, egress) schema pairs this adapter translates; the registry files it under each.
    pairs: ClassVar[frozenset[Pair]]

    @abc.abstractmethod
    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        """The upstream request for a chat completion; raises GatewayError(400) for input it cannot honour."""

    @abc.abstractmethod
    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        """An upstream non-stream answer as an OpenAI ``chat.completion`` body."""

    @abc.abstractmethod
    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        """A fresh translator for one streamed answer."""

    @abc.abstractmethod
    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        """The upstream request for embeddings; raises GatewayError(400) if the dialect has none."""

    @abc.abstractmethod
    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        """An upstream embeddings answer as an OpenAI ``list`` of embeddings."""

    @abc.abstractmethod
    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        """An upstream non-2xx answer as the gateway's error (see ``failures.classify``)."""
