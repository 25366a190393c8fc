"""Built-in list prices (USD per million tokens) for well-known models: defaults, not a contract.

They are what the providers published for pay-as-you-go API use and go stale; a ``ProviderCredential``'s
``spec.prices`` overrides any entry (and prices models not listed here). A model with no price anywhere
costs nothing in the accounting, which says so (``cost: null`` in the audit log, no cost header).
Dated or suffixed names (``gpt-4o-2024-08-06``, ``claude-sonnet-4-5-20250929``, Vertex AI's
``claude-sonnet-4-5@20250929``) match their longest listed prefix. Bedrock model ids match with or without a
cross-region inference profile's geography (``us.anthropic.claude-…``, ``eu.``, ``apac.``, ``global.``).
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from modelyard_routing.table import Credential, ModelPrice

T = TypeVar("T")

DEFAULT_PRICES: dict[str, ModelPrice] = {
    # OpenAI (also Azure deployments named after the model)
    "gpt-4o": ModelPrice(input=2.5, output=10.0, cached_input=1.25),
    "gpt-4o-mini": ModelPrice(input=0.15, output=0.6, cached_input=0.075),
    "gpt-4.1": ModelPrice(input=2.0, output=8.0, cached_input=0.5),
    "gpt-4.1-mini": ModelPrice(input=0.4, output=1.6, cached_input=0.1),
    "gpt-4.1-nano": ModelPrice(input=0.1, output=0.4, cached_input=0.025),
    "o3": ModelPrice(input=2.0, output=8.0, cached_input=0.5),
    "o4-mini": ModelPrice(input=1.1, output=4.4, cached_input=0.275),
    "text-embedding-3-small": ModelPrice(input=0.02, output=0.0),
    "text-embedding-3-large": ModelPrice(input=0.13, output=0.0),
    # Anthropic (cache reads at a tenth of the input price)
    "claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cached_input=0.3),
    "claude-sonnet-4": ModelPrice(input=3.0, output=15.0, cached_input=0.3),
    "claude-opus-4-1": ModelPrice(input=15.0, output=75.0, cached_input=1.5),
    "claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cached_input=0.1),
    "claude-3-5-haiku": ModelPrice(input=0.8, output=4.0, cached_input=0.08),
    # Google Gemini
    "gemini-2.5-pro": ModelPrice(input=1.25, output=10.0, cached_input=0.31),
    "gemini-2.5-flash": ModelPrice(input=0.3, output=2.5, cached_input=0.075),
    "gemini-2.5-flash-lite": ModelPrice(input=0.1, output=0.4, cached_input=0.025),
    "gemini-2.0-flash": ModelPrice(input=0.1, output=0.4, cached_input=0.025),
    # Mistral, DeepSeek
    "mistral-large-latest": ModelPrice(input=2.0, output=6.0),
    "mistral-small-latest": ModelPrice(input=0.1, output=0.3),
    "deepseek-chat": ModelPrice(input=0.27, output=1.1, cached_input=0.07),
    "deepseek-reasoner": ModelPrice(input=0.55, output=2.19, cached_input=0.14),
    # Vertex AI embeddings (its Gemini and Claude models share the names above: claude-sonnet-4-5@20250929)
    "gemini-embedding-001": ModelPrice(input=0.15, output=0.0),
    "text-embedding-005": ModelPrice(input=0.025, output=0.0),
    # AWS Bedrock, on-demand in us-east-1 (cross-region profiles such as us.anthropic.… match the same rows)
    "anthropic.claude-sonnet-4-5": ModelPrice(input=3.0, output=15.0, cached_input=0.3),
    "anthropic.claude-sonnet-4": ModelPrice(input=3.0, output=15.0, cached_input=0.3),
    "anthropic.claude-opus-4-1": ModelPrice(input=15.0, output=75.0, cached_input=1.5),
    "anthropic.claude-haiku-4-5": ModelPrice(input=1.0, output=5.0, cached_input=0.1),
    "anthropic.claude-3-5-haiku": ModelPrice(input=0.8, output=4.0, cached_input=0.08),
    "amazon.nova-premier": ModelPrice(input=2.5, output=12.5, cached_input=0.625),
    "amazon.nova-pro": ModelPrice(input=0.8, output=3.2, cached_input=0.2),
    "amazon.nova-lite": ModelPrice(input=0.06, output=0.24, cached_input=0.015),
    "amazon.nova-micro": ModelPrice(input=0.035, output=0.14, cached_input=0.00875),
    "meta.llama3-3-70b-instruct": ModelPrice(input=0.72, output=0.72),
    "mistral.mistral-large-2407": ModelPrice(input=2.0, output=6.0),
    "deepseek.r1": ModelPrice(input=1.35, output=5.4),
    "openai.gpt-oss-120b": ModelPrice(input=0.15, output=0.6),
    "amazon.titan-embed-text-v2": ModelPrice(input=0.02, output=0.0),
    "cohere.embed-english-v3": ModelPrice(input=0.1, output=0.0),
    "cohere.embed-multilingual-v3": ModelPrice(input=0.1, output=0.0),
}

#: The most output tokens each model family may produce in one answer, as the providers document them. A
#: budget reserves this much output for a request that sets no ``max_tokens`` of its own.
DEFAULT_OUTPUT_LIMITS: dict[str, int] = {
    "gpt-4o": 16_384,
    "gpt-4o-mini": 16_384,
    "gpt-4.1": 32_768,
    "gpt-4.1-mini": 32_768,
    "gpt-4.1-nano": 32_768,
    "o3": 100_000,
    "o4-mini": 100_000,
    "claude-sonnet-4-5": 64_000,
    "claude-sonnet-4": 64_000,
    "claude-opus-4-1": 32_000,
    "claude-haiku-4-5": 64_000,
    "claude-3-5-haiku": 8_192,
    "gemini-2.5-pro": 65_536,
    "gemini-2.5-flash": 65_536,
    "gemini-2.5-flash-lite": 65_536,
    "gemini-2.0-flash": 8_192,
    "mistral-large-latest": 32_768,
    "mistral-small-latest": 32_768,
    "deepseek-chat": 8_192,
    "deepseek-reasoner": 65_536,
    "anthropic.claude-sonnet-4-5": 64_000,
    "anthropic.claude-sonnet-4": 64_000,
    "anthropic.claude-opus-4-1": 32_000,
    "anthropic.claude-haiku-4-5": 64_000,
    "anthropic.claude-3-5-haiku": 8_192,
    "amazon.nova-premier": 32_000,
    "amazon.nova-pro": 10_000,
    "amazon.nova-lite": 10_000,
    "amazon.nova-micro": 10_000,
}
#: Output reserved for a model whose limit is unknown and a request that sets none.
UNKNOWN_OUTPUT_LIMIT = 32_768


#: What follows a family's name in a dated or versioned model name: ``-2024-08-06``, ``@20250929``, ``-v1:0``.
_VERSION_SEPARATORS = ("-", "@", ":")
#: A Bedrock cross-region inference profile's geography in front of a model id (``us.anthropic.claude-…``).
_INFERENCE_PROFILE = re.compile(r"^(?:us|us-gov|eu|apac|jp|au|ca|global)\.(?=[a-z0-9-]+\.)")


class _PrefixTable(Generic[T]):
    """Entries by model family: an exact name, else the longest family a dated or suffixed name (``name-…``)
    belongs to. Names are sorted longest first once, not at every lookup."""

    def __init__(self, entries: dict[str, T]) -> None:
        self.entries = entries
        self.longest_first = sorted(entries, key=len, reverse=True)

    def get(self, model: str) -> T | None:
        model = _INFERENCE_PROFILE.sub("", model, count=1)
        exact = self.entries.get(model)
        if exact is not None:
            return exact
        return next(
            (
                self.entries[name]
                for name in self.longest_first
                if model.startswith(name) and model[len(name) : len(name) + 1] in _VERSION_SEPARATORS
            ),
            None,
        )


_PRICES = _PrefixTable(DEFAULT_PRICES)
_OUTPUT_LIMITS = _PrefixTable(DEFAULT_OUTPUT_LIMITS)


def default_price(model: str) -> ModelPrice | None:
    """The built-in price of ``model``: an exact entry, else the longest entry it starts with (``name-…``)."""
    return _PRICES.get(model)


def output_limit(model: str) -> int:
    """The most output tokens ``model`` may produce in one answer (a safe ceiling when it is not listed)."""
    return _OUTPUT_LIMITS.get(model) or UNKNOWN_OUTPUT_LIMIT


def price_for(credential: Credential, model: str) -> ModelPrice | None:
    """The credential's own price for ``model``, else the built-in default, else None (unknown)."""
    return credential.prices.get(model) or default_price(model)
