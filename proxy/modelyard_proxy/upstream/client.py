"""The proxy's HTTP/1.1 client for upstream calls: pooled keep-alive connections, one request each at a time.

Why not aiohttp's client: per request it builds a request object, merges and re-serialises headers, fills
automatic ones and runs its timers and traces, about 60 µs of CPU against nginx on these machines, while
this client's exchange costs under 10 µs (``bench/PROFILE.md``); the upstream call was the largest item of
a proxied request. What it keeps from it: TLS with the system's trust store, a pool capped at
``MODELYARD_POOL_SIZE`` connections whose wait counts against the connect timeout, keep-alive connections
closed after ``keepalive`` idle seconds (by one timer per upstream, so a pool nobody uses again empties too),
TCP_NODELAY, gzip/deflate answers decoded. It does not retry: a
POST to a model is not idempotent, and the relay's retry policy decides.

How a call leaves is its egress settings' (:mod:`modelyard_proxy.upstream.egress`): the gateway's by default
(``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``, ``MODELYARD_CA_BUNDLE``), a credential's own when it has some.
Through a forward proxy (``http://``, or ``https://`` spoken to over TLS), an https origin is reached through
an HTTP CONNECT tunnel with TLS started inside it, a plain http one by sending the proxy the absolute-form
request; connections are pooled per origin and per egress settings, so two credentials reaching one origin
differently never share one.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Mapping

from modelyard_proxy.upstream.connection import Connection
from modelyard_proxy.upstream.egress import EgressCache, EgressSettings
from modelyard_proxy.upstream.errors import ProxyRefused, UpstreamDisconnected
from modelyard_proxy.upstream.parser import ResponseHead
from modelyard_proxy.upstream.proxies import ForwardProxy
from modelyard_proxy.upstream.target import PoolKey, Target
from modelyard_proxy.upstream.tunnel import authority, connect_to_proxy, open_tunnel

#: An idle pooled connection older than this is closed rather than reused (servers drop idle ones, 60 s or so).
KEEPALIVE_SECONDS = 15.0


class UpstreamResponse:
    """A response whose head has arrived; the body is read with :meth:`read` or piece by piece.

    Its connection goes back to the pool once the body has been read to the end, or is dropped by
    :meth:`close` (always call it; it does nothing once the connection went back).
    """

    __slots__ = ("_client", "_connection", "_idle", "headers", "status")

    def __init__(self, client: UpstreamClient, connection: Connection, head: ResponseHead, idle: float) -> None:
        self._client = client
        self._connection: Connection | None = connection
        self._idle = idle
        self.status = head.status
        #: Header names lowercased.
        self.headers = head.headers

    async def read(self) -> bytes:
        """The whole (rest of the) body."""
        connection = self._held()
        try:
            return await connection.read_body(self._idle)
        finally:
            self.close()

    async def readany(self) -> bytes:
        """The body bytes that arrived since the last read (waiting for some), ``b""`` at the end."""
        connection = self._connection
        if connection is None:
            return b""
        try:
            piece = await connection.read_piece(self._idle)
        except BaseException:
            self.close()
            raise
        if not piece:
            self.close()
        return piece

    def close(self) -> None:
        """Release the connection: back to the pool if the body was read to its end, else dropped."""
        connection, self._connection = self._connection, None
        if connection is not None:
            self._client.release(connection)

    def _held(self) -> Connection:
        if self._connection is None:
            raise RuntimeError("the response was already read or closed")
        return self._connection


class UpstreamClient:
    """Connections to every upstream of one proxy process, pooled by origin and egress settings."""

    def __init__(
        self, *, limit: int, keepalive: float = KEEPALIVE_SECONDS, egress: EgressSettings | None = None
    ) -> None:
        #: At most this many connections carry a request at once (0: no cap); more requests wait their turn.
        self.limit = limit
        self.keepalive = keepalive
        #: The gateway's egress settings: a request without settings of its own goes out this way.
        self.egress = egress or EgressSettings()
        #: Settings derived from the gateway's, one per credential object with egress settings of its own.
        self.derived_egress = EgressCache(self.egress)
        self.in_use = 0
        #: Per upstream, its idle connections, the longest idle first.
        self._idle: dict[PoolKey, list[Connection]] = {}
        #: Per upstream with idle connections, the timer closing its longest idle one when it expires.
        self._sweeps: dict[PoolKey, asyncio.TimerHandle] = {}
        self._turns: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        connect_timeout: float,
        read_timeout: float,
        egress: EgressSettings | None = None,
    ) -> UpstreamResponse:
        """Send a request and wait for the response's head.

        ``connect_timeout`` bounds the wait for a pooled or new connection (through a proxy: its CONNECT and
        the TLS handshake too); ``read_timeout`` each wait for bytes of the response. ``egress`` is the way
        out (the gateway's by default). Failures are one of ``TRANSPORT_ERRORS``.
        """
        target = (self.egress if egress is None else egress).target(url)
        request_head = target.request_head(method, headers, len(body))  # refused before taking a connection
        connection = await self._acquire(target, connect_timeout)
        try:
            await connection.send(request_head, body, with_body=method != "HEAD")
            head = await connection.read_head(read_timeout)
            if head.status == 407 and target.proxy is not None:  # the proxy's answer, never the origin's
                connection.abort()
                raise ProxyRefused(target.proxy, authority(target.host, target.port), 407, head.reason)
        except BaseException:
            self.release(connection)
            raise
        return UpstreamResponse(self, connection, head, read_timeout)

    def release(self, connection: Connection) -> None:
        """A connection's request is over: pool it if it may carry another, else close it; wake a waiter."""
        self.in_use -= 1
        if connection.reusable and not self._closed:
            loop = asyncio.get_running_loop()
            connection.idle_since = loop.time()
            self._idle.setdefault(connection.key, []).append(connection)
            if connection.key not in self._sweeps:
                self._schedule_sweep(loop, connection.key, connection.idle_since + self.keepalive)
        else:
            connection.abort()
        self._pass_turn()

    def _pass_turn(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def _schedule_sweep(self, loop: asyncio.AbstractEventLoop, key: PoolKey, due: float) -> None:
        self._sweeps[key] = loop.call_at(due, self._sweep, loop, key, due)

    def _sweep(self, loop: asyncio.AbstractEventLoop, key: PoolKey, due: float) -> None:
        """Close the upstream's connections idle for ``keepalive`` by ``due`` (or now, if later), and the ones
        its server closed; then wait for the next one to expire."""
        del self._sweeps[key]
        now = max(due, loop.time())  # a timer may fire a clock tick early
        kept = []
        for connection in self._idle.pop(key, ()):
            if connection.closed or connection.idle_since + self.keepalive <= now:
                connection.abort()
            else:
                kept.append(connection)
        if kept:
            self._idle[key] = kept
            self._schedule_sweep(loop, key, kept[0].idle_since + self.keepalive)

    async def close(self) -> None:
        """Close the pooled connections; the ones in use close when their requests end."""
        self._closed = True
        for sweep in self._sweeps.values():
            sweep.cancel()
        self._sweeps.clear()
        for pooled in self._idle.values():
            for connection in pooled:
                connection.abort()
        self._idle.clear()

    def idle_connections(self) -> int:
        """Connections waiting in the pool (for tests and diagnostics)."""
        return sum(len(pooled) for pooled in self._idle.values())

    async def _acquire(self, target: Target, connect_timeout: float) -> Connection:
        if not self._full():
            pooled = self._reuse(target)
            if pooled is not None:
                return pooled
        async with asyncio.timeout(connect_timeout):
            while self._full():
                turn = asyncio.get_running_loop().create_future()
                self._turns.append(turn)
                try:
                    await turn
                except BaseException:
                    if not turn.cancel() and not turn.cancelled():  # woken, then cancelled: pass the turn on
                        self._pass_turn()
                    raise
                pooled = self._reuse(target)
                if pooled is not None:
                    return pooled
            self.in_use += 1
            try:
                return await self._connect(target)
            except BaseException:
                self.in_use -= 1
                self._pass_turn()  # the slot is free again for whoever waits for it
                raise

    def _full(self) -> bool:
        """As many connections carry requests as the cap allows (pooled idle ones do not count)."""
        return bool(self.limit) and self.in_use >= self.limit

    def _reuse(self, target: Target) -> Connection | None:
        """The most recently pooled live connection to the target (older expired ones are closed)."""
        pooled = self._idle.get(target.key)
        if not pooled:
            return None
        now = asyncio.get_running_loop().time()
        while pooled:
            connection = pooled.pop()
            if not connection.closed and now - connection.idle_since < self.keepalive:
                self.in_use += 1
                return connection
            connection.abort()
        return None

    async def _connect(self, target: Target) -> Connection:
        loop = asyncio.get_running_loop()
        key = target.key
        proxy = target.proxy
        if proxy is not None and target.tls is not None:  # https through the proxy: a CONNECT tunnel
            return await self._tunnelled(loop, target, proxy, target.tls)
        if proxy is not None:  # plain http through the proxy: it gets the absolute-form request
            _, connection = await connect_to_proxy(lambda: Connection(loop, key), proxy, target.proxy_tls)
        elif target.tls is not None:
            _, connection = await loop.create_connection(
                lambda: Connection(loop, key), target.host, target.port, ssl=target.tls, server_hostname=target.host
            )
        else:
            _, connection = await loop.create_connection(lambda: Connection(loop, key), target.host, target.port)
        return connection

    @staticmethod
    async def _tunnelled(
        loop: asyncio.AbstractEventLoop, target: Target, proxy: ForwardProxy, context: ssl.SSLContext
    ) -> Connection:
        """TLS with the origin through a CONNECT tunnel (the proxy sees only the host, port and ciphertext)."""
        raw = await open_tunnel(proxy, target.proxy_tls, target.host, target.port)
        connection = Connection(loop, target.key)
        try:
            transport = await loop.start_tls(raw, connection, context, server_hostname=target.host)
        except BaseException:
            raw.abort()
            raise
        if transport is None:
            raise UpstreamDisconnected("the tunnel closed during the TLS handshake")
        connection.connection_made(transport)
        return connection
