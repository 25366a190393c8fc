"""Each behaviour of kept conversations runs against both backends: this process and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from modelyard_proxy.conversations import ConversationStore, MemoryStore
from modelyard_proxy.conversations.shared import SharedStore, connect
from tests.storeserver import StoreServer

#: Generous for a loaded test machine; the gateway's default is 500 ms.
TIMEOUT_S = 0.5

SharedFactory = Callable[[], SharedStore]


@pytest.fixture
async def shared_factory(store_server: StoreServer) -> AsyncIterator[SharedFactory]:
    """Open ``SharedStore``s on the session's redis-server, each with its own connections (like separate pods)."""
    opened: list[SharedStore] = []

    def open_one() -> SharedStore:
        store = SharedStore(
            connect(store_server.url, None, connect_timeout_s=5), prefix="modelyard:", timeout_s=TIMEOUT_S
        )
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        await store.close()


@pytest.fixture(params=["memory", "shared"])
def store(request: pytest.FixtureRequest, shared_factory: SharedFactory) -> ConversationStore:
    """The backend under test."""
    if request.param == "memory":
        return MemoryStore()
    return shared_factory()
