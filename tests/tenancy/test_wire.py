"""The request path's pipelined connection against a real redis-server: in order, in step, and reconnecting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import ResponseError

from modelyard_proxy.tenancy.shared import connect
from modelyard_proxy.tenancy.wire import Channel
from tests.storeserver import StoreServer


@pytest.fixture
async def channel(store_server: StoreServer) -> AsyncIterator[Channel]:
    client = connect(store_server.url, None, connect_timeout_s=2)
    opened = Channel(client)
    yield opened
    opened.close()
    await client.aclose()


async def test_concurrent_calls_each_get_their_own_reply(channel: Channel) -> None:
    words = [f"word-{n}" for n in range(50)]
    assert await asyncio.gather(*(channel.call(("ECHO", word)) for word in words)) == words
    replies = await channel.call_many([("SET", "k", "1"), ("INCRBY", "k", 41), ("HGETALL", "k"), ("GET", "none")])
    assert replies[:2] == ["OK", 42]
    assert isinstance(replies[2], ResponseError)  # WRONGTYPE, handed back, not raised
    assert replies[3] is None
    with pytest.raises(ResponseError):
        await channel.call(("HGETALL", "k"))


async def test_a_call_given_up_leaves_the_connection_in_step(channel: Channel, store_server: StoreServer) -> None:
    assert await channel.call(("ECHO", "warm")) == "warm"
    store_server.pause()
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await channel.call(("ECHO", "late"))
    finally:
        store_server.resume()
    # The late reply arrives first and is dropped: the next call reads its own.
    assert await channel.call(("ECHO", "next")) == "next"


async def test_a_lost_connection_fails_its_calls_and_the_next_one_reconnects(
    channel: Channel, store_server: StoreServer
) -> None:
    assert await channel.call(("ECHO", "before")) == "before"
    store_server.stop()
    # Lost under the call, or already seen lost and no store to reconnect to.
    with pytest.raises((ConnectionError, StoreConnectionError)):
        await channel.call(("ECHO", "lost"))
    store_server.start()
    assert await channel.call(("ECHO", "after")) == "after"


async def test_the_channels_own_timeout_gives_up_a_call_and_stays_in_step(
    channel: Channel, store_server: StoreServer
) -> None:
    assert await channel.call(("ECHO", "warm")) == "warm"
    store_server.pause()
    try:
        async with asyncio.timeout(2):  # only so that a call the channel never gives up fails the test
            with pytest.raises(TimeoutError):
                await channel.call(("ECHO", "late"), timeout_s=0.1)
            with pytest.raises(TimeoutError):  # one timer serves deadlines set in any order
                await asyncio.gather(
                    channel.call(("ECHO", "slow"), timeout_s=5), channel.call(("ECHO", "soon"), timeout_s=0.1)
                )
    finally:
        store_server.resume()
    assert await channel.call(("ECHO", "next"), timeout_s=1) == "next"
