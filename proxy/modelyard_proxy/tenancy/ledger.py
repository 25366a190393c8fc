"""The values the counters trade in: what a request asks for, the answer, and the lease it settles later.

Those made for every request (ask, lease, rate state, admission, spend) are named tuples: immutable like a
frozen dataclass, but built in a fraction of its time (a frozen dataclass sets each field through
``object.__setattr__``: ~2 µs for a lease, a fifth of the consumer's own Python per request).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer

RefusalReason = Literal["requests", "tokens", "concurrency", "budget", "store_unavailable"]
Backend = Literal["shared", "local"]

MICRO = 1_000_000


#: Within this of a whole number, a micro-USD amount rounds to it at six decimals; beyond ``_CLEAR`` from
#: any, rounding cannot move its ceiling. Only amounts in between need ``round(…, 6)`` (a slow call).
_NOISE, _CLEAR = 4e-7, 6e-7


def to_micro_usd(usd: float) -> int:
    """USD as whole micro-dollars, rounded up: a hold never understates the worst case. Float noise in the
    sixth decimal (0.1 + 0.2) does not round up a whole amount: ``ceil(round(micro, 6))``, computed fast."""
    micro = usd * MICRO
    ceiling = math.ceil(micro)
    gap = ceiling - micro
    if gap < _NOISE or gap > 1 - _NOISE:
        return max(0, round(micro))
    if _CLEAR < gap < 1 - _CLEAR:
        return max(0, ceiling)
    return max(0, math.ceil(round(micro, 6)))


def from_micro_usd(micro: int) -> float:
    return micro / MICRO


class Ask(NamedTuple):
    """One request asking to start, with its worst case charged now and corrected when it settles."""

    consumer: Consumer
    request_id: str
    #: Input estimate plus the output limit: charged to tokens per minute now.
    tokens: int
    #: The worst-case cost: held against every budget period now (0.0 when the model has no price).
    cost_usd: float
    #: How long the hold and the concurrency slot live if this pod dies before settling.
    hold_seconds: float


class RateState(NamedTuple):
    """What OpenAI-style ``x-ratelimit-*`` headers say; None where the consumer has no such limit."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request may not start: the reason, a message naming the limit, and when to try again."""

    reason: RefusalReason
    message: str
    #: Seconds until a retry can succeed; None when waiting would not help or the time is unknown.
    retry_after_s: float | None = None
    #: The budget period that refused (reason ``budget`` only).
    period: BudgetPeriod | None = None
    #: When that period's budget starts again (RFC 3339, UTC).
    resets_at: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodHold:
    """The calendar period a lease holds its cost in, so the settlement lands in the same one."""

    period: BudgetPeriod
    #: ``2026-12-06T17``, ``2026-12-06`` or ``2026-12``: the period's start, part of the store's key.
    label: str
    #: When the period ends (epoch seconds): its keys expire some time after.
    ends_at: int


class Lease(NamedTuple):
    """A granted request's handle for ``settle`` or ``release``: opaque to callers."""

    lease_id: str
    request_id: str
    consumer: str
    #: Tokens charged to tokens per minute at admission.
    tokens: int
    #: The consumer's tokens-per-minute limit at admission (the correction drains at that rate).
    tokens_per_minute: int | None
    #: Micro-USD held in each period of ``held_in``.
    held_micro_usd: int
    #: The hour, day and month at admission: the settlement's spend lands in these.
    periods: tuple[PeriodHold, ...]
    #: When the hold and the concurrency slot expire (epoch microseconds, the backend's clock).
    expires_at_us: int
    backend: Backend
    #: The periods with a budget, the only ones the cost is held in.
    held_in: tuple[BudgetPeriod, ...] = ()
    #: How the backend names the lease when it finishes it (the shared store: its marker key and its member
    #: in the leases zset, encoded once at admission).
    handle: bytes = b""


class Admission(NamedTuple):
    """The answer to an ``Ask``: a lease to settle, or a refusal; and the rate state for response headers."""

    lease: Lease | None
    refusal: Refusal | None
    rates: RateState = RateState()


class Spend(NamedTuple):
    """What a finished request really used, for its settlement."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
