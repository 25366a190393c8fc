"""The failure policy against a real redis-server that is killed, frozen and restarted under the counters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from modelyard_proxy.tenancy import LocalCounters
from modelyard_proxy.tenancy.guarded import GuardedCounters
from modelyard_proxy.tenancy.shared import SharedCounters, connect
from modelyard_routing.consumer_spec import BudgetPeriod, StoreFailure
from tests.storeserver import StoreServer
from tests.tenancy.kit import ask, consumer

#: Generous for a loaded test machine; the default is a few milliseconds.
TIMEOUT_S = 0.25
#: Far longer than any store call here: a call that hangs fails the test instead of the suite.
HANG_S = 3.0
LOGGER = "modelyard_proxy.tenancy.guarded"

GuardedFactory = Callable[..., GuardedCounters]


@pytest.fixture
async def guarded_factory(store_server: StoreServer) -> AsyncIterator[GuardedFactory]:
    opened: list[GuardedCounters] = []

    def open_one(**options: float) -> GuardedCounters:
        shared = SharedCounters(connect(store_server.url, None, connect_timeout_s=HANG_S))
        guarded = GuardedCounters(
            shared,
            LocalCounters(),
            timeout_s=TIMEOUT_S,
            probe_interval_s=options.pop("probe_interval_s", 0.05),
            **options,  # type: ignore[arg-type]
        )
        opened.append(guarded)
        return guarded

    yield open_one
    for guarded in opened:
        await guarded.close()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll: the guard's probe runs on its own schedule, in the background."""
    for _ in range(int(HANG_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("the store was not seen again in time")


def transitions(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


async def test_fail_open_counts_per_pod_while_the_store_is_down(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory(probe_interval_s=60)
    team = consumer(rpm=2)
    shared = await guarded.admit(ask(team))
    assert shared.lease is not None
    assert shared.lease.backend == "shared"
    store_server.stop()

    async with asyncio.timeout(HANG_S):
        local = [await guarded.admit(ask(team)) for _ in range(3)]
    assert [answer.lease.backend for answer in local[:2] if answer.lease] == ["local", "local"]
    # The pod's own counters still hold the consumer to its limits.
    assert local[2].refusal is not None
    assert local[2].refusal.reason == "requests"
    assert (guarded.state.up, guarded.state.errors_total, guarded.state.transitions_total) == (False, 1, 1)


async def test_fail_closed_refuses_while_the_store_is_down(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory()
    team = consumer(on_store_failure=StoreFailure.FAIL_CLOSED)
    assert (await guarded.admit(ask(team))).lease is not None
    store_server.stop()
    refused = await guarded.admit(ask(team))
    assert refused.refusal is not None
    assert refused.refusal.reason == "store_unavailable"
    assert refused.refusal.message == (
        "consumer teams/search's limits cannot be checked: the counter store is unreachable"
    )


async def test_a_down_store_is_not_asked_again_on_every_request(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory(probe_interval_s=60)
    store_server.stop()
    async with asyncio.timeout(HANG_S):
        answers = await asyncio.gather(*(guarded.admit(ask(consumer())) for _ in range(100)))
    assert all(answer.lease for answer in answers)
    assert guarded.state.errors_total <= 100
    again = [await guarded.admit(ask(consumer())) for _ in range(100)]
    assert all(answer.lease and answer.lease.backend == "local" for answer in again)
    errors = guarded.state.errors_total
    await guarded.admit(ask(consumer()))
    assert guarded.state.errors_total == errors


async def test_a_hung_store_costs_a_request_no_more_than_the_timeout(
    guarded_factory: GuardedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    guarded = guarded_factory(probe_interval_s=60)
    assert (await guarded.admit(ask(consumer()))).lease is not None
    store_server.pause()
    try:
        async with asyncio.timeout(HANG_S):
            answers = [await guarded.admit(ask(consumer())) for _ in range(3)]
    finally:
        store_server.resume()
    assert [answer.lease.backend for answer in answers if answer.lease] == ["local"] * 3
    # Down after the third timeout in a row, not before.
    assert transitions(caplog) == ["counter store unreachable: no answer within 250 ms, 3 calls in a row"]
    assert (guarded.state.up, guarded.state.errors_total) == (False, 3)


async def test_one_slow_call_falls_back_for_its_request_but_keeps_the_store(
    guarded_factory: GuardedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    guarded = guarded_factory(probe_interval_s=60)
    team = consumer(on_store_failure=StoreFailure.FAIL_CLOSED)
    assert (await guarded.admit(ask(team))).lease is not None
    for _ in range(2):  # two slow calls, each followed by a good one: never three in a row
        store_server.pause()
        try:
            slow = await guarded.admit(ask(team))
        finally:
            store_server.resume()
        assert slow.refusal is not None
        assert slow.refusal.reason == "store_unavailable"
        answer = await guarded.admit(ask(team))
        assert answer.lease is not None
        assert answer.lease.backend == "shared"
    assert (guarded.state.up, guarded.state.errors_total, guarded.state.transitions_total) == (True, 2, 0)

    # Calls that were in flight together count as one slow moment, however many they are.
    store_server.pause()
    try:
        together = await asyncio.gather(*(guarded.admit(ask(team)) for _ in range(5)))
    finally:
        store_server.resume()
    assert {answer.refusal.reason for answer in together if answer.refusal} == {"store_unavailable"}
    assert guarded.state.up
    assert (await guarded.admit(ask(team))).lease is not None
    assert transitions(caplog) == []


async def test_killed_mid_load_then_back_logs_each_change_once_and_replays_the_spend(
    guarded_factory: GuardedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    guarded = guarded_factory()
    budgets = {BudgetPeriod.DAY: 100.0}
    team = consumer(budgets=budgets)
    before = await asyncio.gather(*(guarded.admit(ask(team, cost=1.0)) for _ in range(20)))

    async def kill_soon() -> None:
        await asyncio.sleep(0)
        store_server.stop()

    async with asyncio.timeout(HANG_S):
        during, _ = await asyncio.gather(
            asyncio.gather(*(guarded.admit(ask(team, cost=1.0)) for _ in range(30))), kill_soon()
        )
        after = [await guarded.admit(ask(team, cost=1.0)) for _ in range(5)]
    leases = [answer.lease for answer in (*before, *during, *after) if answer.lease]
    assert len(leases) == 55  # FailOpen: nobody refused
    shared = [lease for lease in leases if lease.backend == "shared"]
    assert len(shared) >= 20
    assert {answer.lease.backend for answer in after if answer.lease} == {"local"}

    async with asyncio.timeout(HANG_S):
        for lease in leases:
            await guarded.settle(lease, model="gpt", input_tokens=2, output_tokens=3, cost_usd=0.5)
    assert guarded.state.settlements_queued == len(shared)

    store_server.start()  # empty: it kept nothing, the queued settlements are all it will know
    await wait_until(lambda: guarded.state.up and guarded.state.settlements_queued == 0)
    assert guarded.state.settlements_replayed_total == len(shared)
    assert guarded.state.transitions_total == 2
    assert transitions(caplog)[0].startswith("counter store unreachable: ")
    assert transitions(caplog)[1:] == ["counter store reachable again"]

    report = await guarded.usage([team], days=1)
    assert report.store == "shared"
    assert report.store_up
    day = next(period for period in report.consumers[0].periods if period.period == BudgetPeriod.DAY)
    assert day.spent_usd == pytest.approx(0.5 * len(shared))
    assert [(usage.requests, usage.input_tokens, usage.output_tokens) for usage in report.consumers[0].days] == [
        (len(shared), 2 * len(shared), 3 * len(shared))
    ]


async def test_the_queue_is_bounded_and_drops_the_oldest(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory(queue_limit=2)
    team = consumer()
    leases = [answer.lease for answer in [await guarded.admit(ask(team)) for _ in range(3)] if answer.lease]
    store_server.stop()
    for cost, lease in zip((1.0, 2.0, 4.0), leases, strict=True):
        await guarded.settle(lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=cost)
    assert (guarded.state.settlements_queued, guarded.state.settlements_dropped_total) == (2, 1)

    store_server.start()
    await wait_until(lambda: guarded.state.up and guarded.state.settlements_queued == 0)
    report = await guarded.usage([team], days=1)
    assert report.consumers[0].days[0].cost_usd == pytest.approx(6.0)


async def test_while_down_releases_are_dropped_and_the_report_says_the_store_is_down(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory(probe_interval_s=60)
    admitted = await guarded.admit(ask(consumer()))
    assert admitted.lease is not None
    store_server.stop()
    async with asyncio.timeout(HANG_S):
        await guarded.release(admitted.lease)
        report = await guarded.usage([consumer()], days=3)
    assert guarded.state.settlements_queued == 0
    assert (report.store, report.store_up, report.consumers) == ("shared", False, ())


async def test_a_local_lease_settles_locally_even_after_the_store_is_back(
    guarded_factory: GuardedFactory, store_server: StoreServer
) -> None:
    guarded = guarded_factory()
    team = consumer(concurrent=1)
    store_server.stop()
    local = await guarded.admit(ask(team))
    assert local.lease is not None
    assert local.lease.backend == "local"
    store_server.start()
    await wait_until(lambda: guarded.state.up)
    await guarded.settle(local.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.0)
    assert guarded.state.settlements_queued == 0
    assert (await guarded.admit(ask(team))).lease is not None


async def test_warming_up_loads_the_scripts_or_marks_the_store_down(
    guarded_factory: GuardedFactory, store_server: StoreServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    guarded = guarded_factory(probe_interval_s=60)
    await guarded.warm_up()
    with store_server.client() as client:
        assert client.info("memory")["number_of_cached_scripts"] == 3
    assert guarded.state.up

    store_server.stop()
    await guarded.warm_up()
    assert (guarded.state.up, guarded.state.transitions_total) == (False, 1)
    assert len(transitions(caplog)) == 1
