"""USD budgets per UTC period: worst cases held at admission, real costs spent at settlement, on both backends."""

from __future__ import annotations

import asyncio

import pytest

from modelyard_proxy.tenancy.counters import Counters
from modelyard_routing.consumer_spec import BudgetPeriod
from modelyard_routing.usage import PeriodUsage
from tests.tenancy.kit import Clock, ask, consumer, utc


async def period_usage(
    counters: Counters, team_budgets: dict[BudgetPeriod, float], period: BudgetPeriod
) -> PeriodUsage:
    report = await counters.usage([consumer(budgets=team_budgets)], days=1)
    return next(usage for usage in report.consumers[0].periods if usage.period == period)


async def test_fifty_concurrent_asks_against_a_budget_for_ten_admit_exactly_ten(counters: Counters) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    answers = await asyncio.gather(*(counters.admit(ask(team, cost=0.10)) for _ in range(50)))
    leases = [answer.lease for answer in answers if answer.lease]
    assert len(leases) == 10
    assert {answer.refusal.reason for answer in answers if answer.refusal} == {"budget"}
    held = await period_usage(counters, budgets, BudgetPeriod.DAY)
    assert (held.spent_usd, held.held_usd, held.remaining_usd) == (0.0, 1.0, 0.0)

    await asyncio.gather(
        *(counters.settle(lease, model="gpt", input_tokens=10, output_tokens=5, cost_usd=0.0973) for lease in leases)
    )
    day = await period_usage(counters, budgets, BudgetPeriod.DAY)
    assert day.spent_usd == pytest.approx(0.973)
    assert day.spent_usd <= 1.0
    assert day.held_usd == 0.0


async def test_a_spent_budget_names_its_period_amount_and_reset(counters: Counters, clock: Clock) -> None:
    clock.now = utc("2036-12-06T17:00:00")
    team = consumer(budgets={BudgetPeriod.DAY: 50.0})
    admitted = await counters.admit(ask(team, cost=20.0))
    assert admitted.lease is not None
    await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=50.0)

    refused = await counters.admit(ask(team, cost=0.01))
    assert refused.refusal is not None
    assert refused.refusal.reason == "budget"
    assert refused.refusal.message == (
        "consumer teams/search's day budget of $50.00 is spent; it resets at 2036-12-07T00:00:00Z"
    )
    assert refused.refusal.period == BudgetPeriod.DAY
    assert refused.refusal.resets_at == "2036-12-07T00:00:00Z"
    assert refused.refusal.retry_after_s == pytest.approx(7 * 3600)
    # A spent budget refuses even a request that would cost nothing.
    assert (await counters.admit(ask(team, cost=0.0))).refusal is not None


async def test_every_budget_must_fit_and_the_first_short_one_is_named(counters: Counters) -> None:
    team = consumer(budgets={BudgetPeriod.MONTH: 100.0, BudgetPeriod.HOUR: 1.0})
    refused = await counters.admit(ask(team, cost=1.5))
    assert refused.refusal is not None
    assert refused.refusal.period == BudgetPeriod.HOUR
    assert refused.refusal.message == (
        "consumer teams/search's hour budget of $1.00 has $1.00 left, less than this request's worst-case cost "
        "of $1.50; it resets at 2036-12-06T15:00:00Z"
    )
    assert (await counters.admit(ask(team, cost=1.0))).lease is not None


async def test_settling_for_less_than_was_held_frees_the_difference(counters: Counters) -> None:
    team = consumer(budgets={BudgetPeriod.DAY: 1.0})
    first = await counters.admit(ask(team, cost=0.6))
    assert first.lease is not None
    refused = await counters.admit(ask(team, cost=0.6))
    assert refused.refusal is not None
    assert refused.refusal.message == (
        "consumer teams/search's day budget of $1.00 has $0.40 left after $0.60 held by requests in flight, "
        "less than this request's worst-case cost of $0.60; it resets at 2036-12-07T00:00:00Z"
    )
    # In-flight requests may settle for less: no promise that only the reset helps.
    assert refused.refusal.retry_after_s is None

    await counters.settle(first.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.1)
    assert (await counters.admit(ask(team, cost=0.6))).lease is not None


async def test_a_release_returns_the_hold_and_spends_nothing(counters: Counters) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    failed = await counters.admit(ask(team, cost=1.0))
    assert failed.lease is not None
    assert (await counters.admit(ask(team, cost=0.5))).refusal is not None
    await counters.release(failed.lease)
    day = await period_usage(counters, budgets, BudgetPeriod.DAY)
    assert (day.spent_usd, day.held_usd) == (0.0, 0.0)
    assert (await counters.admit(ask(team, cost=1.0))).lease is not None


