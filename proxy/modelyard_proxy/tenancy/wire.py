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
import math
from collections.abc import Awaitable, Sequence
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


def bulk(text: str) -> bytes:
    """One argument as a RESP bulk string."""
    data = text.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(command: Command) -> bytes:
    """A command in RESP: ``*<n>`` then each argument as a bulk string."""
    return b"*%d\r\n" % len(command) + b"".join(bulk(str(arg)) for arg in command)


def parse(buffer: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from ``pos``: its value (bulk strings decoded) and where the next one starts."""
    end = buffer.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buffer[pos]
    if kind == 0x2B:  # '+' status: the request path's scripts answer in one
        return buffer[pos + 1 : end].decode(), end + 2
    line, pos = buffer[pos + 1 : end], end + 2
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
    if kind == 0x2D:  # '-' error
        return _ErrorReply(line.decode()), pos
    msg = f"the counter store sent a reply this client does not read ({chr(kind)!r})"
    raise ResponseError(msg)


#: A waiter's ``count`` for one command whose future is its reply itself, not a list of one.
ONE = -1


class _Waiter:
    """The caller of ``count`` pipelined commands: their replies, resolved once the last one is read, or a
    ``TimeoutError`` at ``deadline`` (loop time). A single command's future (``count`` ``ONE``) gets its
    reply itself (an error reply as its exception), so that its caller awaits the future with no coroutine
    in between."""

    __slots__ = ("count", "deadline", "future", "replies")

    def __init__(self, future: asyncio.Future[Any], count: int, deadline: float) -> None:
        self.future = future
        self.count = count
        self.deadline = deadline
        self.replies: list[Any] = []

    def resolve(self, reply: Any) -> bool:
        """Take the next reply; True when it was the last one."""
        if self.count == ONE:
            if not self.future.done():  # its caller may have given up (a timeout)
                if isinstance(reply, _ErrorReply):
                    self.future.set_exception(reply.exception())
                else:
                    self.future.set_result(reply)
            return True
        replies = self.replies
        replies.append(reply.exception() if isinstance(reply, _ErrorReply) else reply)
        if len(replies) < self.count:
            return False
        if not self.future.done():
            self.future.set_result(replies)
        return True


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.waiting: collections.deque[_Waiter] = collections.deque()
        #: The start of a reply that has not all arrived yet.
        self.buffer = bytearray()
        self.lost: Exception | None = None

    def data_received(self, data: bytes) -> None:
        # Read from the received bytes themselves unless a reply is split across reads.
        buffer: bytes | bytearray = data
        if self.buffer:
            self.buffer += data
            buffer = self.buffer
        pos, size, waiting = 0, len(buffer), self.waiting
        try:
            while waiting and pos < size:  # the bytes end between replies more often than inside one
                reply, pos = parse(buffer, pos)
                if waiting[0].resolve(reply):
                    waiting.popleft()
        except _Incomplete:
            pass
        if buffer is data:
            if pos < len(data):
                self.buffer += data[pos:]
        else:
            del self.buffer[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = ConnectionError(f"the counter store closed the connection ({exc or 'end of stream'})")
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(self.lost)


class Channel:
    """The pipelined connection, opened on first use and again after it is lost.

    Each call may carry a timeout: the channel keeps one timer for all of them (armed for the nearest
    deadline) instead of an ``asyncio.timeout`` per call, which cost more than the rest of the call's client
    work.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool = client.connection_pool
        self._writer: asyncio.StreamWriter | None = None
        #: An ``asyncio.Transport`` in behaviour (uvloop's are not its subclasses).
        self._transport: asyncio.Transport | None = None
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Future[None] | None = None
        self._out: list[bytes] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    async def call(self, command: Command, *, timeout_s: float | None = None) -> Any:
        """One command's reply; an error reply raises (``NoScriptError``, ``ResponseError``)."""
        return await self.request(pack(command), timeout_s=timeout_s)

    async def call_many(self, commands: Sequence[Command], *, timeout_s: float | None = None) -> list[Any]:
        """Each command's reply, or its error reply as an exception (not raised)."""
        return await self.request_many(
            b"".join(pack(command) for command in commands), len(commands), timeout_s=timeout_s
        )

    def request(self, data: bytes, *, timeout_s: float | None = None) -> Awaitable[Any]:
        """``call`` for a command packed already (``pack``, ``bulk``): on an open connection its reply's
        future itself, so that the caller awaits no coroutine of the channel's."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return self._opened_then(data, ONE, timeout_s)
        return self._queue(protocol, data, ONE, timeout_s)

    def request_many(self, data: bytes, count: int, *, timeout_s: float | None = None) -> Awaitable[list[Any]]:
        """``call_many`` for ``count`` commands packed already."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return self._opened_then(data, count, timeout_s)
        return self._queue(protocol, data, count, timeout_s)

    async def _opened_then(self, data: bytes, count: int, timeout_s: float | None) -> Any:
        await self._open(timeout_s)
        assert self._protocol is not None
        return await self._queue(self._protocol, data, count, timeout_s)

    def _queue(self, protocol: _Protocol, data: bytes, count: int, timeout_s: float | None) -> asyncio.Future[Any]:
        """The future of ``count`` commands' replies (or ``ONE``'s reply), their bytes queued for this loop
        iteration's write."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        deadline = math.inf if timeout_s is None else loop.time() + timeout_s
        protocol.waiting.append(_Waiter(future, count, deadline))
        if deadline < self._timer_at:
            self._arm(deadline)
        self._out.append(data)
        if len(self._out) == 1:
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """Every call queued so far, in one write."""
        data, self._out = b"".join(self._out), []
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Give up the calls past their deadline (their replies are still read, and dropped), and wait for the
        next deadline."""
        self._timer, self._timer_at = None, math.inf
        if self._protocol is None:
            return
        now, following = asyncio.get_running_loop().time(), math.inf
        for waiter in self._protocol.waiting:
            if waiter.future.done():
                continue
            if waiter.deadline <= now:
                waiter.future.set_exception(TimeoutError())
            else:
                following = min(following, waiter.deadline)
        if following < math.inf:
            self._arm(following)

    async def _open(self, timeout_s: float | None) -> None:
        """Connect (once, however many callers wait for it): redis-py's handshake, then its transport is ours."""
        if self._opening is None or self._opening.done():
            self._opening = asyncio.ensure_future(self._connect())
        async with asyncio.timeout(timeout_s):
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
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, math.inf
