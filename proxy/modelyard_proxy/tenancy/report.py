"""The contract's usage report from either backend's raw counts (micro-USD, per period and per day)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from modelyard_proxy.tenancy.ledger import PeriodHold, from_micro_usd
from modelyard_proxy.tenancy.periods import rfc3339
from modelyard_routing.table import Consumer
from modelyard_routing.usage import ConsumerUsage, DayUsage, PeriodUsage


@dataclasses.dataclass(slots=True)
class DayCounts:
    """One model's use on one day: requests, tokens and micro-USD."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    micro_usd: int = 0

    def add(self, input_tokens: int, output_tokens: int, micro_usd: int) -> None:
        self.requests += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.micro_usd += micro_usd


@dataclasses.dataclass(frozen=True, slots=True)
class PeriodCounts:
    """One current period's settled and held micro-USD."""

    hold: PeriodHold
    spent: int
    held: int


def consumer_usage(
    consumer: Consumer, periods: Iterable[PeriodCounts], days: Mapping[str, Mapping[str, DayCounts]]
) -> ConsumerUsage:
    """``days`` maps each day (newest first) to its models' counts."""
    budgets = {budget.period: budget.usd for budget in consumer.budgets}
    period_usage = []
    for counts in periods:
        budget = budgets.get(counts.hold.period)
        spent, held = from_micro_usd(counts.spent), from_micro_usd(counts.held)
        period_usage.append(
            PeriodUsage(
                period=counts.hold.period,
                budget_usd=budget,
                spent_usd=spent,
                held_usd=held,
                remaining_usd=None if budget is None else max(0.0, round(budget - spent - held, 6)),
                resets_at=rfc3339(counts.hold.ends_at),
            )
        )
    day_usage = [
        DayUsage(
            day=day,
            model=model,
            requests=counts.requests,
            input_tokens=counts.input_tokens,
            output_tokens=counts.output_tokens,
            cost_usd=from_micro_usd(counts.micro_usd),
        )
        for day, models in days.items()
        for model, counts in sorted(models.items())
    ]
    return ConsumerUsage(
        name=consumer.name, labels=dict(consumer.labels), periods=tuple(period_usage), days=tuple(day_usage)
    )
