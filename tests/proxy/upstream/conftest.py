"""Every async test here runs twice: on asyncio's own loop and on uvloop, whose transports are not asyncio's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import pytest
import uvloop

from modelyard_proxy.upstream import EgressSettings, UpstreamClient
from modelyard_proxy.upstream.client import KEEPALIVE_SECONDS
from tests.proxy.upstream.scripted import ClientFactory, Handler, ServerFactory, Upstream


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    """Start scripted loopback servers; all are closed (with their connections) afterwards."""
    servers: list[Upstream] = []

    async def start(handler: Handler) -> Upstream:
        server = await Upstream(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def clients() -> AsyncIterator[ClientFactory]:
    """Make upstream clients (``limit`` 0 means no cap; ``egress`` the gateway's way out); all are closed afterwards."""
    made: list[UpstreamClient] = []

    def make(
        *, limit: int = 0, keepalive: float = KEEPALIVE_SECONDS, egress: EgressSettings | None = None
    ) -> UpstreamClient:
        client = UpstreamClient(limit=limit, keepalive=keepalive, egress=egress)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
    await asyncio.sleep(0)  # let aborted transports close their sockets before the loop goes
