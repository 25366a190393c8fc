"""Claude on Vertex AI: Anthropic's Messages bodies, answers and events, framed for ``rawPredict``.

The model is named by the URL, not the body, and the API version travels in the body as ``anthropic_version``
(Vertex's ``vertex-2023-10-16``) instead of the ``anthropic-version`` header; everything else is Anthropic's.
``streamRawPredict`` streams, ``rawPredict`` answers whole.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from modelyard_proxy.base.errors import GatewayError, bad_request
from modelyard_proxy.providers.anthropic_messages_to_anthropic_messages.adapter import AnthropicPassthroughAdapter
from modelyard_proxy.providers.base import CallContext, Inbound, JSONObject, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.request import build_request
from modelyard_proxy.providers.vertex_ai.address import json_call
from modelyard_proxy.providers.vertex_ai.errors import vertex_error

VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
#: Client headers Vertex takes as Anthropic does; the version header is replaced by the body's field.
FORWARDED = frozenset({"anthropic-beta"})


def vertex_body(body: JSONObject) -> bytes:
    """A Messages body as Vertex takes it: without ``model``, with ``anthropic_version``."""
    framed = {key: value for key, value in body.items() if key != "model"}
    framed["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
    return orjson.dumps(framed)


def raw_predict(ctx: CallContext, body: JSONObject) -> UpstreamCall:
    """The ``rawPredict`` call, or ``streamRawPredict`` for a stream, with the client's forwarded betas."""
    call = json_call(ctx, "streamRawPredict" if ctx.stream else "rawPredict", vertex_body(body))
    call.headers.update({name: value for name, value in ctx.forwarded_headers.items() if name in FORWARDED})
    return call


class VertexAnthropicAdapter(AnthropicAdapter):
    """Chat Completions clients of Claude on Vertex: Anthropic's translation, Vertex's framing."""

    name = "vertex-ai"
    pairs = frozenset()  # registered through the Vertex adapter, which picks it by the credential's publisher

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return raw_predict(ctx, build_request(inbound.body, ctx.upstream_model, ctx.stream))

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:  # noqa: ARG002
        raise _no_embeddings(ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:  # noqa: ARG002
        raise _no_embeddings(ctx)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return vertex_error(status, headers, payload, ctx)


class VertexAnthropicPassthroughAdapter(AnthropicPassthroughAdapter):
    """Anthropic Messages clients of Claude on Vertex: their request as sent, but for its framing."""

    name = "vertex-ai"
    pairs = frozenset()  # registered through the Vertex adapter, which picks it by the credential's publisher

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return raw_predict(ctx, inbound.body)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return vertex_error(status, headers, payload, ctx)


def _no_embeddings(ctx: CallContext) -> GatewayError:
    return bad_request(
        f"model {ctx.public_model!r} is served by Claude on Vertex AI, which has no embeddings API",
        param="model",
        code="unsupported_endpoint",
    )
