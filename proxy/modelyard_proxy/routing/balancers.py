"""Attempt plans: the order a request tries a route's targets, per balancing strategy and health.

The first target of a plan takes the traffic; the rest are its fallbacks. Targets with an open breaker
drop out, unless every target is open, when the one closest to probing again is still tried rather than
failing closed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from modelyard_proxy.routing.health import HealthRegistry


class Candidate(Protocol):
    """What a balancer needs of a target."""

    @property
    def target_id(self) -> str: ...

    @property
    def weight(self) -> int: ...

    @property
    def priority(self) -> int: ...


T = TypeVar("T", bound=Candidate)


def plan(
    strategy: str,
    targets: Sequence[T],
    health: HealthRegistry,
    rng: random.Random | None = None,
    *,
    one_per_priority: bool = False,
) -> list[T]:
    """The targets in the order to try them.

    ``one_per_priority`` says ``targets`` are sorted by priority and no two share one (the common case, known
    when the table is loaded): the priority order is then the targets' own, with nothing to shuffle.
    """
    rng = rng or random.Random()  # noqa: S311  # load spreading, not cryptography
    if strategy == "weighted":
        ordered = _weighted_first(targets, rng)
    elif strategy == "latency":
        ordered = _least_latency(targets, health, rng)
    elif one_per_priority:  # priority and hedge
        ordered = list(targets)
    else:
        ordered = by_priority(targets, rng)
    usable = [t for t in ordered if health[t.target_id].available()]
    if usable:
        return usable
    best = min(ordered, key=lambda t: health[t.target_id].reopens_in())
    return [best]


def by_priority(targets: Sequence[T], rng: random.Random) -> list[T]:
    """Lowest priority value first; within one priority a weighted shuffle (weight 0 goes last)."""
    ordered: list[T] = []
    for level in sorted({t.priority for t in targets}):
        ordered += weighted_shuffle([t for t in targets if t.priority == level], rng)
    return ordered


def weighted_shuffle(targets: Sequence[T], rng: random.Random) -> list[T]:
    """A weighted random order (sampling without replacement); zero weights keep their order at the end."""
    keyed = [(rng.random() ** (1 / t.weight), t) for t in targets if t.weight > 0]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [t for _, t in keyed] + [t for t in targets if t.weight == 0]


def _weighted_first(targets: Sequence[T], rng: random.Random) -> list[T]:
    """A weighted pick over every target first, then the others in priority order."""
    weighted = [t for t in targets if t.weight > 0]
    if not weighted:
        return by_priority(targets, rng)
    first = rng.choices(weighted, weights=[t.weight for t in weighted])[0]
    return [first, *(t for t in by_priority(targets, rng) if t is not first)]


def _least_latency(targets: Sequence[T], health: HealthRegistry, rng: random.Random) -> list[T]:
    """Power of two choices: of two random targets the one with the lower observed latency goes first.

    A target never measured counts as fastest, so every target gets sampled.
    """
    weighted = [t for t in targets if t.weight > 0 and health[t.target_id].available()] or list(targets)
    rest = by_priority(targets, rng)
    if len(weighted) < 2:
        return rest
    a, b = rng.sample(weighted, 2)
    first = min((a, b), key=lambda t: health[t.target_id].latency or 0.0)
    return [first, *(t for t in rest if t is not first)]
