"""The pooled upstream client over real loopback sockets, on asyncio's loop and on uvloop.

The servers are scripted: each writes exactly the bytes its test chooses, so framing, splits, pauses and closes
are the test's, and they count the connections they accept to show what the pool did.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import random
import socket

import pytest
import uvloop

from modelyard_proxy.upstream import (
    InvalidRequest,
    ProtocolError,
    UpstreamClient,
    UpstreamDisconnected,
    UpstreamResponse,
    UpstreamTruncated,
)
from modelyard_proxy.upstream.connection import READ_BUFFER_LIMIT
from tests.proxy.upstream.scripted import (
    ClientFactory,
    Handler,
    Peer,
    ServerFactory,
    answering,
    request_path,
    response,
)

#: Timeouts for requests that are expected to succeed: generous, they only bound a broken test.
PATIENT = 5.0


async def send(
    client: UpstreamClient,
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    connect_timeout: float = PATIENT,
    read_timeout: float = PATIENT,
) -> UpstreamResponse:
    return await client.request(
        method, url, headers or {}, body, connect_timeout=connect_timeout, read_timeout=read_timeout
    )


async def fetch(
    client: UpstreamClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connect_timeout: float = PATIENT,
    read_timeout: float = PATIENT,
) -> tuple[int, bytes]:
    """Status and whole body of a GET."""
    answer = await send(client, url, headers=headers, connect_timeout=connect_timeout, read_timeout=read_timeout)
    return answer.status, await answer.read()


def echo_path(request: bytes) -> bytes:
    return response(request_path(request).encode())


async def test_runs_on_the_loop_named_in_its_id(request: pytest.FixtureRequest) -> None:
    """The loop parametrisation really swaps the loop, so the uvloop runs are not asyncio's loop in disguise."""
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop) is request.node.name.endswith("[uvloop]")


# -- keep-alive and the request's bytes -----------------------------------------------------------------------


async def test_sequential_requests_reuse_one_connection(serve: ServerFactory, clients: ClientFactory) -> None:
    """Two requests one after the other travel on one TCP connection, which waits in the pool in between."""
    server = await serve(answering(echo_path))
    client = clients()
    assert await fetch(client, server.url("/one")) == (200, b"/one")
    assert (client.in_use, client.idle_connections()) == (0, 1)
    assert await fetch(client, server.url("/two")) == (200, b"/two")
    assert server.accepted == 1
    assert (client.in_use, client.idle_connections()) == (0, 1)


async def test_request_bytes_are_exactly_as_framed(serve: ServerFactory, clients: ClientFactory) -> None:
    """Request line, Host with its non-default port, the given headers in order, Accept-Encoding, Content-Length."""
    server = await serve(answering(lambda _: response()))
    client = clients()
    body = b'{"model":"m"}'
    answer = await send(
        client,
        server.url("/v1/chat?stream=true&x=1#fragment"),
        method="POST",
        headers={"authorization": "Bearer k", "content-type": "application/json"},
        body=body,
    )
    await answer.read()
    await fetch(client, f"http://127.0.0.1:{server.port}", headers={"accept-encoding": "identity"})
    host = f"Host: 127.0.0.1:{server.port}\r\n".encode()
    assert server.requests == [
        b"POST /v1/chat?stream=true&x=1 HTTP/1.1\r\n"
        + host
        + b"authorization: Bearer k\r\ncontent-type: application/json\r\n"
        + b"Accept-Encoding: gzip, deflate\r\nContent-Length: 13\r\n\r\n"
        + body,
        b"GET / HTTP/1.1\r\n" + host + b"accept-encoding: identity\r\nContent-Length: 0\r\n\r\n",
    ]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"x-a": "1\r\nX-Injected: 1"}, id="crlf"),
        pytest.param({"x-a": "1\nX-Injected: 1"}, id="lf"),
        pytest.param({"x-a": "1\r"}, id="cr"),
        pytest.param({"x-a\r\nx-injected": "1"}, id="in-name"),
    ],
)
async def test_header_with_a_line_break_is_refused_before_anything_is_sent(
    serve: ServerFactory, clients: ClientFactory, headers: dict[str, str]
) -> None:
    """A header value or name with a line break raises InvalidRequest; no byte reaches the upstream."""
    server = await serve(answering(echo_path))
    client = clients()
    with pytest.raises(InvalidRequest):
        await send(client, server.url("/bad"), headers=headers)
    assert client.in_use == 0
    assert await fetch(client, server.url("/good")) == (200, b"/good")
    assert [request_path(request) for request in server.requests] == ["/good"]
    assert server.accepted == 1


