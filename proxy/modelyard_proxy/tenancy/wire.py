"""One pipelined connection to the store for the request path's scripts: many calls in flight, in order.

This replaces redis-py's command path (its connection pool, argument packer, stream reader and parser) for
``EVALSHA`` on the request path only, for cost: through redis-py each call took a pooled connection of its
own, 15 argument encodings, several awaits on asyncio streams and ~100 µs of client CPU on top of the
round trip. Here concurrent requests share one connection: the calls of one loop iteration leave in one
write and their replies are read together, in order. redis-py still opens the connection (URL options,
TLS, AUTH, database), then hands its transport over; everything else (loading scripts, reports, probes)
uses the redis-py client as before.

The store speaks RESP2 here (``connect`` asks for it). A caller that gives up on a call (its timeout)
leaves the reply to be read and dropped: the connection stays in step, so one slow answer costs nothing
more than itself.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

Command = Sequence[str | int]


class _Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


class _ErrorReply(str):
    """A ``-ERR ...`` reply, handed to its caller as an exception."""

    __slots__ = ()

    def exception(self) -> ResponseError:
        return NoScriptError(self) if self.startswith("NOSCRIPT") else ResponseError(self)


def pack(command: Command) -> bytes:
    """A command in RESP: ``*<n>`` then each argument as a bulk string."""
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def parse(buffer: bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from ``pos``: its value (bulk strings decoded) and where the next one starts."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buffer[pos], buffer[pos + 1 : end], end + 2
    if kind == 0x3A:  # ':' integer
        return int(line), pos
    if kind == 0x24:  # '$' bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(buffer) < pos + size + 2:
            raise _Incomplete
        return buffer[pos : pos + size].decode(), pos + size + 2
    if kind == 0x2A:  # '*' array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = parse(buffer, pos)
            items.append(item)
        return items, pos
    if kind == 0x2B:  # '+' status
        return line.decode(), pos
    if kind == 0x2D:  # '-' error
        return _ErrorReply(line.decode()), pos
    msg = f"the counter store sent a reply this client does not read ({chr(kind)!r})"
    raise ResponseError(msg)


class _Waiter:
    """The caller of ``count`` pipelined commands: their replies, resolved once the last one is read."""

    __slots__ = ("count", "future", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.count = count
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiting: collections.deque[_Waiter] = collections.deque()
        self.buffer = bytearray()
        self.lost: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        pos = 0
        try:
            while self.waiting:
                reply, pos = parse(self.buffer, pos)
                waiter = self.waiting[0]
                waiter.replies.append(reply)
                if len(waiter.replies) == waiter.count:
                    self.waiting.popleft()
                    if not waiter.future.done():  # its caller may have given up (a timeout)
                        waiter.future.set_result(waiter.replies)
        except _Incomplete:
            pass
        del self.buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = ConnectionError(f"the counter store closed the connection ({exc or 'end of stream'})")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(self.lost)


class Channel:
    """The pipelined connection, opened on first use and again after it is lost."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool = client.connection_pool
        self._writer: asyncio.StreamWriter | None = None
        #: An ``asyncio.Transport`` in behaviour (uvloop's are not its subclasses).
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Future[None] | None = None
        self._out: list[bytes] = []

    async def call(self, command: Command) -> Any:
        """One command's reply; an error reply raises (``NoScriptError``, ``ResponseError``)."""
        (reply,) = await self._send([command])
        if isinstance(reply, _ErrorReply):
            raise reply.exception()
        return reply

    async def call_many(self, commands: Sequence[Command]) -> list[Any]:
        """Each command's reply, or its error reply as an exception (not raised)."""
        replies = await self._send(commands)
        return [reply.exception() if isinstance(reply, _ErrorReply) else reply for reply in replies]

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            await self._open()
            protocol = self._protocol
            assert protocol is not None
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        protocol.waiting.append(_Waiter(future, len(commands)))
        self._out += [pack(command) for command in commands]
        if len(self._out) == len(commands):
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        """This loop iteration's commands, in one write."""
        data, self._out = b"".join(self._out), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    async def _open(self) -> None:
        """Connect (once, however many callers wait for it): redis-py's handshake, then its transport is ours."""
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._connect())
        await asyncio.shield(self._opening)

    async def _connect(self) -> None:
        connection: redis.asyncio.Connection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        await connection.connect()  # type: ignore[no-untyped-call]
        writer = connection._writer
        assert writer is not None
        transport = writer.transport
        protocol = _Protocol()
        transport.set_protocol(protocol)
        # redis-py's object lets go of it (it would close it when collected); the stream writer is kept, as
        # asyncio closes a collected writer's transport. The channel closes it.
        connection._reader = connection._writer = None
        self.close()
        self._out = []  # anything queued for a lost connection failed with it
        self._writer, self._transport, self._protocol = writer, cast("asyncio.Transport", transport), protocol

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
