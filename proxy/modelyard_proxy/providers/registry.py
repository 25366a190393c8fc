"""Which translator serves each provider, picked by the (ingress, egress) schema pair.

Each provider's upstream speaks one egress schema; the translator for a pair builds that provider's adapter
(vendor quirks and Azure addressing are the OpenAI family's per-provider part). A client protocol other than
Chat Completions reaches a provider natively when the provider speaks it (:data:`NATIVE`), else through its
codec to Chat and the provider's chat adapter (:data:`CODECS`). Adapters are built once, at import, and
shared: nothing here runs per request. A new ingress protocol is a row in :data:`PROTOCOLS` and
:data:`CODECS`, and one in :data:`NATIVE` per provider that speaks it.
"""

from __future__ import annotations

from collections.abc import Callable

from modelyard_proxy.providers.anthropic_messages_to_anthropic_messages.adapter import AnthropicPassthroughAdapter
from modelyard_proxy.providers.anthropic_messages_to_openai_chat.codec import MESSAGES_CODEC
from modelyard_proxy.providers.base import ProviderAdapter
from modelyard_proxy.providers.ingress.anthropic_messages import MESSAGES
from modelyard_proxy.providers.ingress.chain import ChainedAdapter, ChatCodec
from modelyard_proxy.providers.ingress.openai_chat import CHAT
from modelyard_proxy.providers.ingress.openai_responses import RESPONSES
from modelyard_proxy.providers.ingress.protocol import IngressProtocol
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_bedrock_converse.adapter import BedrockAdapter
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import OpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.azure import AzureOpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS
from modelyard_proxy.providers.openai_responses_to_openai_chat.codec import ResponsesCodec
from modelyard_proxy.providers.openai_responses_to_openai_responses.adapter import (
    AzureResponsesAdapter,
    ResponsesPassthroughAdapter,
)
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_proxy.providers.vertex_ai.adapter import ByPublisher, VertexAdapter
from modelyard_proxy.providers.vertex_ai.anthropic import VertexAnthropicPassthroughAdapter
from modelyard_proxy.providers.vertex_ai.gemini import VertexGeminiAdapter
from modelyard_routing import Provider

Translator = Callable[[Provider], ProviderAdapter]

#: The schema each provider's upstream speaks for chat.
EGRESS: dict[Provider, Schema] = {
    **dict.fromkeys(QUIRKS, Schema.OPENAI_CHAT),
    Provider.AZURE_OPENAI: Schema.OPENAI_CHAT,
    Provider.ANTHROPIC: Schema.ANTHROPIC_MESSAGES,
    Provider.GEMINI: Schema.GEMINI_GENERATE_CONTENT,
    Provider.BEDROCK: Schema.BEDROCK_CONVERSE,
    Provider.VERTEX_AI: Schema.VERTEX_AI,
}


def _openai_family(provider: Provider) -> ProviderAdapter:
    return AzureOpenAIAdapter() if provider is Provider.AZURE_OPENAI else OpenAIAdapter(QUIRKS[provider])


def _anthropic(_: Provider) -> ProviderAdapter:
    return AnthropicAdapter()


def _gemini(_: Provider) -> ProviderAdapter:
    return GeminiAdapter()


def _bedrock(_: Provider) -> ProviderAdapter:
    return BedrockAdapter()


def _anthropic_passthrough(_: Provider) -> ProviderAdapter:
    return AnthropicPassthroughAdapter()


def _vertex(_: Provider) -> ProviderAdapter:
    return VertexAdapter()


def _vertex_messages(_: Provider) -> ProviderAdapter:
    """Claude on Vertex speaks Messages itself; Gemini on Vertex is reached through the codec."""
    gemini = ChainedAdapter(MESSAGES_CODEC, VertexGeminiAdapter())
    return ByPublisher(google=gemini, anthropic=VertexAnthropicPassthroughAdapter())


#: The translator for each pair. An adapter serves embeddings beside chat, so the embeddings pairs name the
#: translator of the same egress family.
TRANSLATORS: dict[Pair, Translator] = {
    Pair(Schema.OPENAI_CHAT, Schema.OPENAI_CHAT): _openai_family,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.OPENAI_EMBEDDINGS): _openai_family,
    Pair(Schema.OPENAI_CHAT, Schema.ANTHROPIC_MESSAGES): _anthropic,
    Pair(Schema.OPENAI_CHAT, Schema.GEMINI_GENERATE_CONTENT): _gemini,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.GEMINI_EMBED_CONTENT): _gemini,
    Pair(Schema.OPENAI_CHAT, Schema.BEDROCK_CONVERSE): _bedrock,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.BEDROCK_INVOKE): _bedrock,
    Pair(Schema.OPENAI_CHAT, Schema.VERTEX_AI): _vertex,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.VERTEX_AI_PREDICT): _vertex,
}


def translator_for(pair: Pair) -> Translator:
    """The translator registered for ``pair``; a pair without one is a gap in this table, not bad input."""
    try:
        return TRANSLATORS[pair]
    except KeyError:
        msg = f"no translator from {pair.ingress.value} to {pair.egress.value}"
        raise LookupError(msg) from None


#: The client protocols served, each on its own endpoint.
PROTOCOLS: dict[Schema, IngressProtocol] = {
    CHAT.schema: CHAT,
    MESSAGES.schema: MESSAGES,
    RESPONSES.schema: RESPONSES,
}

#: How each client protocol other than Chat Completions is converted to Chat and back.
CODECS: dict[Schema, ChatCodec] = {
    MESSAGES_CODEC.schema: MESSAGES_CODEC,
    Schema.OPENAI_RESPONSES: ResponsesCodec(),
}

#: Providers that speak a client protocol themselves: (provider, ingress) -> the pass-through translator.
NATIVE: dict[tuple[Provider, Schema], Translator] = {
    (Provider.ANTHROPIC, Schema.ANTHROPIC_MESSAGES): _anthropic_passthrough,
    (Provider.OPENAI, Schema.OPENAI_RESPONSES): lambda provider: ResponsesPassthroughAdapter(QUIRKS[provider]),
    (Provider.AZURE_OPENAI, Schema.OPENAI_RESPONSES): lambda _: AzureResponsesAdapter(),
    (Provider.VERTEX_AI, Schema.ANTHROPIC_MESSAGES): _vertex_messages,
}


def _build(provider: Provider, ingress: Schema, chat: ProviderAdapter) -> ProviderAdapter:
    if ingress is Schema.OPENAI_CHAT:
        return chat
    if (native := NATIVE.get((provider, ingress))) is not None:
        return native(provider)
    return ChainedAdapter(CODECS[ingress], chat)


def _adapters() -> dict[tuple[Provider, Schema], ProviderAdapter]:
    adapters: dict[tuple[Provider, Schema], ProviderAdapter] = {}
    for provider, egress in EGRESS.items():
        chat = translator_for(Pair(Schema.OPENAI_CHAT, egress))(provider)
        for ingress in PROTOCOLS:
            adapters[provider, ingress] = _build(provider, ingress, chat)
    return adapters


_ADAPTERS = _adapters()


def adapter_for(provider: Provider, ingress: Schema = Schema.OPENAI_CHAT) -> ProviderAdapter:
    """The adapter serving ``ingress`` clients from ``provider``; every pair of the two has one."""
    return _ADAPTERS[provider, ingress]
