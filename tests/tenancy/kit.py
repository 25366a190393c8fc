"""Consumers, asks and a settable clock for the counter tests."""

from __future__ import annotations

import datetime
import uuid

from modelyard_proxy.tenancy import Ask
from modelyard_routing.consumer_spec import BudgetPeriod, StoreFailure
from modelyard_routing.table import Budget, Consumer, ConsumerLimits

NAME = "teams/search"
#: An afternoon far from any period's end, and in the future: the store expires keys by its own clock.
NOON = datetime.datetime(2036, 12, 6, 14, 0, 0, tzinfo=datetime.UTC).timestamp()


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def consumer(
    name: str = NAME,
    *,
    rpm: int | None = None,
    tpm: int | None = None,
    concurrent: int | None = None,
    budgets: dict[BudgetPeriod, float] | None = None,
    on_store_failure: StoreFailure = StoreFailure.FAIL_OPEN,
    labels: dict[str, str] | None = None,
) -> Consumer:
    return Consumer(
        name=name,
        key_sha256=("0" * 64,),
        models=("*",),
        limits=ConsumerLimits(requests_per_minute=rpm, tokens_per_minute=tpm, concurrent_requests=concurrent),
        budgets=tuple(Budget(period=period, usd=usd) for period, usd in (budgets or {}).items()),
        on_store_failure=on_store_failure,
        labels=labels or {},
    )


def ask(who: Consumer, *, tokens: int = 10, cost: float = 0.0, hold: float = 300.0) -> Ask:
    return Ask(consumer=who, request_id=uuid.uuid4().hex, tokens=tokens, cost_usd=cost, hold_seconds=hold)


def utc(text: str) -> float:
    """``2026-12-06T17:59:50`` (UTC) as epoch seconds."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC).timestamp()
