"""Micro-USD amounts: rounded up, but not for float noise in the sixth decimal."""

from __future__ import annotations

import math
import random

from modelyard_proxy.tenancy.ledger import MICRO, to_micro_usd


def _by_rounding(usd: float) -> int:
    """The definition: round to six decimals (dropping float noise), then up."""
    return max(0, math.ceil(round(usd * MICRO, 6)))


def test_whole_amounts_stay_whole_and_the_rest_rounds_up() -> None:
    assert to_micro_usd(0.1 + 0.2) == 300_000  # 300000.00000000006 micro-USD is float noise
    assert to_micro_usd(0.0012) == 1200
    assert to_micro_usd(0.0000015) == 2  # 1.5 micro-USD: a hold never understates the worst case
    assert to_micro_usd(1.0000000001) == 1_000_001  # 0.0001 micro-USD over a whole one still rounds up
    assert to_micro_usd(1.0000000000001) == 1_000_000  # below the sixth decimal: noise
    assert to_micro_usd(-0.5) == 0
    assert to_micro_usd(0.0) == 0


def test_it_agrees_with_rounding_to_six_decimals_then_up() -> None:
    rng = random.Random(7)
    # Prices per million tokens times token counts, as the worst-case estimate computes them ...
    amounts = [tokens * price / 1_000_000 for tokens in range(0, 5000, 7) for price in (0.075, 0.4, 1.6, 2.5, 15.0)]
    # ... amounts just off a whole micro-USD on either side, where the rounding decides ...
    for whole in (1, 7, 999_999, 123_456_789, 10**12):
        for offset in (-6e-7, -5.000001e-7, -5e-7, -4.99999e-7, -1e-9, 0.0, 1e-9, 4.99999e-7, 5e-7, 6e-7):
            amounts.append((whole + offset) / MICRO)
    # ... and anything at all.
    amounts += [rng.uniform(0, 10) for _ in range(20_000)] + [rng.uniform(0, 1e-5) for _ in range(20_000)]
    for usd in amounts:
        assert to_micro_usd(usd) == _by_rounding(usd), usd
