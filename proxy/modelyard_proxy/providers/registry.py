"""Which translator serves each provider, picked by the (ingress, egress) schema pair.

Each provider's upstream speaks one egress schema; the translator for a pair builds that provider's adapter
(vendor quirks and Azure addressing are the OpenAI family's per-provider part). Adapters are built once, at
import, and shared: nothing here runs per request. A new ingress protocol is one row per egress schema.
"""

from __future__ import annotations

from collections.abc import Callable

from modelyard_proxy.providers.base import ProviderAdapter
from modelyard_proxy.providers.openai_chat_to_anthropic_messages.adapter import AnthropicAdapter
from modelyard_proxy.providers.openai_chat_to_gemini.adapter import GeminiAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.adapter import OpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.azure import AzureOpenAIAdapter
from modelyard_proxy.providers.openai_chat_to_openai_chat.quirks import QUIRKS
from modelyard_proxy.providers.schemas import Pair, Schema
from modelyard_routing import Provider

Translator = Callable[[Provider], ProviderAdapter]

#: The schema each provider's upstream speaks for chat.
EGRESS: dict[Provider, Schema] = {
    **dict.fromkeys(QUIRKS, Schema.OPENAI_CHAT),
    Provider.AZURE_OPENAI: Schema.OPENAI_CHAT,
    Provider.ANTHROPIC: Schema.ANTHROPIC_MESSAGES,
    Provider.GEMINI: Schema.GEMINI_GENERATE_CONTENT,
}


def _openai_family(provider: Provider) -> ProviderAdapter:
    return AzureOpenAIAdapter() if provider is Provider.AZURE_OPENAI else OpenAIAdapter(QUIRKS[provider])


def _anthropic(_: Provider) -> ProviderAdapter:
    return AnthropicAdapter()


def _gemini(_: Provider) -> ProviderAdapter:
    return GeminiAdapter()


#: The translator for each pair. An adapter serves embeddings beside chat, so the embeddings pairs name the
#: translator of the same egress family.
TRANSLATORS: dict[Pair, Translator] = {
    Pair(Schema.OPENAI_CHAT, Schema.OPENAI_CHAT): _openai_family,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.OPENAI_EMBEDDINGS): _openai_family,
    Pair(Schema.OPENAI_CHAT, Schema.ANTHROPIC_MESSAGES): _anthropic,
    Pair(Schema.OPENAI_CHAT, Schema.GEMINI_GENERATE_CONTENT): _gemini,
    Pair(Schema.OPENAI_EMBEDDINGS, Schema.GEMINI_EMBED_CONTENT): _gemini,
}


def translator_for(pair: Pair) -> Translator:
    """The translator registered for ``pair``; a pair without one is a gap in this table, not bad input."""
    try:
        return TRANSLATORS[pair]
    except KeyError:
        msg = f"no translator from {pair.ingress.value} to {pair.egress.value}"
        raise LookupError(msg) from None


_ADAPTERS: dict[Provider, ProviderAdapter] = {
    provider: translator_for(Pair(Schema.OPENAI_CHAT, egress))(provider) for provider, egress in EGRESS.items()
}


def adapter_for(provider: Provider) -> ProviderAdapter:
    """The adapter for ``provider``; every :class:`Provider` has one."""
    return _ADAPTERS[provider]
