"""The request path's pipelined connection against a real redis-server: in order, in step, and reconnecting."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as StoreConnectionError
from redis.exceptions import NoScriptError, ResponseError

from modelyard_proxy.tenancy.shared import connect
from modelyard_proxy.tenancy.wire import ONE, Channel, _Protocol, _Waiter, parse
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


#: One reply of every RESP2 type, as the store sends it, and what the channel hands its caller.
EVERY_REPLY = [
    (b"+ok 1765000000000000 0 1000000 1765000300000000\r\n", "ok 1765000000000000 0 1000000 1765000300000000"),
    (b":-42\r\n", -42),
    (b"$10\r\nsha\r\n1 2 3\r\n", "sha\r\n1 2 3"),  # a bulk string may hold CR LF
    (b"$0\r\n\r\n", ""),
    (b"$-1\r\n", None),
    (b"*3\r\n:1\r\n*2\r\n$1\r\na\r\n+b\r\n$-1\r\n", [1, ["a", "b"], None]),
    (b"*0\r\n", []),
    (b"*-1\r\n", None),
]


def _received(*chunks: bytes) -> list[Any]:
    """Feed ``chunks`` to a connection's protocol waiting for one reply per ``EVERY_REPLY`` and an error reply
    in between, as single calls (and as one pipelined call of all): what each caller's future holds."""
    loop = asyncio.new_event_loop()
    try:
        protocol = _Protocol()
        singles = [loop.create_future() for _ in range(len(EVERY_REPLY) + 1)]
        many = loop.create_future()
        protocol.waiting.extend(_Waiter(future, ONE, math.inf) for future in singles)
        protocol.waiting.append(_Waiter(many, len(EVERY_REPLY) + 1, math.inf))
        for chunk in chunks:
            protocol.data_received(chunk)
        assert not protocol.waiting
        assert not protocol.buffer
        outcomes = [future.exception() or future.result() for future in singles]
        return [*outcomes, many.result()]
    finally:
        loop.close()


def test_every_reply_type_is_read_however_the_bytes_are_split() -> None:
    error = b"-NOSCRIPT No matching script. Please use EVAL.\r\n"
    stream = b"".join(wire for wire, _ in EVERY_REPLY[:4]) + error + b"".join(wire for wire, _ in EVERY_REPLY[4:])
    stream *= 2  # once for the single calls, once for the pipelined one
    values = [value for _, value in EVERY_REPLY]
    for cut in range(len(stream) + 1):
        *singles, many = _received(stream[:cut], stream[cut:])
        # A single call gets its reply itself, an error reply as its future's exception ...
        assert singles[:4] + singles[5:] == values
        assert isinstance(singles[4], NoScriptError)
        # ... and a pipelined call each reply in a list, an error reply as an exception in its place.
        assert many[:4] + many[5:] == values
        assert isinstance(many[4], NoScriptError)
    # Byte by byte, too.
    assert _received(*(stream[at : at + 1] for at in range(len(stream))))[:4] == values[:4]


def test_a_reply_of_a_type_the_channel_does_not_read_is_an_error() -> None:
    with pytest.raises(ResponseError, match="does not read"):
        parse(b"%1\r\n+a\r\n+b\r\n", 0)  # a RESP3 map, never asked for
