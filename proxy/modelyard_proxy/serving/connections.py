"""Client connections on the public port: a cap per worker, a deadline for each request's head, and malformed
HTTP answered in the API's error shape with at most one log line every few seconds.

aiohttp has none of the first two: a connection that sends half a header is held until the keep-alive
timeout, and connections are accepted until the process runs out of file descriptors, after which every
request fails with nothing in the log. Both are closed here, in the protocol aiohttp builds per connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
import sys
import time
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from modelyard_proxy.base.errors import GatewayError
from modelyard_proxy.observability.metrics import Counter

log = logging.getLogger(__name__)

#: Seconds a refused connection may take to read its answer before it is closed.
REFUSED_LINGER = 1.0
#: At most one log line about misbehaving clients per this many seconds, per process.
NOISE_INTERVAL = 10.0
#: Files a process needs besides client and upstream connections (listeners, logs, the admin socket, imports).
OTHER_FILES = 256


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """The limits on one worker's client connections; ``max_connections`` 0 is no cap."""

    max_connections: int
    header_timeout: float
    refused: Counter


def raise_open_files_limit(needed: int) -> int:
    """Raise the soft limit on open files to ``needed`` if the hard limit allows (the cap refuses connections
    cleanly only while a socket can still be accepted); the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed
    raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if raised > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return max(raised, soft)


class GuardedRunner(web.AppRunner):
    """An ``AppRunner`` whose connections follow ``policy``."""

    def __init__(self, app: web.Application, policy: ConnectionPolicy, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._policy = policy

    async def _make_server(self) -> Server:
        return GuardedServer(await super()._make_server(), self._policy)


class GuardedServer(Server):
    """aiohttp's server with the same settings, building guarded protocols and counting the open ones."""

    def __init__(self, inner: Server, policy: ConnectionPolicy) -> None:
        super().__init__(
            inner.request_handler,
            request_factory=inner.request_factory,
            handler_cancellation=inner.handler_cancellation,
            **inner._kwargs,  # the settings aiohttp built, passed on unchanged
        )
        self.policy = policy
        self.open = 0

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedHandler(RequestHandler):
    """One connection: refused past the cap, closed when a request's head is late, errors in the API's shape."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._refused = False
        self._head_deadline: asyncio.TimerHandle | None = None
        self._head_started = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        policy = self._guard.policy
        if policy.max_connections and self._guard.open >= policy.max_connections:
            self._refuse(transport, policy.max_connections)
            return
        self._guard.open += 1
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._guard.open -= 1
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped, so that closing sends no reset before the answer is read
        super().data_received(data)
        if self._messages or self._request_in_progress:
            self._disarm_head_deadline()
        elif data:
            self._head_started = True
            if self._head_deadline is None:
                self._arm_head_deadline()

    def eof_received(self) -> None:
        if self._refused and self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,  # noqa: ARG002 - aiohttp's text, replaced by the API's
    ) -> web.StreamResponse:
        """Malformed HTTP (or a failure outside every handler) in the API's error shape, never a traceback."""
        self.log_exception("bad request", exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the response has started; no error answer can follow")
        error = protocol_error(status, exc)
        response = web.Response(status=error.status, body=error.body(), content_type="application/json")
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:  # noqa: ARG002 - aiohttp's message, replaced
        """One line naming the client and the exception's class, at most every ``NOISE_INTERVAL`` seconds: any
        client can send malformed HTTP, and a traceback per request would let it flood the logs."""
        exc = kw.get("exc_info")
        if not isinstance(exc, BaseException):
            exc = sys.exc_info()[1]
        NOISE.note(self._remote(), exc)

    def _remote(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if isinstance(peer, tuple) else "an unknown client"

    def _refuse(self, transport: asyncio.BaseTransport, limit: int) -> None:
        """Answer 503 and close: the connection never reaches aiohttp's machinery."""
        self._refused = True
        self._guard.policy.refused.inc(())
        error = GatewayError(
            503,
            f"this gateway process has {limit} client connections open, its limit; retry shortly",
            type="server_error",
            code="too_many_connections",
            retry_after=1,
        )
        self.transport = writable = cast(asyncio.Transport, transport)
        writable.write(raw_response(error))
        writable.write_eof()
        self._loop.call_later(REFUSED_LINGER, transport.close)

    def _arm_head_deadline(self) -> None:
        self._head_deadline = self._loop.call_later(self._guard.policy.header_timeout, self._head_timed_out)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        self._head_started = False

    def _head_timed_out(self) -> None:
        """Close a connection still waiting for a whole request head; 408 when part of one came."""
        self._head_deadline = None
        waiting = self._waiter is not None and not self._waiter.done()
        if self._messages or not waiting or self.transport is None:
            return  # a request is being served (or the connection is going)
        if self._head_started:
            timeout = self._guard.policy.header_timeout
            self.transport.write(
                raw_response(
                    GatewayError(
                        408, f"the request's headers did not arrive within {timeout:g} s", code="request_timeout"
                    )
                )
            )
        self.force_close()


def protocol_error(status: int, exc: BaseException | None) -> GatewayError:
    """The API's error for what aiohttp refused before any handler ran (or failed outside one)."""
    if status >= 500:
        return GatewayError(500, "internal gateway error", type="server_error")
    if isinstance(exc, ContentEncodingError):  # an encoding the gateway cannot decode at all
        return GatewayError(400, f"request body could not be read: {exc.message}", code="invalid_body_encoding")
    if isinstance(exc, LineTooLong):  # its message would echo the whole line
        detail = f"the request line or a header is longer than {exc.args[1]} bytes"
    elif isinstance(exc, HttpProcessingError):
        detail = exc.message
    else:
        detail = HTTPStatus(status).phrase
    return GatewayError(status, f"malformed HTTP request: {detail}"[:300], code="malformed_http")


def raw_response(error: GatewayError) -> bytes:
    """``error`` as a complete HTTP/1.1 response that closes the connection, for where no request exists."""
    body = error.body()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **error.headers(),
    }
    head = f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n").encode() + body


class _RateLimitedNoise:
    """One warning line per interval about clients that broke HTTP, with how many more there were."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = 0.0
        self._suppressed = 0

    def note(self, remote: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last such line)" if self._suppressed else ""
        log.warning("malformed or broken HTTP from %s: %s%s", remote, type(exc).__name__, more)
        log.debug("the exception", exc_info=exc)
        self._next, self._suppressed = now + self._interval, 0


NOISE = _RateLimitedNoise(NOISE_INTERVAL)
