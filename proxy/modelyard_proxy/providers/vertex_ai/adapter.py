"""One adapter for Vertex AI whatever the model's publisher.

Adapters are built once per provider, but a Vertex credential names its publisher (``spec.vertex.publisher``),
and Google's and Anthropic's models are framed differently: :class:`ByPublisher` hands each call to the adapter
for the calling credential's publisher, a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Mapping

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.providers.base import CallContext, Inbound, ProviderAdapter, StreamTranslator, UpstreamCall
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_proxy.providers.vertex_ai.address import options
from modelyard_proxy.providers.vertex_ai.anthropic import VertexAnthropicAdapter
from modelyard_proxy.providers.vertex_ai.gemini import VertexGeminiAdapter
from modelyard_routing.specs import VertexPublisher


class ByPublisher(ProviderAdapter):
    """Each call served by the adapter of its credential's publisher."""

    name = "vertex-ai"
    pairs = frozenset()

    def __init__(self, *, google: ProviderAdapter, anthropic: ProviderAdapter) -> None:
        self._by: Mapping[VertexPublisher, ProviderAdapter] = {
            VertexPublisher.GOOGLE: google,
            VertexPublisher.ANTHROPIC: anthropic,
        }

    def _for(self, ctx: CallContext) -> ProviderAdapter:
        return self._by[options(ctx.credential).publisher]

    def chat_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return self._for(ctx).chat_call(inbound, ctx)

    def chat_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return self._for(ctx).chat_result(payload, ctx)

    def chat_stream(self, ctx: CallContext) -> StreamTranslator:
        return self._for(ctx).chat_stream(ctx)

    def embeddings_call(self, inbound: Inbound, ctx: CallContext) -> UpstreamCall:
        return self._for(ctx).embeddings_call(inbound, ctx)

    def embeddings_result(self, payload: bytes, ctx: CallContext) -> bytes:
        return self._for(ctx).embeddings_result(payload, ctx)

    def error_from(self, status: int, headers: Mapping[str, str], payload: bytes, ctx: CallContext) -> GatewayError:
        return self._for(ctx).error_from(status, headers, payload, ctx)


class VertexAdapter(ByPublisher):
    """Chat Completions and embeddings clients of Vertex AI: Gemini's or Anthropic's translation."""

    pairs = frozenset(
        {
            Pair(Schema.OPENAI_CHAT, Schema.VERTEX_AI),
            Pair(Schema.OPENAI_EMBEDDINGS, Schema.VERTEX_AI_PREDICT),
        }
    )

    def __init__(self) -> None:
        super().__init__(google=VertexGeminiAdapter(), anthropic=VertexAnthropicAdapter())
