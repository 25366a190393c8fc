"""From a backend's raw verdict to the caller's ``Admission``: rate headers, retry times and refusal messages.

Both backends decide the same way (the Lua script in the store, ``LocalCounters`` in process) and report the
bucket levels and the budget that fell short; the arithmetic and the wording live here once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal, NamedTuple

from modelyard_proxy.tenancy.ledger import Admission, Ask, Lease, RateState, Refusal, from_micro_usd
from modelyard_proxy.tenancy.periods import rfc3339
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.table import Consumer, ConsumerLimits

Outcome = Literal["ok", "requests", "tokens", "tokens_oversize", "concurrency", "budget"]
MINUTE_S = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Shortfall:
    """The first budget the ask did not fit in, as the backend saw it (micro-USD)."""

    period: BudgetPeriod
    budget: int
    spent: int
    held: int
    ends_at: int


class Verdict(NamedTuple):
    """A backend's decision and the state behind it; ``lease`` is set exactly when ``outcome`` is ok."""

    outcome: Outcome
    now_s: float
    #: Leaky-bucket levels after the decision (a refused request adds nothing): requests and tokens in the
    #: last minute's worth, draining continuously at the limit's rate.
    request_level: float
    token_level: float
    lease: Lease | None = None
    shortfall: Shortfall | None = None


def rate_state(limits: ConsumerLimits, request_level: float, token_level: float) -> RateState:
    """What the ``x-ratelimit-*`` headers carry for the consumer's per-minute limits."""
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    # Positional: a named tuple built by keyword costs twice as much, and this runs for every request.
    return RateState(
        rpm,
        None if rpm is None else max(0, math.floor(rpm - request_level + 1e-9)),
        None if rpm is None else request_level * MINUTE_S / rpm,
        tpm,
        None if tpm is None else max(0, math.floor(tpm - token_level + 1e-9)),
        None if tpm is None else token_level * MINUTE_S / tpm,
    )


#: When to try again after the concurrency limit: requests end at no predictable time.
CONCURRENCY_RETRY_S = 1.0


def admission(ask: Ask, verdict: Verdict) -> Admission:
    """The caller's answer for ``verdict``."""
    rates = rate_state(ask.consumer.limits, verdict.request_level, verdict.token_level)
    if verdict.outcome == "ok":
        assert verdict.lease is not None
        return Admission(verdict.lease, None, rates)
    return Admission(None, _refusal(ask, verdict), rates)


def store_unavailable(consumer: Consumer) -> Admission:
    """A FailClosed consumer's answer while the counter store cannot be reached."""
    message = f"consumer {consumer.name}'s limits cannot be checked: the counter store is unreachable"
    return Admission(lease=None, refusal=Refusal("store_unavailable", message, retry_after_s=1.0))


def _refusal(ask: Ask, verdict: Verdict) -> Refusal:
    name, limits = ask.consumer.name, ask.consumer.limits
    if verdict.outcome == "requests":
        assert limits.requests_per_minute is not None
        rpm = limits.requests_per_minute
        wait = (verdict.request_level + 1 - rpm) * MINUTE_S / rpm
        return Refusal("requests", f"consumer {name} is over its {rpm} requests per minute", _seconds(wait))
    if verdict.outcome in ("tokens", "tokens_oversize"):
        assert limits.tokens_per_minute is not None
        tpm = limits.tokens_per_minute
        if verdict.outcome == "tokens_oversize":
            message = (
                f"this request may use up to {ask.tokens} tokens, more than consumer {name}'s whole "
                f"{tpm} tokens per minute, so it can never be admitted: lower max_tokens or shorten the input"
            )
            return Refusal("tokens", message)
        wait = (verdict.token_level + ask.tokens - tpm) * MINUTE_S / tpm
        return Refusal("tokens", f"consumer {name} is over its {tpm} tokens per minute", _seconds(wait))
    if verdict.outcome == "concurrency":
        cap = limits.concurrent_requests
        message = f"consumer {name} already has its {cap} concurrent requests in flight"
        return Refusal("concurrency", message, CONCURRENCY_RETRY_S)  # a slot frees when any of them ends
    assert verdict.shortfall is not None
    return _budget_refusal(name, ask, verdict.now_s, verdict.shortfall)


def _budget_refusal(name: str, ask: Ask, now_s: float, short: Shortfall) -> Refusal:
    resets_at = rfc3339(short.ends_at)
    budget = f"consumer {name}'s {short.period} budget of {usd(from_micro_usd(short.budget))}"
    until_reset = _seconds(short.ends_at - now_s)
    if short.spent >= short.budget:
        message = f"{budget} is spent; it resets at {resets_at}"
        return Refusal("budget", message, until_reset, short.period, resets_at)
    left = from_micro_usd(max(0, short.budget - short.spent - short.held))
    in_flight = f" after {usd(from_micro_usd(short.held))} held by requests in flight" if short.held else ""
    message = (
        f"{budget} has {usd(left)} left{in_flight}, less than this request's worst-case cost of "
        f"{usd(ask.cost_usd)}; it resets at {resets_at}"
    )
    # Requests in flight may settle for less than they hold, so a retry may fit before the reset.
    waits_for_reset = short.spent + ask.cost_usd * 1_000_000 > short.budget
    return Refusal("budget", message, until_reset if waits_for_reset else None, short.period, resets_at)


def usd(amount: float) -> str:
    """Dollars with cents; sub-cent amounts keep their significant digits."""
    if amount == 0 or amount >= 0.01:
        return f"${amount:,.2f}"
    return f"${amount:.6f}".rstrip("0")


def _seconds(value: float) -> float:
    """A retry time never shorter than a millisecond (a zero would invite an immediate, futile retry)."""
    return max(0.001, round(value, 3))
