"""What only the shared store does: limits across pods, the store's clock and calendar, and its keys."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from modelyard_proxy.tenancy.ledger import Spend
from modelyard_proxy.tenancy.periods import PERIOD_MARGIN_S, USAGE_RETENTION_S, current_periods
from modelyard_proxy.tenancy.shared import MARKER_S, SharedCounters, connect
from modelyard_routing.consumer_spec import BudgetPeriod
from tests.storeserver import StoreServer
from tests.tenancy.kit import Clock, ask, consumer, utc


async def test_two_pods_share_every_limit(shared_factory: Callable[[], SharedCounters]) -> None:
    pod_a, pod_b = shared_factory(), shared_factory()
    team = consumer(rpm=4, concurrent=3, budgets={BudgetPeriod.DAY: 1.0})
    answers = await asyncio.gather(*(pod.admit(ask(team, cost=0.25)) for pod in (pod_a, pod_b, pod_a)))
    assert all(answer.lease for answer in answers)
    concurrency = await pod_b.admit(ask(team, cost=0.25))
    assert concurrency.refusal is not None
    assert concurrency.refusal.reason == "concurrency"

    first = answers[0].lease
    assert first is not None
    await pod_b.settle(first, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.25)  # another pod settles
    fourth = await pod_b.admit(ask(team, cost=0.25))
    assert fourth.lease is not None
    assert fourth.rates.remaining_requests == 0
    requests = await pod_a.admit(ask(team, cost=0.0))
    assert requests.refusal is not None
    assert requests.refusal.reason == "requests"


@pytest.mark.parametrize(
    "instant",
    [
        "2036-12-06T17:59:59",
        "2036-12-31T23:59:59",
        "2037-01-01T00:00:00",
        "2036-02-29T23:30:00",  # a leap day
        "2036-03-01T00:00:00",
        "2100-02-28T23:00:00",  # 2100 is no leap year
        "2400-02-29T05:00:00",  # 2400 is
        "2001-09-09T01:46:40",
    ],
)
async def test_the_scripts_calendar_agrees_with_pythons(
    shared_factory: Callable[[], SharedCounters], clock: Clock, instant: str
) -> None:
    clock.now = utc(instant)
    admitted = await shared_factory().admit(ask(consumer()))
    assert admitted.lease is not None
    assert admitted.lease.periods == current_periods(clock.now)


@pytest.mark.parametrize("handle", ["from admission", "from the lease's fields"])
async def test_keys_carry_the_hash_tag_and_the_period_and_expire_after_it(
    shared_factory: Callable[[], SharedCounters], store_server: StoreServer, clock: Clock, handle: str
) -> None:
    clock.now = utc("2036-12-31T23:10:00")
    counters = shared_factory()
    team = consumer(rpm=10, budgets={BudgetPeriod.MONTH: 5.0})
    admitted = await counters.admit(ask(team, cost=0.5, hold=3600))
    assert admitted.lease is not None
    base = "modelyard:{teams/search}:"
    labels = {"hour": "2036-12-31T23", "day": "2036-12-31", "month": "2036-12"}
    month = f"{base}budget:month:2036-12"
    new_year = int(utc("2037-01-01T00:00:00"))
    with store_server.client() as client:
        # The cost is held only in the period with a budget, and the lease names it.
        assert set(client.keys("*")) == {base + "rate", base + "leases", month}
        assert client.expiretime(month) == new_year + PERIOD_MARGIN_S
        assert client.hgetall(month) == {"held": "500000"}
        assert client.zrange(base + "leases", 0, -1) == [f"{admitted.lease.lease_id}|500000|month:2036-12"]

    # The settlement names the lease as admission encoded it, or (a lease made without that) as its fields do.
    lease = admitted.lease if handle == "from admission" else admitted.lease._replace(handle=b"")
    await counters.settle(lease, model="gpt-4o", input_tokens=3, output_tokens=4, cost_usd=0.5)
    with store_server.client() as client:
        # The hold and the lease are gone; the spend is in every period, for the report. A marker guards
        # against a second settlement for a couple of minutes, however long the lease's hold was.
        budgets = {f"{base}budget:{period}:{label}" for period, label in labels.items()}
        marker = f"{base}finished:{admitted.lease.lease_id}"
        assert set(client.keys("*")) == {base + "rate", marker, base + "usage:2036-12-31", *budgets}
        for key in budgets:
            assert client.expiretime(key) == new_year + PERIOD_MARGIN_S
        assert 0 < client.pttl(marker) <= MARKER_S * 1000
        assert MARKER_S <= 120
        assert client.hgetall(f"{base}budget:month:2036-12") == {"spent": "500000", "held": "0"}
        assert client.hgetall(f"{base}usage:2036-12-31") == {
            "gpt-4o|requests": "1",
            "gpt-4o|input": "3",
            "gpt-4o|output": "4",
            "gpt-4o|cost": "500000",
        }
        assert client.ttl(f"{base}usage:2036-12-31") == pytest.approx(USAGE_RETENTION_S, abs=5)


async def test_the_key_prefix_is_configurable(store_server: StoreServer) -> None:
    counters = SharedCounters(connect(store_server.url, None, connect_timeout_s=5), prefix="acme:gw:")
    try:
        assert (await counters.admit(ask(consumer(rpm=1)))).lease is not None
    finally:
        await counters.close()
    with store_server.client() as client:
        assert {key.split("}")[0] for key in client.keys("*")} == {"acme:gw:{teams/search"}


async def test_without_an_override_the_stores_own_clock_decides(store_server: StoreServer) -> None:
    counters = SharedCounters(connect(store_server.url, None, connect_timeout_s=5))
    try:
        team = consumer(concurrent=1)
        first = await counters.admit(ask(team, hold=0.2))
        assert first.lease is not None
        assert first.lease.periods == current_periods(time.time())
        assert abs(first.lease.expires_at_us / 1e6 - 0.2 - time.time()) < 5
        assert (await counters.admit(ask(team, hold=0.2))).refusal is not None
        await asyncio.sleep(0.25)
        assert (await counters.admit(ask(team, hold=0.2))).lease is not None
    finally:
        await counters.close()


async def test_every_answer_of_the_scripts_is_read(shared_factory: Callable[[], SharedCounters], clock: Clock) -> None:
    """Each outcome the admit script can answer, and each the finish script can, through the shared store."""
    counters = shared_factory()
    team = consumer(rpm=2, tpm=100, concurrent=1, budgets={BudgetPeriod.HOUR: 1.0, BudgetPeriod.DAY: 0.5})
    outcomes = {}
    admitted = await counters.admit(ask(team, tokens=40, cost=0.25, hold=10))
    assert admitted.lease is not None
    assert admitted.lease.expires_at_us == int((clock.now + 10) * 1_000_000)
    assert (admitted.rates.remaining_requests, admitted.rates.remaining_tokens) == (1, 60)
    outcomes["ok"] = admitted
    outcomes["tokens_oversize"] = await counters.admit(ask(team, tokens=101))
    outcomes["tokens"] = await counters.admit(ask(team, tokens=61))
    outcomes["concurrency"] = await counters.admit(ask(team))
    assert await counters.finish(admitted.lease, Spend("gpt", 10, 10, 0.1)) == "settled"
    assert await counters.finish(admitted.lease, Spend("gpt", 10, 10, 0.1)) == "duplicate"
    outcomes["budget"] = await counters.admit(ask(team, cost=0.45))
    second = await counters.admit(ask(team, hold=10))
    assert second.lease is not None
    outcomes["requests"] = await counters.admit(ask(team))
    clock.advance(61)
    assert (await counters.admit(ask(team))).lease is not None  # sweeps the expired lease, its hold back
    assert await counters.finish(second.lease, None) == "late"

    reasons = {name: answer.refusal.reason for name, answer in outcomes.items() if answer.refusal}
    assert reasons == {
        "tokens_oversize": "tokens",
        "tokens": "tokens",
        "concurrency": "concurrency",
        "budget": "budget",
        "requests": "requests",
    }
    budget = outcomes["budget"].refusal
    assert budget is not None
    assert (budget.period, budget.resets_at) == (BudgetPeriod.DAY, "2036-12-07T00:00:00Z")
    assert budget.message.startswith("consumer teams/search's day budget of $0.50 has $0.40 left")
    assert outcomes["requests"].rates.remaining_requests == 0
