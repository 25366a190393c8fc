"""The usage report: spend per current period and per-model use per day, on both backends."""

from __future__ import annotations

import re

from modelyard_proxy.tenancy.counters import Counters
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.usage import DayUsage
from tests.tenancy.kit import Clock, ask, consumer, utc


async def test_the_report_has_each_period_and_each_models_days(counters: Counters, clock: Clock) -> None:
    team = consumer(budgets={BudgetPeriod.DAY: 10.0, BudgetPeriod.MONTH: 100.0}, labels={"team": "search"})
    idle = consumer("teams/idle")

    clock.now = utc("2036-12-05T23:30:00")
    yesterday = await counters.admit(ask(team, cost=1.0))
    assert yesterday.lease is not None
    await counters.settle(yesterday.lease, model="gpt-4o", input_tokens=100, output_tokens=50, cost_usd=0.75)

    clock.now = utc("2036-12-06T09:15:00")
    for model, cost in (("gpt-4o", 0.5), ("claude", 0.25), ("gpt-4o", 0.25)):
        admitted = await counters.admit(ask(team, cost=1.0))
        assert admitted.lease is not None
        await counters.settle(admitted.lease, model=model, input_tokens=10, output_tokens=20, cost_usd=cost)
    in_flight = await counters.admit(ask(team, cost=2.0))
    assert in_flight.lease is not None

    report = await counters.usage([team, idle], days=3)
    assert report.store == ("local" if counters.__class__.__name__ == "LocalCounters" else "shared")
    assert report.store_up
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report.generated_at)

    search, nobody = report.consumers
    assert (search.name, search.labels) == ("teams/search", {"team": "search"})
    periods = [
        (usage.period, usage.budget_usd, usage.spent_usd, usage.held_usd, usage.remaining_usd, usage.resets_at)
        for usage in search.periods
    ]
    assert periods == [
        (BudgetPeriod.HOUR, None, 1.0, 0.0, None, "2036-12-06T10:00:00Z"),  # no budget: nothing held
        (BudgetPeriod.DAY, 10.0, 1.0, 2.0, 7.0, "2036-12-07T00:00:00Z"),
        (BudgetPeriod.MONTH, 100.0, 1.75, 2.0, 96.25, "2037-01-01T00:00:00Z"),
    ]
    assert search.days == (
        DayUsage(day="2036-12-06", model="claude", requests=1, input_tokens=10, output_tokens=20, cost_usd=0.25),
        DayUsage(day="2036-12-06", model="gpt-4o", requests=2, input_tokens=20, output_tokens=40, cost_usd=0.75),
        DayUsage(day="2036-12-05", model="gpt-4o", requests=1, input_tokens=100, output_tokens=50, cost_usd=0.75),
    )
    assert nobody.name == "teams/idle"
    assert nobody.days == ()
    assert [(period.spent_usd, period.held_usd) for period in nobody.periods] == [(0.0, 0.0)] * 3

    only_today = await counters.usage([team], days=1)
    assert {usage.day for usage in only_today.consumers[0].days} == {"2036-12-06"}


async def test_a_report_covers_at_least_today(counters: Counters) -> None:
    team = consumer()
    admitted = await counters.admit(ask(team))
    assert admitted.lease is not None
    await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.0)
    assert [usage.day for usage in (await counters.usage([team], days=0)).consumers[0].days] == ["2036-12-06"]
