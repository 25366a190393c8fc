"""A loopback server that answers with exactly the bytes a test writes, and counts what it saw.

Each accepted connection runs the test's handler with a :class:`Peer`; the handler decides the framing, the
splits, the delays and when to close. The server records every request's raw bytes and how many connections
were accepted, are open and were open at most at once.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping

from modelyard_proxy.upstream import UpstreamClient

Handler = Callable[["Peer"], Awaitable[None]]
#: ``clients(limit=..., keepalive=...)``: a new client, closed after the test.
ClientFactory = Callable[..., UpstreamClient]
#: ``await serve(handler)``: a started server, closed after the test.
ServerFactory = Callable[[Handler], Awaitable["Upstream"]]


def response(
    body: bytes = b"ok", *, status: str = "200 OK", headers: Mapping[str, str] | None = None, version: str = "1.1"
) -> bytes:
    """A whole response framed by ``Content-Length``."""
    fields = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return f"HTTP/{version} {status}\r\n{fields}Content-Length: {len(body)}\r\n\r\n".encode() + body


class Peer:
    """One accepted connection as a handler sees it."""

    def __init__(self, upstream: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.upstream = upstream
        self.reader = reader
        self.writer = writer
        #: 1 for the first connection the server accepted, 2 for the next...
        self.index = upstream.accepted

    async def request(self) -> bytes | None:
        """The next request's head and ``Content-Length`` body as sent, or None once the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            return None
        except ConnectionResetError:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        raw = head + await self.reader.readexactly(length)
        self.upstream.requests.append(raw)
        self.upstream.changed()
        return raw

    async def send(self, data: bytes) -> None:
        """Write ``data`` and wait until the socket took it."""
        self.writer.write(data)
        await self.writer.drain()

    async def until_client_closes(self) -> None:
        """Read (and drop) whatever comes until the client closes the connection."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionResetError:
            pass


def answering(respond: Callable[[bytes], bytes]) -> Handler:
    """A keep-alive handler answering every request on the connection with ``respond(request)``."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await peer.send(respond(request))

    return handle


def request_path(request: bytes) -> str:
    """The path of a raw request line."""
    return request.split(b" ", 2)[1].decode()


class Upstream:
    """The server: start it, point the client at :meth:`url`, and read the counters."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.accepted = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._changed = asyncio.Event()

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def url(self, path: str = "/") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}{path}"

    def changed(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds for the server's counters (re-checked whenever they change; 5 s at most)."""
        async with asyncio.timeout(5.0):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.accepted += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        self.changed()
        try:
            await self.handler(Peer(self, reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Only :meth:`close` cancels handlers; ending quietly spares Python 3.11's stream callback, which
            # calls ``task.exception()`` on the cancelled task and logs the CancelledError that raises.
            pass
        finally:
            self.open -= 1
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)
            self.changed()

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