async def test_invalid_request_does_not_wait_for_a_pool_slot(serve: ServerFactory, clients: ClientFactory) -> None:
    """With every slot busy, a request that cannot be written fails at once with InvalidRequest, not a timeout."""
    gate = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await gate.wait()
            await peer.send(response())

    server = await serve(handle)
    client = clients(limit=1)
    holder = asyncio.create_task(fetch(client, server.url("/held")))
    await server.wait_for(lambda: len(server.requests) == 1)
    with pytest.raises(InvalidRequest):
        await send(client, server.url("/bad"), headers={"x-a": "1\n"}, connect_timeout=1.0)
    gate.set()
    assert await holder == (200, b"ok")
    assert client.in_use == 0


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/x",
        "ws://127.0.0.1/x",
        "file:///etc/passwd",
        "http:///no-host",
        "/relative",
        "localhost",
        "http://127.0.0.1:99999/x",
    ],
)
async def test_non_http_url_is_refused(clients: ClientFactory, url: str) -> None:
    """Only http and https URLs with a host are sent anywhere."""
    client = clients()
    with pytest.raises(InvalidRequest):
        await send(client, url)
    assert client.in_use == 0


# -- what goes back to the pool ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(response(headers={"Connection": "close"}), id="connection-close"),
        pytest.param(response(version="1.0"), id="http-1.0"),
    ],
)
async def test_answer_that_ends_the_connection_is_not_pooled(
    serve: ServerFactory, clients: ClientFactory, answer: bytes
) -> None:
    """An answer saying the connection ends is not pooled: the client closes it, the next request opens another."""
    server = await serve(answering(lambda _: answer))
    client = clients()
    assert await fetch(client, server.url()) == (200, b"ok")
    assert client.idle_connections() == 0
    await server.wait_for(lambda: server.open == 0)  # the server kept it open: the client closed it
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.accepted == 2


async def test_connection_the_server_closed_while_idle_is_not_reused(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    """A pooled connection the server closed is skipped: the next request opens a new one and succeeds."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(response())
        peer.writer.write_eof()
        await peer.until_client_closes()

    server = await serve(handle)
    client = clients()
    assert await fetch(client, server.url()) == (200, b"ok")
    await server.wait_for(lambda: server.open == 0)  # the client saw the end and closed its side
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.accepted == 2


async def test_connection_idle_longer_than_keepalive_is_not_reused(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    """A pooled connection idle past ``keepalive`` is closed rather than reused."""
    server = await serve(answering(lambda _: response()))
    client = clients(keepalive=0.1)
    assert await fetch(client, server.url()) == (200, b"ok")
    await asyncio.sleep(0.15)
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.accepted == 2
    await server.wait_for(lambda: server.open == 1)  # the expired one was closed by the client


async def test_idle_connections_are_closed_after_keepalive_without_further_traffic(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    """Pooled connections are closed once idle for ``keepalive``, though no request ever goes to their upstream
    again: each of two upstreams sees its connections end, the one that went idle later included."""
    first, second = await serve(answering(lambda _: response())), await serve(answering(lambda _: response()))
    client = clients(keepalive=0.3)
    early = await send(client, first.url())
    late = await send(client, first.url())
    assert await early.read() == b"ok"
    await asyncio.sleep(0.1)
    assert await late.read() == b"ok"
    assert await fetch(client, second.url()) == (200, b"ok")
    assert (first.open, second.open, client.idle_connections()) == (2, 1, 3)

    await first.wait_for(lambda: first.open == 0)
    await second.wait_for(lambda: second.open == 0)
    assert (first.accepted, second.accepted, client.idle_connections()) == (2, 1, 0)
    assert await fetch(client, first.url()) == (200, b"ok")  # the pool still works, with a new connection
    assert first.accepted == 3


async def test_unsolicited_bytes_on_an_idle_connection_retire_it(serve: ServerFactory, clients: ClientFactory) -> None:
    """Bytes arriving on a pooled connection nobody asked for make the client drop it."""
    pooled = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(response())
            if peer.index == 1:
                await pooled.wait()
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    server = await serve(handle)
    client = clients()
    assert await fetch(client, server.url()) == (200, b"ok")
    pooled.set()
    await server.wait_for(lambda: server.open == 0)
    assert await fetch(client, server.url()) == (200, b"ok")
    assert server.accepted == 2


async def test_close_closes_pooled_connections(serve: ServerFactory, clients: ClientFactory) -> None:
    """Closing the client closes what waits in its pool; later requests still work but are not pooled."""
    server = await serve(answering(lambda _: response()))
    client = clients()
    await fetch(client, server.url())
    await fetch(client, server.url())
    assert client.idle_connections() == 1
    await client.close()
    assert client.idle_connections() == 0
    await server.wait_for(lambda: server.open == 0)
    assert await fetch(client, server.url()) == (200, b"ok")
    assert client.idle_connections() == 0


async def test_answer_to_head_has_no_body_and_keeps_the_connection(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    """A HEAD's answer declares a length but carries no body: it completes and the connection is reused."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if request.startswith(b"HEAD "):
                await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                await peer.send(response(b"after"))

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url(), method="HEAD")
    assert (answer.status, answer.headers["content-length"], await answer.read()) == (200, "1234", b"")
    assert await fetch(client, server.url()) == (200, b"after")
    assert server.accepted == 1


