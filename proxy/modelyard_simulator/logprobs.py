"""Deterministic log probabilities for the tokens of a simulated answer.

The same token always gets the same value, so a test can compare what a gateway relays with what the
simulator sent; alternatives are visibly synthetic (``<alt1>``, ...) and always less likely.
"""

from __future__ import annotations

import hashlib


def token_logprob(token: str) -> float:
    """The chosen token's log probability, in (-0.5, 0)."""
    return -round(0.001 + hashlib.sha256(token.encode()).digest()[0] / 512, 6)


def ranked(token: str, count: int) -> list[tuple[str, float]]:
    """The ``count`` most likely tokens at the step that chose ``token``: it first, then alternatives."""
    chosen = token_logprob(token)
    return [(token, chosen), *((f"<alt{rank}>", round(chosen - 1.5 * rank, 6)) for rank in range(1, count))]
