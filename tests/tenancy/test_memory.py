"""The in-process counters keep nothing per finished request: memory follows the requests in flight."""

from __future__ import annotations

import tracemalloc

from modelyard_proxy.tenancy import LocalCounters
from modelyard_routing.consumer_spec import BudgetPeriod
from tests.tenancy.kit import Clock, ask, consumer

REQUESTS = 5_000


async def test_finished_requests_leave_nothing_behind(clock: Clock) -> None:
    counters = LocalCounters(clock=clock)
    team = consumer(rpm=10**7, tpm=10**9, concurrent=100, budgets={BudgetPeriod.DAY: 1e6, BudgetPeriod.MONTH: 1e7})

    async def one_request() -> None:
        admitted = await counters.admit(ask(team, cost=0.001, hold=3600))  # a long hold: nothing may wait for it
        assert admitted.lease is not None
        await counters.settle(admitted.lease, model="gpt", input_tokens=1, output_tokens=1, cost_usd=0.0005)
        clock.advance(0.001)

    for _ in range(100):  # the consumer's books and day exist before measuring
        await one_request()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(REQUESTS):
            await one_request()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A marker or a heap slot per request costs ~300 bytes each; the test process itself allocates a little.
    assert grown < 60 * REQUESTS