async def test_gzip_answer_is_decoded(serve: ServerFactory, clients: ClientFactory) -> None:
    """A gzip-coded chunked answer arrives decoded, its headers as the server sent them."""
    plain = b'{"choices":[]}' * 100
    packed = gzip.compress(plain)

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(packed), 50):
            await peer.send(b"%x\r\n%s\r\n" % (len(packed[start : start + 50]), packed[start : start + 50]))
        await peer.send(b"0\r\n\r\n")
        await peer.until_client_closes()

    server = await serve(handle)
    answer = await send(clients(), server.url())
    assert answer.headers["content-encoding"] == "gzip"
    assert await answer.read() == plain


# -- timeouts and the pool's cap --------------------------------------------------------------------------------


async def test_read_timeout_when_the_server_stays_silent(serve: ServerFactory, clients: ClientFactory) -> None:
    """No answer within ``read_timeout`` is TimeoutError; the connection is dropped and its slot freed."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.until_client_closes()

    server = await serve(handle)
    client = clients(limit=1)
    with pytest.raises(TimeoutError):
        await send(client, server.url(), read_timeout=0.05)
    assert (client.in_use, client.idle_connections()) == (0, 0)
    await server.wait_for(lambda: server.open == 0)


async def test_read_timeout_bounds_each_wait_for_body_bytes(serve: ServerFactory, clients: ClientFactory) -> None:
    """A body that stops arriving mid-way times out too, and the half-read connection is dropped."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        await peer.until_client_closes()

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url(), read_timeout=0.05)
    with pytest.raises(TimeoutError):
        await answer.read()
    assert (client.in_use, client.idle_connections()) == (0, 0)
    await server.wait_for(lambda: server.open == 0)


