"""Tokens and cost: every provider's usage, normalised to one shape, priced per upstream model.

Adapters already translate usage into OpenAI's ``usage`` object (Anthropic's cache reads folded into the
prompt count, Gemini's thoughts into completion tokens), so this module reads one shape, plus the spellings
OpenAI-compatible vendors add (DeepSeek's ``prompt_cache_hit_tokens``). Cost is
``(input - cached) * input price + cached * cached price + output * output price``, per million tokens;
reasoning tokens are part of ``output`` and billed as output, as every provider does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from modelyard_routing.table import ModelPrice

MILLION = 1_000_000


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one answer; ``cached`` is part of ``input``, ``reasoning`` part of ``output``."""

    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(usage: Any) -> Usage | None:
    """The counts in an OpenAI-shaped ``usage`` object (None when there is none)."""
    if not isinstance(usage, dict):
        return None
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _int(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    cached = cached or _int(usage.get("prompt_cache_hit_tokens"))  # DeepSeek
    reasoning = _int(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    prompt = _int(usage.get("prompt_tokens"))
    return Usage(
        input=prompt, output=_int(usage.get("completion_tokens")), cached=min(cached, prompt), reasoning=reasoning
    )


def cost_usd(usage: Usage, price: ModelPrice) -> float:
    """What ``usage`` cost at ``price``, in USD."""
    cached_price = price.input if price.cached_input is None else price.cached_input
    total = (usage.input - usage.cached) * price.input + usage.cached * cached_price + usage.output * price.output
    return total / MILLION
