"""Gemini on Vertex AI: the Gemini API's bodies, answers and streams, at Vertex's addresses and with its token."""

from __future__ import annotations

from collections.abc import Mapping

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound, UpstreamCall
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_proxy.providers.openai_chat_to_gemini.request import chat_body
from modelyard_proxy.providers.vertex_ai.address import json_call
from modelyard_proxy.providers.vertex_ai.embeddings import embeddings_list, predict_body
from modelyard_proxy.providers.vertex_ai.errors import vertex_error


class VertexGeminiAdapter(GeminiAdapter):
    """``generateContent``/``streamGenerateContent`` and ``predict`` on publisher ``google``'s models."""

    name = "vertex-ai"
    pairs = frozenset()  # registered through the Vertex adapter, which picks it by the credential's publisher

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        body = chat_body(inbound.body, ctx.upstream_model, ctx.stream)
        return json_call(ctx, "streamGenerateContent?alt=sse" if ctx.stream else "generateContent", body)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return json_call(ctx, "predict", predict_body(inbound.body))

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return embeddings_list(payload, ctx.upstream_model, ctx.encoding_format)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return vertex_error(status, headers, payload, ctx)
