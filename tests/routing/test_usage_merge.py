"""A pod's workers' usage reports as one: a shared store's is taken once, per-process counts are summed."""

from __future__ import annotations

from typing import Literal

import pytest

from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.usage import ConsumerUsage, DayUsage, PeriodUsage, UsageReport, merge_reports


def report(store: Literal["shared", "local"], spent: float, held: float, requests: int) -> UsageReport:
    period = PeriodUsage(
        period=BudgetPeriod.DAY,
        budget_usd=10.0,
        spent_usd=spent,
        held_usd=held,
        remaining_usd=10.0 - spent - held,
        resets_at="2026-12-07T00:00:00Z",
    )
    day = DayUsage(
        day="2026-12-06", model="gpt-4o", requests=requests, input_tokens=10, output_tokens=5, cost_usd=spent
    )
    usage = ConsumerUsage(name="ns/team", periods=(period,), days=(day,))
    return UsageReport(store=store, store_up=True, generated_at="2026-12-06T12:00:00Z", consumers=(usage,))


def test_per_process_counts_are_summed() -> None:
    merged = merge_reports([report("local", 1.0, 0.5, 2), report("local", 2.0, 0.25, 3)])
    (team,) = merged.consumers
    (period,) = team.periods
    assert (period.spent_usd, period.held_usd) == (3.0, 0.75)
    assert period.remaining_usd == pytest.approx(6.25)
    (day,) = team.days
    assert (day.requests, day.input_tokens, day.output_tokens, day.cost_usd) == (5, 20, 10, 3.0)


def test_a_shared_store_is_counted_once() -> None:
    merged = merge_reports([report("shared", 1.0, 0.0, 2), report("shared", 1.0, 0.0, 2)])
    assert merged.consumers[0].days[0].requests == 2
