"""What the admin port's usage endpoint answers: spend and tokens per consumer, shared by every reader.

The proxy fills it from the counter store (or its own counters without one); the operator writes it into
each ModelConsumer's status, and ``modelyard usage`` prints it. Amounts are USD; periods are UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from modelyard_routing.consumer_spec import BudgetPeriod

ADMIN_USAGE_PATH = "/admin/v1/usage"
#: How many past days of per-model usage the endpoint keeps and may be asked for (``?days=``).
MAX_USAGE_DAYS = 35


class _Report(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class PeriodUsage(_Report):
    """One calendar period of a consumer: settled spend, spend held by requests in flight, what is left."""

    period: BudgetPeriod
    #: The consumer's budget for this period, None when it has none (spend is still counted).
    budget_usd: float | None
    spent_usd: float
    held_usd: float
    #: ``budget - spent - held``, never below zero; None without a budget.
    remaining_usd: float | None
    #: When the next period starts (RFC 3339, UTC).
    resets_at: str


class DayUsage(_Report):
    """One consumer's use of one public model on one UTC day."""

    day: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ConsumerUsage(_Report):
    """Everything counted for one consumer (``namespace/name``)."""

    name: str
    labels: dict[str, str] = {}
    periods: tuple[PeriodUsage, ...] = ()
    days: tuple[DayUsage, ...] = ()


class UsageReport(_Report):
    """The endpoint's answer: where the counts live, whether that store answers, and every consumer's use."""

    #: ``shared``: one Redis-protocol store for every pod and worker; ``local``: this process only.
    store: Literal["shared", "local"]
    store_up: bool
    generated_at: str
    consumers: tuple[ConsumerUsage, ...] = ()


def merge_reports(reports: list[UsageReport]) -> UsageReport:
    """One report for a pod's workers: a shared store's counts are the same in every worker (the first is
    taken); per-process counts are summed, since each worker counted only its own requests."""
    if not reports:
        msg = "no usage report to merge"
        raise ValueError(msg)
    first = reports[0]
    if first.store == "shared":
        return first
    consumers: dict[str, ConsumerUsage] = {}
    for report in reports:
        for usage in report.consumers:
            known = consumers.get(usage.name)
            consumers[usage.name] = usage if known is None else _added(known, usage)
    return first.model_copy(update={"consumers": tuple(consumers[name] for name in sorted(consumers))})


def _added(one: ConsumerUsage, other: ConsumerUsage) -> ConsumerUsage:
    periods = {p.period: p for p in one.periods}
    for period in other.periods:
        known = periods.get(period.period)
        if known is None:
            periods[period.period] = period
            continue
        spent, held = known.spent_usd + period.spent_usd, known.held_usd + period.held_usd
        budget = known.budget_usd
        remaining = None if budget is None else max(0.0, budget - spent - held)
        periods[period.period] = known.model_copy(
            update={"spent_usd": spent, "held_usd": held, "remaining_usd": remaining}
        )
    days = {(d.day, d.model): d for d in one.days}
    for day in other.days:
        known_day = days.get((day.day, day.model))
        days[(day.day, day.model)] = (
            day
            if known_day is None
            else known_day.model_copy(
                update={
                    "requests": known_day.requests + day.requests,
                    "input_tokens": known_day.input_tokens + day.input_tokens,
                    "output_tokens": known_day.output_tokens + day.output_tokens,
                    "cost_usd": known_day.cost_usd + day.cost_usd,
                }
            )
        )
    return one.model_copy(update={"periods": tuple(periods.values()), "days": tuple(days[k] for k in sorted(days))})
