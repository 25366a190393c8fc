"""Which adapter speaks to each provider: one shared, stateless instance per provider."""

from __future__ import annotations

from modelyard_proxy.providers.anthropic import AnthropicAdapter
from modelyard_proxy.providers.azure import AzureOpenAIAdapter
from modelyard_proxy.providers.base import ProviderAdapter
from modelyard_proxy.providers.gemini import GeminiAdapter
from modelyard_proxy.providers.openai import OpenAIAdapter
from modelyard_proxy.providers.quirks import QUIRKS
from modelyard_routing import Provider

_ADAPTERS: dict[Provider, ProviderAdapter] = {
    **{provider: OpenAIAdapter(quirks) for provider, quirks in QUIRKS.items()},
    Provider.AZURE_OPENAI: AzureOpenAIAdapter(),
    Provider.ANTHROPIC: AnthropicAdapter(),
    Provider.GEMINI: GeminiAdapter(),
}


def adapter_for(provider: Provider) -> ProviderAdapter:
    """The adapter for ``provider``; every :class:`Provider` has one."""
    return _ADAPTERS[provider]