def gated(gate: asyncio.Event) -> Handler:
    """Answers every request with its path, once ``gate`` is set."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            await gate.wait()
            await peer.send(echo_path(request))

    return handle


async def test_connect_timeout_bounds_the_wait_for_a_pool_slot(serve: ServerFactory, clients: ClientFactory) -> None:
    """With ``limit`` connections busy, a request waits for a slot no longer than ``connect_timeout``."""
    gate = asyncio.Event()
    server = await serve(gated(gate))
    client = clients(limit=1)
    holder = asyncio.create_task(fetch(client, server.url("/held")))
    await server.wait_for(lambda: len(server.requests) == 1)
    with pytest.raises(TimeoutError):
        await send(client, server.url("/late"), connect_timeout=0.05)
    assert client.in_use == 1
    gate.set()
    assert await holder == (200, b"/held")
    assert await fetch(client, server.url("/next")) == (200, b"/next")
    assert [request_path(request) for request in server.requests] == ["/held", "/next"]
    assert client.in_use == 0


async def test_pool_cap_is_honoured_and_every_waiter_completes(serve: ServerFactory, clients: ClientFactory) -> None:
    """With ``limit=2`` and 5 requests at once the server never sees more than 2 connections; all 5 complete."""
    gate = asyncio.Event()
    server = await serve(gated(gate))
    client = clients(limit=2)
    tasks = [asyncio.create_task(fetch(client, server.url(f"/{n}"))) for n in range(5)]
    await server.wait_for(lambda: len(server.requests) == 2)
    await asyncio.sleep(0.02)  # room for a third connection to show up, were the cap broken
    assert server.accepted == 2
    gate.set()
    assert await asyncio.gather(*tasks) == [(200, f"/{n}".encode()) for n in range(5)]
    assert (server.accepted, server.max_open) == (2, 2)
    assert (client.in_use, client.idle_connections()) == (0, 2)


async def test_an_idle_connection_does_not_lift_the_cap(serve: ServerFactory, clients: ClientFactory) -> None:
    """A pooled connection to one upstream is not taken while ``limit`` requests to another are in flight."""
    gate = asyncio.Event()
    busy = await serve(gated(gate))
    idle = await serve(answering(echo_path))
    client = clients(limit=1)
    assert await fetch(client, idle.url("/warm")) == (200, b"/warm")
    holder = asyncio.create_task(fetch(client, busy.url("/held")))
    await busy.wait_for(lambda: len(busy.requests) == 1)
    with pytest.raises(TimeoutError):
        await send(client, idle.url("/over-the-cap"), connect_timeout=0.05)
    assert [request_path(request) for request in idle.requests] == ["/warm"]
    gate.set()
    assert await holder == (200, b"/held")
    assert await fetch(client, idle.url("/after")) == (200, b"/after")
    assert idle.accepted == 1


async def test_waiters_keep_their_order_when_one_gives_up(serve: ServerFactory, clients: ClientFactory) -> None:
    """Requests waiting for a slot are served first come, first served, even after one behind them timed out."""
    gate = asyncio.Event()
    server = await serve(gated(gate))
    client = clients(limit=1)
    holder = asyncio.create_task(fetch(client, server.url("/held")))
    await server.wait_for(lambda: len(server.requests) == 1)
    first = asyncio.create_task(fetch(client, server.url("/first")))
    second = asyncio.create_task(fetch(client, server.url("/second")))
    quitter = asyncio.create_task(fetch(client, server.url("/quitter"), connect_timeout=0.05))
    with pytest.raises(TimeoutError):
        await quitter
    gate.set()
    await asyncio.gather(holder, first, second)
    assert [request_path(request) for request in server.requests] == ["/held", "/first", "/second"]


@pytest.mark.parametrize("how", ["cancelled", "refused-by-peer"])
async def test_failed_connect_passes_its_slot_on(serve: ServerFactory, clients: ClientFactory, how: str) -> None:
    """A connect that fails or is cancelled while others wait for its slot lets the next waiter go at once."""
    drop = asyncio.Event()

    async def stall(peer: Peer) -> None:  # plain TCP on an https URL: the TLS handshake never completes
        await drop.wait()

    stalled = await serve(stall)
    server = await serve(answering(echo_path))
    client = clients(limit=1)
    connecting = asyncio.create_task(send(client, f"https://127.0.0.1:{stalled.port}/"))
    await stalled.wait_for(lambda: stalled.accepted == 1)
    waiter = asyncio.create_task(fetch(client, server.url("/waiter"), connect_timeout=2.0))
    await asyncio.sleep(0)  # the waiter queues for the slot
    assert not waiter.done()
    if how == "cancelled":
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
    else:
        drop.set()
        with pytest.raises(OSError):  # noqa: PT011 - the handshake cut off: reset or TLS EOF, depending on the loop
            await connecting
    assert await waiter == (200, b"/waiter")
    assert client.in_use == 0


async def test_cancelled_request_drops_its_connection_and_frees_its_slot(
    serve: ServerFactory, clients: ClientFactory
) -> None:
    """Cancelling a request waiting for its answer closes its connection (never pooled) and frees its slot."""

    async def handle(peer: Peer) -> None:
        while (request := await peer.request()) is not None:
            if peer.index == 1:
                await peer.until_client_closes()
                return
            await peer.send(echo_path(request))

    server = await serve(handle)
    client = clients(limit=1)
    task = asyncio.create_task(fetch(client, server.url("/cancelled")))
    await server.wait_for(lambda: len(server.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (client.in_use, client.idle_connections()) == (0, 0)
    await server.wait_for(lambda: server.open == 0)
    assert await fetch(client, server.url("/next"), connect_timeout=1.0) == (200, b"/next")
    assert server.accepted == 2


# -- the upstream breaking the exchange off ---------------------------------------------------------------------


async def test_close_mid_body_is_truncation(serve: ServerFactory, clients: ClientFactory) -> None:
    """The server closing after part of the body: the part arrives, then UpstreamTruncated; nothing is pooled."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url())
    assert answer.status == 200
    with pytest.raises(UpstreamTruncated):
        await answer.read()
    streamed = await send(client, server.url())
    assert await streamed.readany() == b"hel"
    with pytest.raises(UpstreamTruncated):
        await streamed.readany()
    assert (client.in_use, client.idle_connections()) == (0, 0)


