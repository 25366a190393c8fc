"""Each behaviour runs against both backends: the in-process counters and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from modelyard_proxy.tenancy import LocalCounters
from modelyard_proxy.tenancy.counters import Counters
from modelyard_proxy.tenancy.shared import SharedCounters, connect
from tests.storeserver import StoreServer
from tests.tenancy.kit import Clock

CountersFactory = Callable[[], Counters]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def shared_factory(store_server: StoreServer, clock: Clock) -> AsyncIterator[Callable[[], SharedCounters]]:
    """Open ``SharedCounters`` on the test's clock, each with its own connections (like separate pods)."""
    opened: list[SharedCounters] = []

    def open_one() -> SharedCounters:
        counters = SharedCounters(connect(store_server.url, None, connect_timeout_s=5), clock=clock)
        opened.append(counters)
        return counters

    yield open_one
    for counters in opened:
        await counters.close()


@pytest.fixture(params=["local", "shared"])
def counters(request: pytest.FixtureRequest, clock: Clock, shared_factory: Callable[[], SharedCounters]) -> Counters:
    """The backend under test, on the test's clock."""
    if request.param == "local":
        return LocalCounters(clock=clock)
    return shared_factory()
