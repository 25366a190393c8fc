"""One keep-alive connection to an upstream: writes a request, parses the response as the bytes arrive.

An asyncio protocol rather than streams: the response is parsed in ``data_received`` and the waiting
request woken once, so a whole answer that arrives in one read costs one wake-up and no buffer copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import TYPE_CHECKING, cast

from modelyard_proxy.upstream.errors import UpstreamDisconnected, UpstreamError, UpstreamTLSRefused, UpstreamTruncated
from modelyard_proxy.upstream.parser import ResponseHead, ResponseParser

if TYPE_CHECKING:
    from modelyard_proxy.upstream.target import PoolKey

#: Unread body bytes past which the connection stops reading from the socket until the relay catches up.
READ_BUFFER_LIMIT = 256 * 1024


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Connection(asyncio.Protocol):
    """A connection carrying one request at a time; ``parser`` holds the response in flight (or the last one)."""

    __slots__ = (
        "_buffered",
        "_drain",
        "_error",
        "_loop",
        "_paused",
        "_tls_untried",
        "_waiter",
        "closed",
        "idle_since",
        "key",
        "parser",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, key: PoolKey) -> None:
        self._loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.closed = False
        self.idle_since = 0.0
        self._error: UpstreamError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._buffered = 0
        self._paused = False
        #: A TLS connection that has not answered yet: closing now is the upstream refusing the session (an mTLS
        #: server refusing a client without a certificate closes after the handshake, with or without an alert).
        self._tls_untried = False

    # -- protocol callbacks ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's transports do not subclass asyncio's
        self._tls_untried = transport.get_extra_info("ssl_object") is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or parser.complete:  # bytes nobody asked for: the connection cannot be trusted again
            self.abort()
            return
        try:
            parser.feed(data)
        except UpstreamError as exc:
            self._error = exc
            self.abort()
        else:
            self._buffered += len(data)
            if self._buffered > READ_BUFFER_LIMIT and not self._paused:
                self._paused = True
                self._transport().pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        parser = self.parser
        if parser is not None and not parser.complete:
            try:
                parser.feed_eof()
            except UpstreamError as exc:
                self._error = exc if parser.head is not None else self._closed_before_answering(str(exc))
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        parser = self.parser
        if self._error is None and parser is not None and not parser.complete:
            if isinstance(exc, ssl.SSLError):
                self._error = UpstreamTLSRefused(exc.reason or type(exc).__name__)
            elif parser.head is None:
                self._error = self._closed_before_answering(f"the upstream closed the connection: {exc or 'EOF'}")
            else:
                self._error = UpstreamTruncated(f"the upstream closed the connection mid-response: {exc or 'EOF'}")
        self._wake()
        self.resume_writing()  # a request waiting to write learns of the loss from its error

    def _closed_before_answering(self, detail: str) -> UpstreamError:
        if self._tls_untried:
            return UpstreamTLSRefused("it closed the new connection before answering")
        return UpstreamDisconnected(detail)

    def pause_writing(self) -> None:
        if self._drain is None:
            self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- the request's side --------------------------------------------------------------------------------

    async def send(self, head: bytes, body: bytes, *, with_body: bool = True) -> None:
        """Write a request (waiting while the socket's buffer is full, for large bodies)."""
        self.parser = ResponseParser(with_body=with_body)
        self._error = None
        self._buffered = 0
        self._transport().writelines((head, body))
        if self._drain is not None:
            await self._drain
            if self.closed and self._error is not None:
                raise self._error

    async def read_head(self, idle: float) -> ResponseHead:
        """The response's status and headers, waiting at most ``idle`` seconds for each read."""
        parser = self._parser()
        while parser.head is None:
            await self._wait(idle)
        self._tls_untried = False
        return parser.head

    async def read_piece(self, idle: float) -> bytes:
        """The body bytes that arrived since the last call (waiting for some), or ``b""`` once it ended."""
        parser = self._parser()
        while not parser.pieces:
            if parser.complete:
                return b""
            await self._wait(idle)
        return self._take(parser)

    async def read_body(self, idle: float) -> bytes:
        """The rest of the body."""
        parser = self._parser()
        body = [self._take(parser)]
        while not parser.complete:
            await self._wait(idle)
            body.append(self._take(parser))
        return b"".join(body)  # one piece comes back as itself, not a copy

    def _take(self, parser: ResponseParser) -> bytes:
        """The body pieces parsed so far, reading from the socket again if it was paused for them."""
        pieces = parser.pieces
        parser.pieces = []
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._transport().resume_reading()
        return b"".join(pieces)

    @property
    def reusable(self) -> bool:
        """The response ended cleanly and the connection may carry the next request."""
        parser = self.parser
        return not self.closed and parser is not None and parser.complete and parser.reusable

    def abort(self) -> None:
        """Drop the connection now (what is buffered either way is not wanted)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    async def _wait(self, idle: float) -> None:
        """Until the parser has news, the connection fails, or ``idle`` seconds pass (``TimeoutError``)."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise UpstreamDisconnected("the connection to the upstream is closed")
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(idle, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _parser(self) -> ResponseParser:
        assert self.parser is not None, "no request was sent on this connection"
        return self.parser

    def _transport(self) -> asyncio.Transport:
        assert self.transport is not None
        return self.transport