@pytest.mark.parametrize("sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"], ids=["nothing", "part-of-the-head"])
async def test_close_before_the_head_is_a_disconnect(serve: ServerFactory, clients: ClientFactory, sent: bytes) -> None:
    """The server closing before the head is complete is UpstreamDisconnected from ``request``."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(sent)

    server = await serve(handle)
    client = clients()
    with pytest.raises(UpstreamDisconnected):
        await send(client, server.url())
    assert (client.in_use, client.idle_connections()) == (0, 0)


async def test_malformed_answer_is_a_protocol_error(serve: ServerFactory, clients: ClientFactory) -> None:
    """Bytes that are not HTTP/1.x fail the request with ProtocolError and the connection is dropped."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await peer.until_client_closes()

    server = await serve(handle)
    client = clients()
    with pytest.raises(ProtocolError):
        await send(client, server.url())
    assert (client.in_use, client.idle_connections()) == (0, 0)
    await server.wait_for(lambda: server.open == 0)


async def test_connection_refused_is_an_os_error(clients: ClientFactory) -> None:
    """Nobody listening is an OSError (ConnectionRefusedError), and the slot is given back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = clients(limit=1)
    with pytest.raises(OSError):  # noqa: PT011 - any OSError is what the relay handles
        await send(client, f"http://127.0.0.1:{port}/")
    assert client.in_use == 0


# -- streaming ----------------------------------------------------------------------------------------------------


async def test_readany_yields_pieces_as_the_server_sends_them(serve: ServerFactory, clients: ClientFactory) -> None:
    """Each piece arrives while the server is still holding the rest; ``b""`` ends it and pools the connection."""
    more = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await more.wait()
            await peer.send(b"6\r\nsecond\r\n0\r\n\r\n")

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url())
    assert await answer.readany() == b"first"
    assert client.idle_connections() == 0
    more.set()
    assert await answer.readany() == b"second"
    assert await answer.readany() == b""
    assert (client.in_use, client.idle_connections()) == (0, 1)
    assert await answer.readany() == b""
    with pytest.raises(RuntimeError):
        await answer.read()
    assert await fetch(client, server.url()) == (200, b"firstsecond")
    assert server.accepted == 1


async def test_closing_a_half_read_answer_drops_the_connection(serve: ServerFactory, clients: ClientFactory) -> None:
    """``close`` before the body's end does not pool the connection: it is closed, and its slot freed."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        await peer.until_client_closes()

    server = await serve(handle)
    client = clients(limit=1)
    answer = await send(client, server.url())
    assert await answer.readany() == b"hello"
    answer.close()
    assert (client.in_use, client.idle_connections()) == (0, 0)
    assert await answer.readany() == b""
    await server.wait_for(lambda: server.open == 0)


BIG = random.Random(20240501).randbytes(6 * 1024 * 1024)


async def test_large_answer_streams_intact_under_flow_control(serve: ServerFactory, clients: ClientFactory) -> None:
    """Megabytes arrive intact through readany; an unread backlog stops the reading near ``READ_BUFFER_LIMIT``."""

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BIG) + BIG)

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url())
    await asyncio.sleep(0.05)  # the server keeps sending while nothing is read
    pieces = []
    while piece := await answer.readany():
        pieces.append(piece)
    assert b"".join(pieces) == BIG
    assert max(map(len, pieces)) <= 2 * READ_BUFFER_LIMIT
    assert client.idle_connections() == 1
    assert await fetch(client, server.url()) == (200, BIG)
    assert server.accepted == 1


async def test_large_request_body_is_sent_intact(serve: ServerFactory, clients: ClientFactory) -> None:
    """An 8 MiB body, more than the socket buffers hold, reaches the server whole."""
    body = random.Random(7).randbytes(8 * 1024 * 1024)

    async def handle(peer: Peer) -> None:
        await asyncio.sleep(0.05)  # let the client's buffers fill before reading
        while (request := await peer.request()) is not None:
            received = request.partition(b"\r\n\r\n")[2]
            await peer.send(response(f"{len(received)} {hashlib.sha256(received).hexdigest()}".encode()))

    server = await serve(handle)
    client = clients()
    answer = await send(client, server.url(), method="POST", body=body)
    assert await answer.read() == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    assert client.idle_connections() == 1