async def test_a_dead_pods_holds_expire_instead_of_leaking(counters: Counters, clock: Clock) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    assert (await counters.admit(ask(team, cost=1.0, hold=30))).lease is not None
    assert (await counters.admit(ask(team, cost=1.0, hold=30))).refusal is not None
    clock.advance(30.001)
    assert (await period_usage(counters, budgets, BudgetPeriod.DAY)).held_usd == 0.0
    assert (await counters.admit(ask(team, cost=1.0, hold=30))).lease is not None


async def test_spend_beyond_the_hold_is_still_recorded(counters: Counters) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    admitted = await counters.admit(ask(team, cost=0.5))
    assert admitted.lease is not None
    await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=1.25)
    day = await period_usage(counters, budgets, BudgetPeriod.DAY)
    assert (day.spent_usd, day.held_usd, day.remaining_usd) == (1.25, 0.0, 0.0)


async def test_a_late_settlement_after_the_hold_expired_is_still_spent(counters: Counters, clock: Clock) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    admitted = await counters.admit(ask(team, cost=0.5, hold=10))
    assert admitted.lease is not None
    clock.advance(11)
    await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.4)
    assert (await period_usage(counters, budgets, BudgetPeriod.DAY)).spent_usd == pytest.approx(0.4)


async def test_settling_twice_counts_once(counters: Counters) -> None:
    budgets = {BudgetPeriod.DAY: 1.0}
    team = consumer(budgets=budgets)
    admitted = await counters.admit(ask(team, cost=0.5))
    assert admitted.lease is not None
    for _ in range(2):
        await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.3)
    await counters.release(admitted.lease)
    report = await counters.usage([team], days=1)
    day = next(usage for usage in report.consumers[0].periods if usage.period == BudgetPeriod.DAY)
    assert day.spent_usd == pytest.approx(0.3)
    assert [usage.requests for usage in report.consumers[0].days] == [1]


async def test_a_new_period_starts_from_nothing(counters: Counters, clock: Clock) -> None:
    clock.now = utc("2036-12-06T17:59:50")
    team = consumer(budgets={BudgetPeriod.HOUR: 1.0})
    admitted = await counters.admit(ask(team, cost=1.0))
    assert admitted.lease is not None
    assert [(hold.period, hold.label) for hold in admitted.lease.periods] == [
        (BudgetPeriod.HOUR, "2036-12-06T17"),
        (BudgetPeriod.DAY, "2036-12-06"),
        (BudgetPeriod.MONTH, "2036-12"),
    ]
    refused = await counters.admit(ask(team, cost=0.5))
    assert refused.refusal is not None
    assert refused.refusal.resets_at == "2036-12-06T18:00:00Z"
    assert refused.refusal.retry_after_s is None  # the hold may settle for less

    clock.advance(10)
    after = await counters.admit(ask(team, cost=1.0))
    assert after.lease is not None
    assert after.lease.periods[0].label == "2036-12-06T18"
    # The hour-17 request settles into hour 17, where it was held: hour 18 stays within its budget.
    await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=1.0)
    assert (await counters.admit(ask(team, cost=0.01))).refusal is not None  # hour 18: 1.0 held
    await counters.release(after.lease)
    assert (await counters.admit(ask(team, cost=1.0))).lease is not None


async def test_a_lease_settles_in_the_periods_it_held_in_after_its_consumer_changed(counters: Counters) -> None:
    """A table push that drops a budget mid-request: the old lease still gives its hold back where it held it."""
    budgets = {BudgetPeriod.DAY: 1.0, BudgetPeriod.MONTH: 5.0}
    before = await counters.admit(ask(consumer(budgets=budgets), cost=0.5))
    assert before.lease is not None
    assert (await counters.admit(ask(consumer(budgets={BudgetPeriod.MONTH: 5.0}), cost=0.25))).lease is not None
    await counters.settle(before.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.125)
    day = await period_usage(counters, budgets, BudgetPeriod.DAY)
    month = await period_usage(counters, budgets, BudgetPeriod.MONTH)
    assert (day.spent_usd, day.held_usd) == (0.125, 0.0)
    assert (month.spent_usd, month.held_usd) == (0.125, 0.25)
